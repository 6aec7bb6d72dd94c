# Images of the broker and the operator, built FROM scratch.
#
# Build with `bash tests/docker/build-images.sh`, not with `docker build .`: that script
# compiles the release binaries and stages their root filesystems (binary, the shared
# libraries `ldd` lists, glibc's NSS modules, /etc files, CA certificates) into a build
# context of its own, which this file only copies. Binaries stay dynamically linked so that
# glibc's resolver (NSS `files dns`) resolves peers' DNS names, e.g. Kubernetes pod names.
#
#   --target broker     kafka-broker image; the operator's StatefulSets run it
#   --target operator   kafka-operator image; the Helm chart's Deployment runs it

# glibc runtime, NSS config, users, /tmp: shared by both images, so stored once.
FROM scratch AS runtime
COPY runtime/ /
USER 65532:65532

FROM runtime AS broker
ARG VERSION
LABEL org.opencontainers.image.title="kafka-broker" \
      org.opencontainers.image.description="Kafka-compatible broker" \
      org.opencontainers.image.version="${VERSION}"
# Owned by the unprivileged user so that a fresh Docker volume mounted here is writable;
# Kubernetes gets the same through the pod's fsGroup.
COPY --chown=65532:65532 broker-data/ /
COPY broker/ /
# Client, controller and admin HTTP (/healthz, /readyz, /metrics) ports of the operator's pods.
EXPOSE 9092 9093 8080
ENTRYPOINT ["/usr/local/bin/broker"]
CMD ["--help"]

FROM runtime AS operator
ARG VERSION
LABEL org.opencontainers.image.title="kafka-operator" \
      org.opencontainers.image.description="Kubernetes operator for KafkaCluster" \
      org.opencontainers.image.version="${VERSION}"
COPY operator/ /
# /metrics, /healthz and /readyz.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/operator"]
CMD ["run"]

#!/usr/bin/env bash
# Container smoke test: builds the images, then runs the broker image the way the operator's
# StatefulSet runs it and checks it from the host.
#
#   bash tests/docker/smoke.sh        (skips, exit 0, when docker is not installed)
#
# 1. `operator render` (in the operator image, read-only, as uid 65532) renders a KafkaCluster;
#    `operator crd` prints the CRD.
# 2. The broker pod of that render is translated to `docker run` (pod_to_docker.py): same
#    image, arguments, environment, mounts, user, read-only root. Its init container (storage
#    format, run twice: it must be idempotent) and main container (start) run on a private
#    network with the pod's DNS name as network alias. Only the properties file is the smoke
#    test's: a combined broker+controller node (the broker's KRaft quorum is single-node for
#    now) whose client listener binds to that DNS name, which the node must resolve through
#    glibc's NSS `dns` inside the image, and whose rack is `${env:KAFKA_RACK}`.
# 3. From the host (tests/.work/venv, made by tests/run.sh): /healthz and /readyz, the rack,
#    a produce/consume round trip through the published port; the process runs as uid 65532.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../lib.sh
source "$ROOT/tests/lib.sh"

if ! command -v docker >/dev/null; then
    echo "SKIP: docker is not installed; the container smoke test did not run"
    exit 0
fi
VENV="${VENV:-$ROOT/tests/.work/venv}"
"$VENV/bin/python" -c 'import confluent_kafka, kafka' 2>/dev/null \
    || die "no Kafka clients in $VENV: run 'bash tests/run.sh' once (it creates the venv)"
ensure_apt python3-yaml
t0=$SECONDS

bash tests/docker/build-images.sh
BROKER_IMAGE=kafka-broker:dev
OPERATOR_IMAGE=kafka-operator:dev
RUN_AS=65532:65532
RACK=zone-smoke
NAME="kafka-smoke-$$"
WORK="$(mktemp -d)"
CONTAINER="$NAME-broker"

cleanup() {
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    docker volume rm "$NAME-data" >/dev/null 2>&1 || true
    docker network rm "$NAME" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say "operator image: render and crd"
for image in "$BROKER_IMAGE" "$OPERATOR_IMAGE"; do
    user="$(docker image inspect -f '{{.Config.User}}' "$image")"
    [ "$user" = "$RUN_AS" ] || die "$image runs as '$user', expected $RUN_AS"
done
crd="$(docker run --rm --read-only "$OPERATOR_IMAGE" crd)"
grep -q '^kind: CustomResourceDefinition$' <<<"$crd" || die "'operator crd' did not print the CRD"
CLUSTER_ID="$(docker run --rm --read-only "$BROKER_IMAGE" storage random-uuid)"
cat >"$WORK/cluster.yaml" <<EOF
apiVersion: streaming.example.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: smoke
  namespace: kafka
spec:
  image: $BROKER_IMAGE
  controllers: {replicas: 1}
  brokers: {replicas: 1, rackTopologyKey: topology.kubernetes.io/zone}
  topicDefaults: {replicationFactor: 1, minInsyncReplicas: 1}
EOF
docker run --rm -i --read-only "$OPERATOR_IMAGE" render /dev/stdin "$CLUSTER_ID" \
    <"$WORK/cluster.yaml" >"$WORK/render.yaml"
POD=smoke-broker-0
HOST="$(python3 tests/docker/pod_to_docker.py host "$WORK/render.yaml" smoke-broker 0)"
echo "rendered; the broker pod is $POD ($HOST)"

CLIENT_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
mkdir -m 0755 "$WORK/config"
cat >"$WORK/config/$POD.properties" <<EOF
process.roles=broker,controller
node.id=0
controller.quorum.voters=0@$HOST:9093
controller.listener.names=CONTROLLER
listeners=CLIENT://$HOST:9092,CONTROLLER://0.0.0.0:9093
advertised.listeners=CLIENT://127.0.0.1:$CLIENT_PORT
listener.security.protocol.map=CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=/var/lib/kafka/data
admin.http.listener=0.0.0.0:8080
offsets.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
config.providers=env
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
broker.rack=\${env:KAFKA_RACK}
EOF
chmod 0644 "$WORK/config/$POD.properties"

# pod_args init|main: the docker run arguments of that container of the broker pod.
pod_args() {
    python3 tests/docker/pod_to_docker.py run-args "$WORK/render.yaml" smoke-broker 0 "$1" \
        "$WORK/config" "$NAME-data" "topology.kubernetes.io/zone=$RACK"
}
mapfile -d '' -t INIT < <(pod_args init)
mapfile -d '' -t MAIN < <(pod_args main)
[ ${#INIT[@]} -gt 0 ] && [ ${#MAIN[@]} -gt 0 ] || die "could not translate the broker pod"

say "broker image: the pod's init container (twice) and main container"
docker network create "$NAME" >/dev/null
docker volume create "$NAME-data" >/dev/null
for attempt in 1 2; do
    echo "storage format, run $attempt:"
    docker run --rm "${INIT[@]}"
done
docker run -d --name "$CONTAINER" --network "$NAME" \
    -p "127.0.0.1:$CLIENT_PORT:9092" -p "127.0.0.1:$ADMIN_PORT:8080" "${MAIN[@]}" >/dev/null

ready=""
for _ in $(seq 1 120); do
    if [ "$(docker inspect -f '{{.State.Running}}' "$CONTAINER")" != true ]; then
        docker logs "$CONTAINER" 2>&1 | tail -n 30
        die "the broker container exited"
    fi
    if "$VENV/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$ADMIN_PORT/readyz', timeout=1)" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.5
done
[ -n "$ready" ] || { docker logs "$CONTAINER" 2>&1 | tail -n 30; die "broker not ready after 60s"; }
echo "  ready; its client listener is bound to $HOST, resolved inside the image"

[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$CONTAINER")" = true ] \
    || die "the broker container's root filesystem is writable"
# docker top wants the pid column; only uid and gid matter here.
uids="$(docker top "$CONTAINER" -eo pid,uid,gid | awk 'NR > 1 {print $2, $3}' | sort -u)"
[ "$uids" = "65532 65532" ] || die "broker processes run as uid/gid '$uids', expected 65532 65532"
echo "  runs as uid/gid 65532 with a read-only root filesystem"

"$VENV/bin/python" tests/docker/check_broker.py "127.0.0.1:$CLIENT_PORT" \
    "http://127.0.0.1:$ADMIN_PORT" "$RACK"
say "container smoke test passed in $((SECONDS - t0))s"

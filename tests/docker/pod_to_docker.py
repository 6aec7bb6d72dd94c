"""Turns a pod of a StatefulSet that `operator render` printed into a `docker run` command
line, doing what the kubelet would: same image, arguments ($(VAR) expanded from the
container's environment), environment (field references filled in), mounts, user and
security settings. The smoke test runs the broker image exactly as the operator's pods do.

    pod_to_docker.py host RENDER STATEFULSET ORDINAL
        prints the pod's DNS name (POD.SERVICE.NAMESPACE.svc)
    pod_to_docker.py run-args RENDER STATEFULSET ORDINAL CONTAINER CONFIG_DIR DATA_VOLUME [LABEL=VALUE...]
        prints the `docker run` arguments (image and its arguments last), NUL-separated;
        CONTAINER is `init` (the first init container) or `main`; LABEL=VALUE are the pod
        labels that field references may read (e.g. the node's zone).
    pod_to_docker.py json RENDER
        prints the rendered objects as one JSON list, for callers without PyYAML (the test
        venv): they import this module for run_args and read the render through this.
"""

import json
import re
import sys


def fail(message):
    sys.exit(f"pod_to_docker.py: {message}")


def load_docs(render_path):
    # Imported here: the container cluster harness imports this module from a venv
    # without PyYAML and only uses the functions that take parsed objects.
    import yaml

    with open(render_path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def statefulset(render_path, name):
    for doc in load_docs(render_path):
        if doc.get("kind") == "StatefulSet" and doc["metadata"]["name"] == name:
            return doc
    fail(f"no StatefulSet {name!r} in {render_path}")


def pod_name(sts, ordinal):
    return f"{sts['metadata']['name']}-{ordinal}"


def pod_host(sts, ordinal):
    return f"{pod_name(sts, ordinal)}.{sts['spec']['serviceName']}.{sts['metadata']['namespace']}.svc"


def env_value(var, pod, labels):
    if "value" in var:
        return var["value"]
    path = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
    if path == "metadata.name":
        return pod
    label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
    if label and label[1] in labels:
        return labels[label[1]]
    fail(f"cannot fill env {var['name']} (field {path!r}); pass the label as LABEL=VALUE")


def expand(arg, env):
    # Kubernetes replaces $(NAME) by a variable of the container and leaves unknown ones.
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)


def mount_flag(mount, volumes, claims, config_dir, data_volume):
    name, target = mount["name"], mount["mountPath"]
    volume = volumes.get(name, {})
    if "configMap" in volume:
        # config_dir: one directory, or a dict of directories by ConfigMap name.
        if isinstance(config_dir, dict):
            config_dir = config_dir[volume["configMap"]["name"]]
        return f"type=bind,src={config_dir},dst={target},readonly"
    if "emptyDir" in volume:
        return f"type=tmpfs,dst={target}"
    if name in claims:
        readonly = ",readonly" if mount.get("readOnly") else ""
        return f"type=volume,src={data_volume},dst={target}{readonly}"
    fail(f"volume {name!r} has a kind this translation does not know")


def run_args(sts, ordinal, which, config_dir, data_volume, labels):
    pod_spec = sts["spec"]["template"]["spec"]
    container = pod_spec["initContainers"][0] if which == "init" else pod_spec["containers"][0]
    if container.get("command"):
        fail("containers with a command (not only args) are not translated")
    pod = pod_name(sts, ordinal)
    env = {v["name"]: env_value(v, pod, labels) for v in container.get("env", [])}
    args = ["--hostname", pod]
    if which == "main":
        args += ["--network-alias", pod_host(sts, ordinal)]
    pod_security = pod_spec.get("securityContext", {})
    if "runAsUser" in pod_security:
        args += ["--user", f"{pod_security['runAsUser']}:{pod_security.get('runAsGroup', 0)}"]
    security = container.get("securityContext", {})
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for cap in security.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", cap]
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])}
    for mount in container.get("volumeMounts", []):
        args += ["--mount", mount_flag(mount, volumes, claims, config_dir, data_volume)]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    args.append(container["image"])
    args += [expand(a, env) for a in container.get("args", [])]
    return args


def main(argv):
    if len(argv) == 2 and argv[0] == "json":
        json.dump(load_docs(argv[1]), sys.stdout)
    elif len(argv) >= 4 and argv[0] == "host":
        print(pod_host(statefulset(argv[1], argv[2]), int(argv[3])))
    elif len(argv) >= 7 and argv[0] == "run-args" and argv[4] in ("init", "main"):
        labels = dict(label.split("=", 1) for label in argv[7:])
        sts = statefulset(argv[1], argv[2])
        args = run_args(sts, int(argv[3]), argv[4], argv[5], argv[6], labels)
        sys.stdout.write("\0".join(args) + "\0")
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

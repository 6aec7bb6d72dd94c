"""Render the operator's Helm chart with Helm's own engine (helm-python-sdk).

`python operator/tests/helm/render.py > deploy/kafka-operator.yaml` regenerates the plain
manifests in deploy/ (CRD first, then the chart's templates in a fixed order).
"""

from __future__ import annotations

import sys
from pathlib import Path

import helm_python as helm

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kafka-operator"
RELEASE = "kafka-operator"
NAMESPACE = "kafka-system"


def render(values: dict | None = None, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would produce."""
    chart = helm.Chart.load(str(CHART))
    return chart.render(values or {}, name=RELEASE, namespace=namespace, is_install=True)


# Apply order: what others depend on comes first.
KIND_ORDER = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment", "PodDisruptionBudget"]


def bundle() -> str:
    """The plain-manifest bundle checked in under deploy/: namespace, CRD, chart objects."""
    docs = [
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n",
        (CHART / "crds" / "kafkacluster.yaml").read_text(),
    ]
    rendered = []
    for path, text in sorted(render().items()):
        if not path.endswith(".yaml"):
            continue
        for doc in text.split("\n---\n"):
            doc = doc.strip().removeprefix("---").strip()
            if doc:
                kind = next(line.split(":", 1)[1].strip() for line in doc.splitlines() if line.startswith("kind:"))
                rendered.append((KIND_ORDER.index(kind), doc + "\n"))
    docs.extend(doc for _, doc in sorted(rendered, key=lambda r: r[0]))
    header = "# Generated from charts/kafka-operator by operator/tests/helm/render.py; do not edit.\n"
    return header + "---\n".join(docs)


if __name__ == "__main__":
    sys.stdout.write(bundle())

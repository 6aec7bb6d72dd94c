"""The operator's Helm chart, rendered and linted with Helm's own engine (helm-python-sdk),
and the rendered objects checked: least-privilege RBAC matching the verbs the operator
uses, a hardened Deployment, the CRD, and deploy/ kept in sync with the chart."""

from __future__ import annotations

import json
from collections import defaultdict

import helm_python as helm
import pytest
import yaml

import render

ROOT = render.ROOT
CHART = render.CHART
SA = "kafka-operator"


def objects(values: dict | None = None) -> list[dict]:
    out = []
    for path, text in render.render(values).items():
        if path.endswith(".yaml"):
            out.extend(d for d in yaml.safe_load_all(text) if d)
    return out


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def granted(objs: list[dict]) -> dict[str, set[str]]:
    """group/resource -> verbs granted to the operator's ServiceAccount."""
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"], b["metadata"].get("namespace"))
        for b in objs
        if b["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and any(s["kind"] == "ServiceAccount" and s["name"] == SA for s in b["subjects"])
    }
    out: dict[str, set[str]] = defaultdict(set)
    for role in objs:
        if role["kind"] not in ("ClusterRole", "Role"):
            continue
        key = (role["kind"], role["metadata"]["name"], role["metadata"].get("namespace"))
        if role["kind"] == "ClusterRole":
            key = (key[0], key[1], None)
        if key not in bound:
            continue
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    out[f"{group}/{res}"].update(rule["verbs"])
    return dict(out)


def used_verbs() -> dict[str, set[str]]:
    data = json.loads((ROOT / "operator" / "tests" / "rbac-verbs.json").read_text())
    return {k: set(v) for k, v in data.items()}


def test_lint_is_clean():
    report = helm.lint(str(CHART), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


def test_rbac_grants_exactly_the_verbs_the_operator_uses():
    assert granted(objects()) == used_verbs()


def test_watched_namespaces_use_roles_only():
    objs = objects({"watchNamespaces": ["team-a", "team-b"]})
    assert not by_kind(objs, "ClusterRole") and not by_kind(objs, "ClusterRoleBinding")
    roles = {(r["metadata"]["name"], r["metadata"]["namespace"]) for r in by_kind(objs, "Role")}
    assert roles == {
        ("kafka-operator", "team-a"),
        ("kafka-operator", "team-b"),
        ("kafka-operator-leader-election", "kafka-system"),
    }
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in by_kind(objs, "RoleBinding")}
    assert ("team-b", "kafka-operator") in bindings
    assert granted(objs) == used_verbs()
    env = {e["name"]: e.get("value") for e in by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WATCH_NAMESPACES"] == "team-a,team-b"


def test_all_namespaces_by_default():
    objs = objects()
    assert [r["metadata"]["name"] for r in by_kind(objs, "ClusterRole")] == ["kafka-operator"]
    env = {e["name"]: e.get("value") for e in by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WATCH_NAMESPACES"] == ""


def test_leases_only_in_the_release_namespace():
    objs = objects()
    lease_roles = [r for r in objs if r["kind"] in ("Role", "ClusterRole")
                   and any("leases" in rule["resources"] for rule in r["rules"])]
    assert [(r["kind"], r["metadata"]["namespace"]) for r in lease_roles] == [("Role", "kafka-system")]


def test_deployment_is_hardened_and_configurable():
    objs = objects({"logLevel": "debug", "image": {"repository": "reg.example/op", "tag": "1.2.3"}, "replicas": 3})
    dep = by_kind(objs, "Deployment")[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert dep["spec"]["replicas"] == 3
    assert c["image"] == "reg.example/op:1.2.3"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in c["env"]}
    assert env["LOG_LEVEL"]["value"] == "debug"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert pod["serviceAccountName"] == SA
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_pdb_only_with_a_standby():
    pdb = by_kind(objects(), "PodDisruptionBudget")
    assert [p["spec"]["minAvailable"] for p in pdb] == [1]
    assert pdb[0]["spec"]["selector"]["matchLabels"] == by_kind(objects(), "Deployment")[0]["spec"]["selector"]["matchLabels"]
    assert not by_kind(objects({"replicas": 1}), "PodDisruptionBudget")


def test_image_tag_defaults_to_app_version():
    dep = by_kind(objects(), "Deployment")[0]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "kafka-operator:0.1.0"


def test_values_schema_rejects_bad_values():
    with pytest.raises(helm.HelmError):
        render.render({"replicas": 0})


def test_chart_ships_the_generated_crd():
    chart = helm.Chart.load(str(CHART))
    names = [f["name"] for f in chart.crds]
    assert names == ["crds/kafkacluster.yaml"], names
    shipped = (CHART / "crds" / "kafkacluster.yaml").read_text()
    assert shipped == (ROOT / "crds" / "kafkacluster.yaml").read_text()


def test_notes_tell_what_to_do_next():
    notes = render.render()["kafka-operator/templates/NOTES.txt"]
    assert "kubectl apply" in notes and "demo-bootstrap" in notes


def test_deploy_bundle_is_generated_from_the_chart():
    on_disk = (ROOT / "deploy" / "kafka-operator.yaml").read_text()
    assert on_disk == render.bundle(), "regenerate: python operator/tests/helm/render.py > deploy/kafka-operator.yaml"


def test_examples_are_kafka_clusters():
    for name in ("minimal", "production"):
        doc = yaml.safe_load((ROOT / "deploy" / "examples" / f"{name}.yaml").read_text())
        assert doc["apiVersion"] == "streaming.example.dev/v1alpha1" and doc["kind"] == "KafkaCluster"

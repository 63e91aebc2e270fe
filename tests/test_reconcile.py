"""diff and apply against a real kube-apiserver and etcd (tests/testenv), no mocks."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, Result
from tests.testenv import controlplane

pytestmark = pytest.mark.cluster
COUNTER = itertools.count()


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    with controlplane.running(tmp_path_factory.mktemp("controlplane")) as started:
        yield started


@pytest.fixture(scope="session")
def api(plane: controlplane.ControlPlane) -> Any:
    from kubernetes import config, dynamic

    return dynamic.DynamicClient(config.new_client_from_config(str(plane.kubeconfig)))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The bundled project with fresh namespaces: no controller-manager ever frees old ones."""
    root = tmp_path / "repo"
    for name in ("specs", "models", "data", "evaluations"):
        shutil.copytree(REPO / name, root / name)
    n = next(COUNTER)
    project = root / "specs" / "modelops.yaml"
    project.write_text(
        project.read_text()
        .replace("ml-staging", f"t{n}-staging")
        .replace("ml-production", f"t{n}-production")
    )
    return root


def namespace(root: Path) -> str:
    text = (root / "specs" / "modelops.yaml").read_text()
    return next(
        line.split(":")[1].strip() for line in text.splitlines() if "-staging" in line and "namespace" in line
    )


class Kube:
    def __init__(self, cli: Callable[..., Result], plane: controlplane.ControlPlane, root: Path) -> None:
        self.cli, self.plane, self.root = cli, plane, root

    def __call__(self, command: str, *args: str) -> Result:
        return self.cli(
            command,
            self.root / "specs",
            "--env",
            "staging",
            "--context",
            "testenv",
            "--kubeconfig",
            str(self.plane.kubeconfig),
            *args,
        )


@pytest.fixture
def kube(cli: Callable[..., Result], plane: controlplane.ControlPlane, repo: Path) -> Kube:
    return Kube(cli, plane, repo)


def live(api: Any, kind: str, version: str, name: str, ns: str) -> dict[str, Any]:
    found: dict[str, Any] = (
        api.resources.get(api_version=version, kind=kind).get(name=name, namespace=ns).to_dict()
    )
    return found


def versions(api: Any, ns: str) -> dict[str, str]:
    found = {}
    for version, kind in [
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("apps/v1", "Deployment"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ]:
        for item in api.resources.get(api_version=version, kind=kind).get(namespace=ns).items:
            found[f"{kind}/{item.metadata.name}"] = item.metadata.resourceVersion
    return found


def test_first_apply_creates_everything_and_the_second_changes_nothing(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    first = kube("apply")
    assert first.code == 0, first.out + first.err
    assert f"staging: created Namespace/{ns}" in first.out
    deployment = live(api, "Deployment", "apps/v1", "credit-default", ns)
    assert deployment["metadata"]["labels"]["applyset.kubernetes.io/part-of"].startswith("applyset-")
    assert live(api, "PrometheusRule", "monitoring.coreos.com/v1", "credit-default", ns)["spec"]["groups"]
    assert live(api, "ServiceMonitor", "monitoring.coreos.com/v1", "credit-default", ns)["spec"]["endpoints"]
    before = versions(api, ns)
    second = kube("apply")
    assert second.code == 0
    assert "staging: 0 created, 0 updated, 0 recreated, 0 pruned" in second.out
    assert versions(api, ns) == before, "a no-op apply must not bump resourceVersions"
    diff = kube("diff")
    assert diff.code == 0, diff.out  # defaulted fields (imagePullPolicy, protocol) never show


def test_a_spec_change_shows_in_diff_then_applies(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    spec = kube.root / "specs" / "loan-risk-score.yaml"
    spec.write_text(spec.read_text().replace("replicas: {min: 1, max: 1}", "replicas: {min: 2, max: 2}"))
    diff = kube("diff")
    assert diff.code == 1
    assert f"update: Deployment/{ns}/loan-risk-score" in diff.out
    assert "-  replicas: 1" in diff.out and "+  replicas: 2" in diff.out
    assert "loan-risk-score/staging: 1 to update, 0 to create, 0 to prune" in diff.out
    assert kube("apply").code == 0
    assert live(api, "Deployment", "apps/v1", "loan-risk-score", ns)["spec"]["replicas"] == 2
    assert kube("diff").code == 0


def test_hand_edits_show_as_drift_and_conflict(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    deployments = api.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.patch(
        name="loan-risk-score",
        namespace=ns,
        body={"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
        field_manager="kubectl-edit",
    )
    diff = kube("diff")
    assert diff.code == 1
    assert f"conflict: Deployment/{ns}/loan-risk-score" in diff.out
    assert "-  replicas: 5" in diff.out and "+  replicas: 1" in diff.out
    assert 'conflict .spec.replicas: conflict with "kubectl-edit"' in diff.out
    refused = kube("apply")
    assert refused.code == 1
    assert "field conflicts with another manager; nothing was applied" in refused.err
    assert kube("apply", "--force-conflicts").code == 0
    assert live(api, "Deployment", "apps/v1", "loan-risk-score", ns)["spec"]["replicas"] == 1


def test_prune_deletes_only_what_we_own(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    bystander = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "loan-risk-score-notes",
            "namespace": ns,
            "labels": {
                "app.kubernetes.io/name": "loan-risk-score",
                "app.kubernetes.io/managed-by": "modelops",
            },
        },
        "data": {"owner": "someone else"},
    }
    api.resources.get(api_version="v1", kind="ConfigMap").create(body=bystander, namespace=ns)
    (kube.root / "specs" / "loan-risk-score.yaml").unlink()
    diff = kube("diff")
    assert f"prune: Deployment/{ns}/loan-risk-score" in diff.out
    result = kube("apply", "--prune")
    assert result.code == 0, result.err
    assert f"pruned Deployment/{ns}/loan-risk-score" in result.out
    remaining = {
        i.metadata.name
        for i in api.resources.get(api_version="apps/v1", kind="Deployment").get(namespace=ns).items
    }
    assert remaining == {"credit-default"}
    assert live(api, "ConfigMap", "v1", "loan-risk-score-notes", ns)["data"] == {"owner": "someone else"}
    assert live(api, "ConfigMap", "v1", "credit-default-config", ns)


def test_another_project_in_the_same_namespace_is_refused_and_prunes_nothing(
    kube: Kube, api: Any, tmp_path: Path
) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    before = versions(api, ns)
    other = tmp_path / "other"
    shutil.copytree(kube.root, other)
    project = other / "specs" / "modelops.yaml"
    project.write_text(project.read_text().replace("  name: acme-ml\n", "  name: other-ml\n", 1))
    (other / "specs" / "loan-risk-score.yaml").unlink()  # its prune would delete acme-ml's
    refused = Kube(kube.cli, kube.plane, other)("apply", "--prune")
    assert refused.code == 1
    assert f"namespace {ns} is managed by modelops project 'acme-ml'" in refused.err
    assert "nothing was applied" in refused.err
    assert versions(api, ns) == before  # acme-ml's objects neither overwritten nor pruned


def test_an_object_of_another_environment_is_not_taken_over(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    before = versions(api, ns)
    # Another environment in the same namespace, of another cluster, applied to this one.
    qa = f"  - name: qa\n    namespace: {ns}\n    context: qa\n"
    project = kube.root / "specs" / "modelops.yaml"
    project.write_text(
        project.read_text().replace("  - name: production\n", qa + "  - name: production\n", 1)
    )
    refused = kube.cli(
        "apply",
        kube.root / "specs",
        "--env",
        "qa",
        "--context",
        "testenv",
        "--kubeconfig",
        str(kube.plane.kubeconfig),
    )
    assert refused.code == 1
    assert "objects that another inventory owns" in refused.err
    assert f"Deployment/{ns}/credit-default: a member of applyset-" in refused.err
    assert versions(api, ns) == before


def test_prune_never_lists_a_kind_modelops_does_not_render(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    configmaps = api.resources.get(api_version="v1", kind="ConfigMap")
    parent = configmaps.get(name="modelops-staging", namespace=ns).to_dict()
    applyset_id = parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
    kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
    forged = kinds + ",Namespace,ClusterRole.rbac.authorization.k8s.io,Secret"
    configmaps.patch(
        name="modelops-staging",
        namespace=ns,
        body={"metadata": {"annotations": {"applyset.kubernetes.io/contains-group-kinds": forged}}},
        content_type="application/merge-patch+json",
    )
    label = {"metadata": {"labels": {"applyset.kubernetes.io/part-of": applyset_id}}}
    api.resources.get(api_version="v1", kind="Namespace").patch(
        name=ns, body=label, content_type="application/merge-patch+json"
    )
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"{ns}-x"},
    }
    role["metadata"].update(label["metadata"])
    api.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole").create(body=role)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "labelled", "namespace": ns}}
    secret["metadata"].update(label["metadata"])
    api.resources.get(api_version="v1", kind="Secret").create(body=secret, namespace=ns)
    diff = kube("diff")
    assert diff.code == 0, diff.err
    assert "prune:" not in diff.out
    assert kube("apply", "--prune").code == 0
    assert api.resources.get(api_version="v1", kind="Namespace").get(name=ns)
    assert api.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole").get(
        name=f"{ns}-x"
    )
    assert api.resources.get(api_version="v1", kind="Secret").get(name="labelled", namespace=ns)


def test_a_replica_count_handed_to_a_new_autoscaler_is_kept(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    spec = kube.root / "specs" / "credit-default.yaml"
    text = spec.read_text()
    fixed = text.replace("    autoscaling: {cpu: 70}\n", "").replace("{min: 1, max: 2}", "{min: 3, max: 3}")
    spec.write_text(fixed)
    assert kube("apply").code == 0
    assert live(api, "Deployment", "apps/v1", "credit-default", ns)["spec"]["replicas"] == 3
    spec.write_text(text.replace("{min: 1, max: 2}", "{min: 3, max: 6}"))  # autoscaling again
    diff = kube("diff")
    assert f"update: Deployment/{ns}/credit-default" in diff.out  # to let go of the count
    changed = [line for line in diff.out.splitlines() if line[:1] in "+-" and "replicas:" in line]
    assert not changed, diff.out  # the count is not dropped to the default of 1
    applied = kube("apply")
    assert applied.code == 0, applied.err
    deployment = live(api, "Deployment", "apps/v1", "credit-default", ns)
    assert deployment["spec"]["replicas"] == 3  # not defaulted to 1 before the HPA acts
    owners = {
        e["manager"]: e.get("fieldsV1", {}).get("f:spec", {}) for e in deployment["metadata"]["managedFields"]
    }
    assert "f:replicas" in owners.get("modelops-handover", {}), (owners, applied.out)
    assert "f:replicas" not in owners["modelops"]
    assert (
        live(api, "HorizontalPodAutoscaler", "autoscaling/v2", "credit-default", ns)["spec"]["minReplicas"]
        == 3
    )


def test_prune_deletes_the_object_planned_not_one_made_again_since(kube: Kube, api: Any) -> None:
    from compiler import api as modelops
    from compiler.reconcile.apply import ApplyOptions
    from compiler.reconcile.client import connect
    from compiler.reconcile.errors import StageError

    ns = namespace(kube.root)
    assert kube("apply").code == 0
    (kube.root / "specs" / "loan-risk-score.yaml").unlink()
    options = modelops.Options(paths=[kube.root / "specs"], environments=["staging"])
    (target,) = modelops.targets(options, "testenv")
    cluster = connect("testenv", str(kube.plane.kubeconfig))
    changes = modelops.plan(cluster, target)
    assert any(c.ref.name == "loan-risk-score-config" and c.action.value == "prune" for c in changes)
    # Between the plan and the prune, someone deletes the ConfigMap and makes another of that name.
    configmaps = api.resources.get(api_version="v1", kind="ConfigMap")
    old = configmaps.get(name="loan-risk-score-config", namespace=ns).to_dict()
    configmaps.delete(name="loan-risk-score-config", namespace=ns)
    labels = old["metadata"]["labels"]
    again = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "loan-risk-score-config", "labels": labels},
    }
    configmaps.create(body={**again, "data": {"owner": "someone else"}}, namespace=ns)
    with pytest.raises(StageError) as stopped:
        modelops.apply(cluster, target, changes, ApplyOptions(prune=True, allow_mass_delete=True))
    assert "replaced since it was planned" in str(stopped.value)
    assert live(api, "ConfigMap", "v1", "loan-risk-score-config", ns)["data"] == {"owner": "someone else"}


def test_a_namespace_someone_else_made_keeps_its_labels(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    namespaces = api.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": "x"}}}
    )
    applied = kube("apply")
    assert applied.code == 0, applied.err
    assert namespaces.get(name=ns).to_dict()["metadata"]["labels"] == {
        "team": "x",
        "kubernetes.io/metadata.name": ns,
    }
    assert live(api, "Deployment", "apps/v1", "credit-default", ns)  # the models are applied all the same


def test_mass_delete_guard(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    for name in ("loan-risk-score", "credit-default"):
        (kube.root / "specs" / f"{name}.yaml").unlink()
    refused = kube("apply", "--prune")
    assert refused.code == 1
    assert "prune would delete" in refused.err and "--prune-allow-mass-delete" in refused.err
    assert "nothing was applied" in refused.err
    assert live(api, "Deployment", "apps/v1", "credit-default", ns)
    assert kube("apply", "--prune", "--prune-allow-mass-delete").code == 0
    assert not api.resources.get(api_version="apps/v1", kind="Deployment").get(namespace=ns).items


def _report_rollout(api: Any, ns: str, name: str, ready: bool) -> None:
    deployments = api.resources.get(api_version="apps/v1", kind="Deployment")
    current = deployments.get(name=name, namespace=ns).to_dict()
    replicas = current["spec"].get("replicas", 1)
    status = {
        "observedGeneration": current["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas if ready else 0,
        "availableReplicas": replicas if ready else 0,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if ready else "False",
                "reason": "Test",
                "message": "set by the test",
            }
        ],
    }
    deployments.status.patch(
        name=name, namespace=ns, body={"status": status}, content_type="application/merge-patch+json"
    )


def test_wait_reports_rollouts(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    _report_rollout(api, ns, "credit-default", ready=True)
    _report_rollout(api, ns, "loan-risk-score", ready=False)
    waited = kube("apply", "--wait", "--timeout", "2")
    assert waited.code == 1
    assert f"Deployment/{ns}/loan-risk-score: 0/1 available" in waited.err
    assert "Available=False (Test: set by the test)" in waited.err
    _report_rollout(api, ns, "loan-risk-score", ready=True)
    waited = kube("apply", "--wait", "--timeout", "10")
    assert waited.code == 0, waited.err
    assert "staging: credit-default: ready" in waited.out and "staging: loan-risk-score: ready" in waited.out


def test_unreachable_api_server_is_a_clean_error(
    cli: Callable[..., Result], repo: Path, tmp_path: Path
) -> None:
    kubeconfig = _kubeconfig(tmp_path, "https://127.0.0.1:9")
    common = ["--env", "staging", "--context", "modelops-test", "--kubeconfig", kubeconfig]
    result = cli("diff", repo / "specs", *common)
    assert result.code == 2
    assert "cannot reach the API server" in result.err and "Traceback" not in result.err
    applied = cli("apply", repo / "specs", *common)
    assert applied.code == 1, applied.err
    assert "staging: planning failed: cannot reach the API server" in applied.err
    assert "staging: nothing was written" in applied.err and "running apply again converges" in applied.err


def _kubeconfig(tmp_path: Path, server: str) -> str:
    """A kubeconfig whose context `modelops-test` points at `server`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "modelops-test", "context": {"cluster": "test", "user": "u"}}],
        "current-context": "modelops-test",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    return str(tmp_path / "kubeconfig")


def test_immutable_fields_are_reported_and_recreated_with_force(kube: Kube, api: Any) -> None:
    ns = namespace(kube.root)
    assert kube("apply").code == 0
    deployments = api.resources.get(api_version="apps/v1", kind="Deployment")
    theirs = live(api, "Deployment", "apps/v1", "credit-default", ns)
    deployments.delete(name="credit-default", namespace=ns)
    labels = {"app": "legacy"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "credit-default", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, **theirs["spec"]["template"]["metadata"]["labels"]}},
                "spec": theirs["spec"]["template"]["spec"],
            },
        },
    }
    deployments.create(body=body, namespace=ns)
    refused = kube("apply")
    assert refused.code == 1
    assert "fields that cannot change in place changed; nothing was applied" in refused.err
    assert f"Deployment/{ns}/credit-default: " in refused.err and "field is immutable" in refused.err
    assert "Re-run with --force" in refused.err
    diff = kube("diff").out
    assert f"recreate: Deployment/{ns}/credit-default" in diff
    assert "credit-default/staging: 0 to update, 0 to create, 0 to prune, 1 to recreate" in diff
    assert kube("apply", "--force").code == 0
    selector = live(api, "Deployment", "apps/v1", "credit-default", ns)["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/instance": "credit-default-staging",
        "app.kubernetes.io/name": "credit-default",
    }


def test_the_control_plane_works_from_the_command_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    state = tmp_path / "cli-plane"

    def testenv(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tests.testenv", action, "--state", str(state)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        )

    started = testenv("start")
    try:
        assert started.returncode == 0, started.stderr
        assert f"export KUBECONFIG={state / 'kubeconfig'}" in started.stdout
        from kubernetes import client, config

        api = config.new_client_from_config(str(state / "kubeconfig"))
        crds = {
            c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items
        }
        assert {"prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"} <= crds
    finally:
        stopped = testenv("stop")
    assert stopped.returncode == 0
    assert not (state / "kube-apiserver.pid").exists() and not (state / "etcd.pid").exists()


def test_unknown_kube_context_is_a_usage_error(
    cli: Callable[..., Result], repo: Path, tmp_path: Path
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    for command in ("diff", "apply"):
        result = cli(
            command, repo / "specs", "--env", "staging", "--kubeconfig", str(tmp_path / "kubeconfig")
        )
        assert result.code == 2, (command, result.err)
        assert "cannot load kubeconfig" in result.err and "context staging" in result.err


def _sync_objects() -> list[dict[str, Any]]:
    generated = REPO / "generated"
    paths = sorted([*generated.glob("argocd/*.yaml"), *generated.glob("flux/*.yaml")])
    return [yaml.safe_load(path.read_text()) for path in paths]


def _dry_run_create(api: Any, obj: dict[str, Any]) -> None:
    """Create with dryRun=All and strict field validation: the API server checks the object
    against the CRD's schema (unknown fields too) and stores nothing."""
    from kubernetes.client import V1Namespace, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    namespace = obj["metadata"]["namespace"]
    with contextlib.suppress(ApiException):  # 409: there from an earlier test
        api.resources.get(api_version="v1", kind="Namespace").create(
            body=V1Namespace(metadata=V1ObjectMeta(name=namespace)).to_dict()
        )
    resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    resource.create(
        body=obj, namespace=namespace, dry_run="All", query_params=[("fieldValidation", "Strict")]
    )


def test_argo_cd_and_flux_accept_the_generated_entry_points(
    plane: controlplane.ControlPlane, api: Any
) -> None:
    """generated/argocd and generated/flux, checked by the CRDs that Argo CD 3.5 and Flux's
    kustomize-controller publish, served by a real API server."""
    from kubernetes.dynamic.exceptions import DynamicApiError

    controlplane.install_sync_tool_crds(plane)
    api.resources.invalidate_cache()
    objects = _sync_objects()
    assert {o["kind"] for o in objects} == {"ApplicationSet", "Kustomization"} and len(objects) == 4
    for obj in objects:
        _dry_run_create(api, obj)
    # and the check is real: what either schema refuses is refused
    appset = copy.deepcopy(next(o for o in objects if o["kind"] == "ApplicationSet"))
    appset["spec"]["template"]["spec"]["destination"]["servr"] = appset["spec"]["template"]["spec"][
        "destination"
    ].pop("server")
    flux = copy.deepcopy(next(o for o in objects if o["kind"] == "Kustomization"))
    flux["spec"]["interval"] = "every five minutes"
    for broken, words in ((appset, "servr"), (flux, "interval")):
        with pytest.raises(DynamicApiError) as refused:
            _dry_run_create(api, broken)
        assert refused.value.status in (400, 422)  # strict decoding, schema validation
        assert words in str(refused.value.body)


def test_apply_sends_exactly_the_objects_compile_writes() -> None:
    """Apply takes the objects from the render stage; they are the ones generated/<env>/ lists."""
    from compiler.compile import render_models
    from compiler.pipeline import check
    from compiler.reconcile.objects import rendered_objects
    from compiler.stamp import Stamp

    checked = check([REPO / "specs"])
    assert checked.catalog is not None
    project = checked.catalog.project
    files = render_models(checked.models, project, Stamp(None))
    for env in ("staging", "production"):
        listed = yaml.safe_load(files[f"{env}/kustomization.yaml"])["resources"]
        written = sorted(json.dumps(yaml.safe_load(files[f"{env}/{p}"]), sort_keys=True) for p in listed)
        objects = rendered_objects(checked.models, project, Stamp(None), env)
        assert sorted(json.dumps(d.body, sort_keys=True) for d in objects) == written
        kinds = [d.ref.kind for d in objects]
        assert kinds[0] == "Namespace" and kinds.index("ConfigMap") < kinds.index("Deployment")


def test_every_kind_apply_writes_into_a_namespace_may_be_pruned(tmp_path: Path) -> None:
    """Prune lists only the kinds in MEMBER_KINDS: each one apply writes, canaries' included."""
    from compiler.pipeline import check
    from compiler.reconcile.inventory import MEMBER_KINDS
    from compiler.reconcile.objects import rendered_objects
    from compiler.stamp import Stamp
    from tests.canary_project import add_candidate, copy_project, edit_spec

    root = copy_project(tmp_path)
    edit_spec(root, "credit-default", candidate=add_candidate(root, "credit-default"))
    checked = check([root / "specs"])
    assert checked.catalog is not None, checked.diagnostics
    project = checked.catalog.project
    kinds = {
        d.ref.kind
        for env in ("staging", "production")
        for d in rendered_objects(checked.models, project, Stamp(None), env)
        if d.ref.namespace
    }
    assert {"Rollout", "AnalysisTemplate", "Deployment"} <= kinds <= MEMBER_KINDS


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers, as an API server whose etcd is gone."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_silent_api_server_times_out_and_nothing_is_written(
    cli: Callable[..., Result], repo: Path, tmp_path: Path
) -> None:
    with _silent_server() as port:
        kubeconfig = _kubeconfig(tmp_path, f"http://127.0.0.1:{port}")
        common = ["--env", "staging", "--context", "modelops-test", "--kubeconfig", kubeconfig]
        diff = cli("diff", repo / "specs", *common, "--request-timeout", "0.5")
        assert diff.code == 2
        assert "no answer from the API server within 0.5s (--request-timeout)" in diff.err
        applied = cli("apply", repo / "specs", *common, "--request-timeout", "0.5")
    assert applied.code == 1, applied.err
    assert "staging: planning failed: no answer from the API server within 0.5s" in applied.err
    assert "staging: nothing was written" in applied.err and "running apply again converges" in applied.err


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--request-timeout", "0", "must be more than 0 seconds"),
        ("--request-timeout", "nan", "must be more than 0 seconds"),
        ("--timeout", "-1", "must be more than 0 seconds"),
        ("--timeout", "inf", "must be more than 0 seconds"),
        ("--prune-max-share", "nan", "must be a share from 0 to 1"),  # it would lift the guard
        ("--prune-max-share", "1.5", "must be a share from 0 to 1"),
        ("--prune-max-share", "half", "expected a number"),
    ],
)
def test_the_command_line_numbers_are_checked(
    cli: Callable[..., Result], repo: Path, flag: str, value: str, said: str
) -> None:
    result = cli("apply", repo / "specs", "--env", "staging", flag, value)
    assert result.code == 2
    assert f"argument {flag}: {said}" in result.err, result.err


def test_an_unexpected_error_is_called_a_bug_not_an_unreachable_server() -> None:
    from compiler.reconcile.errors import Fault, classify

    failure = classify(KeyError("metadata"), 30)
    assert failure.fault is Fault.UNEXPECTED
    assert "bug in modelops" in str(failure) and "cannot reach" not in str(failure)
    refused = classify(ConnectionRefusedError(111, "Connection refused"), 30)
    assert refused.fault is Fault.UNREACHABLE and "cannot reach the API server" in str(refused)


def test_a_write_cut_off_is_in_doubt_and_one_never_sent_is_not_applied() -> None:
    from compiler.reconcile.changeset import Action, Journal, Step
    from compiler.reconcile.errors import classify
    from compiler.reconcile.objects import ObjectRef

    steps = [Step(ObjectRef("", "ConfigMap", "ns", name), Action.CREATE) for name in ("a", "b", "c")]
    for error, in_doubt in (
        (ConnectionResetError(104, "reset"), True),
        (ConnectionRefusedError(111, "refused"), False),
    ):
        journal = Journal(list(steps))
        journal.write(steps[0], lambda: None)

        def cut_off(error: Exception = error) -> None:
            raise error

        with pytest.raises(ConnectionError) as raised:
            journal.write(steps[1], cut_off)
        progress = journal.progress(classify(raised.value, 30).sent)
        assert progress.done == (steps[0],)
        assert progress.in_flight == (steps[1] if in_doubt else None)
        assert progress.not_done == ((steps[2],) if in_doubt else (steps[1], steps[2]))

"""The real kube-apiserver, with the Argo Rollouts CRDs of v1.8.3, accepts every object of a
canary's model directory under strict field validation, and refuses deliberately broken copies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.apiserver import strict_dry_run
from tests.canary_project import add_candidate, copy_project, edit_spec, load, model_files
from tests.testenv.controlplane import ControlPlane

pytestmark = pytest.mark.cluster
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def client(rollouts_plane: ControlPlane) -> Any:
    from kubernetes import config, dynamic

    return dynamic.DynamicClient(config.new_client_from_config(str(rollouts_plane.kubeconfig)))


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Obj]]:
    """Every object the kustomization of each model directory applies, in both environments:
    credit-default a canary of a candidate, loan-risk-score a canary before its first candidate."""
    root = copy_project(tmp_path_factory.mktemp("canary"))
    edit_spec(root, "credit-default", candidate=add_candidate(root, "credit-default"))
    edit_spec(root, "loan-risk-score")
    return [
        (f"{env}/{model}/{name}", load(files[name]))
        for env in ("staging", "production")
        for model, files in model_files(root, env).items()
        for name in load(files["kustomization.yaml"])["resources"]
    ]


def test_the_api_server_accepts_every_object_of_a_canary(client: Any, objects: list[tuple[str, Obj]]) -> None:
    kinds = [obj["kind"] for _, obj in objects]
    assert kinds.count("Rollout") == 4 and kinds.count("AnalysisTemplate") == 4
    assert "Deployment" not in kinds
    for path, obj in objects:
        try:
            strict_dry_run(client, obj)
        except Exception as error:  # name the file the API server refused
            raise AssertionError(f"{path}: {error}") from error


def _broken(obj: Obj, path: tuple[str | int, ...], change: Any) -> Obj:
    """A copy with the field at `path` changed: a callable renames or retypes it in its parent."""
    broken = copy.deepcopy(obj)
    parent: Any = broken
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    return broken


def _rename(new: str) -> Any:
    return lambda parent, key: parent.__setitem__(new, parent.pop(key))


def _set(value: Any) -> Any:
    return lambda parent, key: parent.__setitem__(key, value)


@pytest.mark.parametrize(
    ("kind", "path", "change", "words"),
    [
        ("Rollout", ("spec", "strategy", "canary", "canaryService"), _rename("canarySvc"), "canarySvc"),
        ("Rollout", ("spec", "strategy", "canary", "steps", 0, "setWeight"), _set("ten"), "setWeight"),
        ("Rollout", ("spec", "template", "spec", "containers", 0, "image"), _rename("imag"), "imag"),
        (
            "AnalysisTemplate",
            ("spec", "metrics", 0, "successCondition"),
            _rename("successConditon"),
            "successConditon",
        ),
        (
            "AnalysisTemplate",
            ("spec", "metrics", 0, "provider", "prometheus", "query"),
            _set(["up"]),
            "query",
        ),
        ("AnalysisTemplate", ("spec", "metrics", 0, "name"), lambda p, k: p.pop(k), "name"),
    ],
    ids=[
        "misspelt-service",
        "weight-not-a-number",
        "misspelt-pod-field",
        "misspelt-condition",
        "query-not-text",
        "no-name",
    ],
)
def test_the_api_server_refuses_broken_copies(
    client: Any,
    objects: list[tuple[str, Obj]],
    kind: str,
    path: tuple[str | int, ...],
    change: Any,
    words: str,
) -> None:
    from kubernetes.dynamic.exceptions import DynamicApiError

    (obj,) = [o for p, o in objects if p.startswith("production/credit-default/") and o["kind"] == kind]
    strict_dry_run(client, obj)  # as generated: accepted
    with pytest.raises(DynamicApiError) as refused:
        strict_dry_run(client, _broken(obj, path, change))
    assert refused.value.status in (400, 422)
    assert words in str(refused.value.body)

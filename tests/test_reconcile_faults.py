"""Faults of the API server under `modelops apply`, against the real control plane (tests/testenv).

One part of the control plane is killed while a stage runs: kube-apiserver while pruning or
applying, etcd while planning. Each apply ends within its request timeout, exits 1 and says,
per object, what it wrote, what may have been written and what it did not reach (or that it
wrote nothing). After a restart on the same data, apply again converges and diff is clean.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Result, spec_text
from tests.testenv import controlplane

pytestmark = pytest.mark.cluster
MODELS = 12  # about 110 objects: each stage lasts long enough for a fault to land inside it
NAMESPACE = "ml-staging"
REQUEST_TIMEOUT = 5.0
# Planning's first request times out after REQUEST_TIMEOUT, those already sent within another;
# far below the minute kube-apiserver itself waits for a dead etcd.
ENDS_WITHIN = 4 * REQUEST_TIMEOUT
STAGE_TIMEOUT = 120.0  # for the apply to reach the stage the test interrupts


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[controlplane.ControlPlane]:
    with controlplane.running(tmp_path / "plane") as started:
        yield started


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    (root / "specs").mkdir(parents=True)
    shutil.copy(REPO / "specs" / "modelops.yaml", root / "specs")
    for i in range(MODELS):
        (root / "specs" / f"m{i:02d}.yaml").write_text(spec_text(f"m{i:02d}"))
    return root


class Modelops:
    """`modelops diff|apply` on the fleet's staging environment: in-process, or in the background."""

    def __init__(self, cli: Callable[..., Result], plane: controlplane.ControlPlane, root: Path) -> None:
        self.cli, self.plane, self.root = cli, plane, root
        self.process: subprocess.Popen[bytes] | None = None

    def arguments(self, command: str, *extra: str) -> list[str]:
        where = ["--env", "staging", "--context", "testenv", "--kubeconfig", str(self.plane.kubeconfig)]
        return [command, str(self.root / "specs"), *where, *extra]

    def __call__(self, command: str, *extra: str) -> Result:
        return self.cli(*self.arguments(command, *extra))

    def start(self, *extra: str) -> None:
        """`apply` in a child process, its output in files the test reads as it goes."""
        args = self.arguments("apply", "--request-timeout", f"{REQUEST_TIMEOUT:g}", *extra)
        with (self.root / "out.log").open("wb") as out, (self.root / "err.log").open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "compiler", *args],
                stdout=out,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
            )

    @property
    def err(self) -> str:
        return (self.root / "err.log").read_text()

    def wait_for(self, ready: Callable[[], bool], what: str) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STAGE_TIMEOUT
        while not ready():
            assert self.process.poll() is None, f"apply ended before {what}:\n{self.err}"
            assert time.monotonic() < deadline, f"apply never reached {what}:\n{self.err}"
            time.sleep(0.005)

    def wait_for_stage(self, stage: str) -> None:
        self.wait_for(lambda: f"staging: {stage}:" in self.err, stage)

    def finish(self) -> int:
        """The exit code; TimeoutExpired if the apply outlives ENDS_WITHIN."""
        assert self.process is not None
        return self.process.wait(timeout=ENDS_WITHIN)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def modelops(cli: Callable[..., Result], plane: controlplane.ControlPlane, fleet: Path) -> Iterator[Modelops]:
    runner = Modelops(cli, plane, fleet)
    try:
        yield runner
    finally:
        runner.stop()


def _api(plane: controlplane.ControlPlane) -> Any:
    from kubernetes import config, dynamic

    return dynamic.DynamicClient(config.new_client_from_config(str(plane.kubeconfig)))


def _count(api: Any, api_version: str, kind: str) -> int:
    return len(api.resources.get(api_version=api_version, kind=kind).get(namespace=NAMESPACE).items)


def _kill(plane: controlplane.ControlPlane, name: str) -> None:
    os.kill(int((plane.state / f"{name}.pid").read_text()), signal.SIGKILL)


def _refs(err: str, prefix: str) -> set[str]:
    """The objects on the lines `staging: <prefix>: <action> <ref>` (or `staging: <prefix> <ref>`)."""
    found = set()
    for line in err.splitlines():
        if line.startswith(f"staging: {prefix}"):
            found.add(line.removesuffix(" (ApplySet parent)").rsplit(" ", 1)[-1])
    return found


def _planned(modelops: Modelops, action: str) -> set[str]:
    diff = modelops("diff", "--format", "json")
    assert diff.code in (0, 1), diff.err
    return {c["ref"] for c in json.loads(diff.out) if c["action"] == action}


def _converges(modelops: Modelops, *extra: str) -> None:
    """After a restart on the same data: apply succeeds, and then nothing differs."""
    modelops.plane = controlplane.start(modelops.plane.state)
    again = modelops("apply", *extra)
    assert again.code == 0, again.err
    diff = modelops("diff")
    assert diff.code == 0, diff.out


def test_api_server_killed_while_pruning(modelops: Modelops, fleet: Path) -> None:
    assert modelops("apply").code == 0
    for spec in sorted((fleet / "specs").glob("m[0-9]*.yaml"))[1:]:
        spec.unlink()
    candidates = _planned(modelops, "prune")
    assert len(candidates) > 50
    api = _api(modelops.plane)
    modelops.start("--prune", "--prune-allow-mass-delete")
    modelops.wait_for_stage("pruning")
    # Monitoring objects go first; once one is gone, the stage is under way.
    modelops.wait_for(
        lambda: _count(api, "monitoring.coreos.com/v1", "PrometheusRule") < MODELS, "the first prune"
    )
    _kill(modelops.plane, "kube-apiserver")
    assert modelops.finish() == 1, modelops.err
    err = modelops.err
    assert "staging: pruning failed: " in err and "cannot reach the API server" in err
    assert "internal error" not in err and "Traceback" not in err
    pruned, not_pruned = _refs(err, "pruned "), _refs(err, "not pruned:")
    in_doubt = _refs(err, "unknown (may have been deleted):")
    assert pruned and not_pruned, err
    assert pruned | not_pruned | in_doubt == candidates  # every object accounted for, once
    assert len(pruned) + len(not_pruned) + len(in_doubt) == len(candidates)
    assert "running apply again converges" in err
    _converges(modelops, "--prune", "--prune-allow-mass-delete")


def test_etcd_killed_while_planning(modelops: Modelops) -> None:
    assert modelops("apply").code == 0
    modelops.start()
    modelops.wait_for_stage("planning")
    _kill(modelops.plane, "etcd")
    assert modelops.finish() == 1, modelops.err
    err = modelops.err
    assert f"staging: planning failed: no answer from the API server within {REQUEST_TIMEOUT:g}s" in err
    assert "staging: nothing was written" in err and "running apply again converges" in err
    _converges(modelops)


def test_api_server_killed_while_applying(modelops: Modelops) -> None:
    everything = _planned(modelops, "create")
    api = _api(modelops.plane)
    modelops.start()
    modelops.wait_for_stage("applying")
    modelops.wait_for(lambda: _count(api, "v1", "ServiceAccount") > 0, "the first ServiceAccount")
    _kill(modelops.plane, "kube-apiserver")
    assert modelops.finish() == 1, modelops.err
    err = modelops.err
    assert "staging: applying failed: " in err and "cannot reach the API server" in err
    created, not_applied = _refs(err, "created "), _refs(err, "not applied:")
    in_doubt = _refs(err, "unknown (may have been written):")
    assert created and not_applied, err
    assert f"Namespace/{NAMESPACE}" in created
    assert (created | not_applied | in_doubt) - {f"ConfigMap/{NAMESPACE}/modelops-staging"} == everything
    _converges(modelops)

"""Shared helpers: run the CLI in-process and build throw-away spec trees."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from compiler.cli.main import main
from tests.runtime import CREDIT, LOAN, Runtime, running, runtime_config

if TYPE_CHECKING:
    from tests.testenv.controlplane import ControlPlane

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `modelops ARGS...` in-process; return exit code and captured output."""
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str | Path) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse usage errors and --help
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The bundled credit-default runtime, one per test module that asks for it."""
    with running(runtime_config(*CREDIT), tmp_path_factory.mktemp("credit")) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def loan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The bundled loan-risk-score runtime, one per test module that asks for it."""
    with running(runtime_config(*LOAN), tmp_path_factory.mktemp("loan")) as runtime:
        yield runtime


@pytest.fixture(scope="session")
def rollouts_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One control plane per session with the Argo Rollouts CRDs (and the Prometheus Operator's):
    tests that need it use their own namespaces. No controllers run on it."""
    from tests.testenv import controlplane

    with controlplane.running(tmp_path_factory.mktemp("rollouts-plane")) as plane:
        controlplane.install_rollouts_crds(plane)
        yield plane


@pytest.fixture(scope="session")
def rollouts_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of its own with controllers: kube-controller-manager, kube-scheduler, kwok
    (two fake nodes; pods turn Ready without containers) and the Argo Rollouts controller."""
    from tests.testenv import cluster, controlplane

    with (
        controlplane.running(tmp_path_factory.mktemp("rollouts-cluster")) as plane,
        cluster.controllers(plane),
    ):
        yield plane


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the bundled project (specs, artifacts, holdouts, evaluation records), safe to edit."""
    root = tmp_path / "repo"
    shutil.copytree(SPECS, root / "specs")
    for directory in ("models", "data", "evaluations"):
        shutil.copytree(REPO / directory, root / directory)
    return root


BASE_SPEC = """\
apiVersion: modelops.dev/v1alpha1
kind: Model
metadata:
  name: {name}
  team: risk-analytics
spec:
  model:
    framework: sklearn
    task: classification
    version: 1.0.0
    uri: models/{name}.skops
    features:
      - {{name: income, type: float}}
  evaluation:
    dataset: data/{name}.csv
    target: label
    gates:
      accuracy: {{min: 0.8}}
  serving:
    replicas: {{min: 2, max: 4}}
  monitoring:
    slo:
      availability: 99.9
    alerts:
      runbook: https://runbooks.example/{name}
"""


def spec_text(name: str = "demo-model") -> str:
    return BASE_SPEC.format(name=name)


def many_specs(root: Path, count: int) -> Path:
    """A project under `root` with `count` specs (two environments each); its specs directory."""
    specs = root / "specs"
    specs.mkdir(parents=True)
    shutil.copy(SPECS / "modelops.yaml", specs / "modelops.yaml")
    for i in range(count):
        (specs / f"m{i:03d}.yaml").write_text(spec_text(f"m{i:03d}"))
    return specs

"""End to end: a canary earns its traffic, judged by the AnalysisTemplate the compiler wrote.

Real parts only: the compiled project is applied with `modelops apply` to the test control plane,
where kube-controller-manager, kube-scheduler, kwok (pods Ready without containers) and the Argo
Rollouts controller run (tests/testenv/cluster.py). The pods there run nothing, so the two
versions run here as real `modelops serve` processes, scraped by a real Prometheus with the labels
the pods' series would carry; the Rollouts controller runs the analysis against that Prometheus.
A good candidate is promoted to 100%; a candidate whose model fails every prediction (HTTP 500)
is aborted, and the stable keeps all its replicas.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.runtime import Runtime, columns, free_port, holdout_rows, running
from tests.test_e2e_prometheus import Prometheus, launch
from tests.testenv.cluster import wait
from tests.testenv.controlplane import ControlPlane

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

MODEL = "credit-default"
SPEC = Path("specs") / f"{MODEL}.yaml"
FEATURES = ["income", "debt_ratio", "credit_history_years", "open_accounts"]
HOLDOUT = "data/credit-default/holdout.csv"
CANDIDATE_URI = "models/credit-default/1.5.0/model.skops"
# Short enough for a test, long enough to judge: each measurement looks 10s back (and the first
# waits that long), one every 5s; the 50% step lasts 30s, so several measurements fall in it.
ROLLOUT = """\
  rollout:
    strategy: canary
    canary:
      steps: [{weight: 50, pause: 30s}]
      analysis: {interval: 5s, window: 10s, failureLimit: 1, minRequests: 5}
"""
# This machine (2 shared cores, both versions, Prometheus and the control plane on it) answers
# slower than a production pod: the latency SLO is one it meets for either version.
LATENCY = ("latency: {threshold: 250ms, target: 99}", "latency: {threshold: 500ms, target: 95}")
COUNTER = itertools.count()
# production's serving.replicas.min: the HorizontalPodAutoscaler lifts the Rollout to it
REPLICAS = 3


def _modelops(root: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "compiler", *args], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"modelops {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _candidate(root: Path, broken: bool) -> str:
    """Train the candidate 1.5.0 on the holdout, save it as skops; its sha256. A broken one has
    a coefficient row one feature short: it loads and fits the spec, then every predict raises."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from compiler.modelio.skops_files import deterministic_bytes

    with (root / HOLDOUT).open() as handle:
        rows = list(csv.DictReader(handle))
    x = np.array([[float(row[name]) for name in FEATURES] for row in rows])
    y = np.array([int(float(row["default"])) for row in rows])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(x, y)
    if broken:
        model[-1].coef_ = model[-1].coef_[:, :-1]
    data = deterministic_bytes(model)
    path = root / CANDIDATE_URI
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@dataclass
class Scene:
    root: Path
    plane: ControlPlane
    namespace: str
    prometheus_port: int
    api: Any

    def apply(self) -> str:
        return _modelops(
            self.root,
            "apply",
            "specs",
            "--env",
            "production",
            "--context",
            "testenv",
            "--kubeconfig",
            str(self.plane.kubeconfig),
        )

    def runtime_config(self) -> dict[str, Any]:
        """The served version's runtime configuration, as the compiled ConfigMap carries it."""
        out = self.root / "compiled"
        shutil.rmtree(out, ignore_errors=True)
        _modelops(self.root, "compile", "specs/", "--out", str(out), "--env", "production")
        config_map = yaml.safe_load(
            (out / "production" / self.namespace / MODEL / "configmap.yaml").read_text()
        )
        config: dict[str, Any] = json.loads(config_map["data"]["runtime.json"])
        return config

    def rollout(self) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get_namespaced_custom_object(
            "argoproj.io", "v1alpha1", self.namespace, "rollouts", MODEL
        )
        return found

    def healthy_on(self) -> str | None:
        """The pod-template hash the Rollout is Healthy on, fully promoted at the autoscaler's
        minimum replicas; None while not."""
        rollout = self.rollout()
        status = rollout.get("status", {})
        done = (
            rollout["spec"].get("replicas") == REPLICAS
            and status.get("phase") == "Healthy"
            and str(status.get("observedGeneration")) == str(rollout["metadata"]["generation"])
            and status.get("stableRS") == status.get("currentPodHash")
            and status.get("availableReplicas") == status.get("replicas")
        )
        return str(status["stableRS"]) if done else None

    def analysis_runs(self) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.api.list_namespaced_custom_object(
            "argoproj.io", "v1alpha1", self.namespace, "analysisruns"
        )["items"]
        return runs


@pytest.fixture
def scene(rollouts_cluster: ControlPlane, tmp_path: Path) -> Scene:
    """The bundled project with credit-default alone, in a namespace of its own, canary rollout,
    and the analysis pointed at the Prometheus this test starts on `prometheus_port`."""
    from kubernetes import client, config

    root = tmp_path / "repo"
    for name in ("specs", "models", "data", "evaluations"):
        shutil.copytree(REPO / name, root / name)
    (root / "specs" / "loan-risk-score.yaml").unlink()
    namespace = f"canary-{next(COUNTER)}-production"
    port = free_port()
    project = root / "specs" / "modelops.yaml"
    text = project.read_text().replace("ml-production", namespace)
    text = text.replace(
        f"    namespace: {namespace}\n",
        f"    namespace: {namespace}\n    prometheus: {{address: 'http://127.0.0.1:{port}'}}\n",
    )
    project.write_text(text)
    spec = root / SPEC
    text = spec.read_text().replace(*LATENCY).replace("  environments:\n", ROLLOUT + "  environments:\n", 1)
    spec.write_text(text)
    api = client.CustomObjectsApi(config.new_client_from_config(str(rollouts_cluster.kubeconfig)))
    return Scene(root, rollouts_cluster, namespace, port, api)


def _add_candidate(scene: Scene, broken: bool) -> None:
    sha256 = _candidate(scene.root, broken)
    spec = scene.root / SPEC
    candidate = f"  candidate: {{version: 1.5.0, uri: {CANDIDATE_URI}, sha256: {sha256}}}\n"
    spec.write_text(spec.read_text().replace("  evaluation:\n", candidate + "  evaluation:\n", 1))
    if not broken:  # the candidate's evaluation record gives the analysis its drift baseline
        _modelops(scene.root, "evaluate", "specs/")


@contextlib.contextmanager
def _prometheus(scene: Scene, targets: dict[str, Runtime], workdir: Path) -> Iterator[Prometheus]:
    """A real Prometheus on the port the analysis queries, scraping each runtime with the labels
    its pod's series would carry (the ServiceMonitor's namespace, pod and service)."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": MODEL,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{runtime.metrics_port}"],
                        "labels": {"namespace": scene.namespace, "pod": pod, "service": MODEL},
                    }
                    for pod, runtime in targets.items()
                ],
            }
        ],
    }
    server = launch(config, workdir, scene.prometheus_port)
    try:
        server.wait_for(f'count(up{{job="{MODEL}"}} == 1) == {len(targets)}', "both runtimes scraped")
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


@contextlib.contextmanager
def _traffic(runtimes: list[Runtime], batches: list[dict[str, Any]]) -> Iterator[None]:
    """About 10 requests a second to each runtime from a background thread, each the next batch
    of holdout rows: over any window the inputs follow the holdout, the drift baseline (the same
    few rows over and over would be drift)."""
    stop = threading.Event()

    def run() -> None:
        for batch in itertools.cycle(batches):
            if stop.wait(0.1):
                return
            for runtime in runtimes:
                runtime.request("POST", f"/v2/models/{MODEL}/infer", batch)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _canary(scene: Scene, tmp_path: Path, broken: bool, until: Callable[[str], Any]) -> tuple[str, Any]:
    """Roll out the stable, then the candidate while both versions serve traffic, until
    `until(stable's pod-template hash)` finds something; the hash and what it found."""
    stable_config = scene.runtime_config()
    scene.apply()
    stable = wait(scene.plane, scene.healthy_on, "the stable Rollout Healthy")
    _add_candidate(scene, broken)
    candidate_config = scene.runtime_config()
    assert candidate_config["model"]["version"] == "1.5.0"
    features = candidate_config["model"]["features"]
    rows = holdout_rows(HOLDOUT, 600)
    batches = [columns(rows[i : i + 20], features) for i in range(0, len(rows), 20)]
    pods = {f"{MODEL}-{stable}-stable": stable_config, f"{MODEL}-candidate": candidate_config}
    with contextlib.ExitStack() as stack:
        runtimes = [stack.enter_context(running(c, tmp_path, cwd=scene.root)) for c in pods.values()]
        for runtime in runtimes:  # the first answers (imports, caches) come before any scrape
            for batch in batches[:5]:
                runtime.request("POST", f"/v2/models/{MODEL}/infer", batch)
        stack.enter_context(_prometheus(scene, dict(zip(pods, runtimes, strict=True)), tmp_path))
        stack.enter_context(_traffic(runtimes, batches))
        scene.apply()
        found = wait(scene.plane, lambda: until(stable), "the canary's verdict", timeout=150)
    return stable, found


def test_a_good_candidate_earns_all_the_traffic(scene: Scene, tmp_path: Path) -> None:
    def promoted(stable: str) -> str | None:
        found = scene.healthy_on()
        return found if found not in (None, stable) else None

    _, promoted_hash = _canary(scene, tmp_path, broken=False, until=promoted)
    rollout = scene.rollout()
    assert rollout["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.5.0"
    assert rollout["status"]["stableRS"] == promoted_hash
    run = _latest(scene.analysis_runs())
    assert run["status"]["phase"] == "Successful", run["status"]
    measured = {m["name"]: m for m in run["status"]["metricResults"]}
    # judged on every check the spec allows: both SLOs, drift (the candidate's evaluation record
    # has a baseline) and, for this classifier, its class shares against the stable's
    assert set(measured) == {"availability", "latency", "drift", "class-shares"}
    assert measured["availability"]["successful"] >= 1, "the candidate was promoted with a verdict"
    assert all(m["phase"] == "Successful" for m in measured.values()), measured


def test_a_broken_candidate_is_aborted_and_the_stable_keeps_its_replicas(
    scene: Scene, tmp_path: Path
) -> None:
    from kubernetes import client, config

    def aborted(stable: str) -> dict[str, Any] | None:
        status: dict[str, Any] = scene.rollout().get("status", {})
        return status if status.get("abort") and status.get("phase") == "Degraded" else None

    stable, status = _canary(scene, tmp_path, broken=True, until=aborted)
    assert status["stableRS"] == stable
    run = _latest(scene.analysis_runs())
    assert run["status"]["phase"] == "Failed"
    failed = {m["name"] for m in run["status"]["metricResults"] if m["phase"] == "Failed"}
    assert failed == {"availability"}, run["status"]["metricResults"]

    apps = client.AppsV1Api(config.new_client_from_config(str(scene.plane.kubeconfig)))

    def stable_full() -> bool:
        sets = apps.list_namespaced_replica_set(scene.namespace).items
        by_hash = {rs.metadata.labels["rollouts-pod-template-hash"]: rs for rs in sets}
        others = [rs for h, rs in by_hash.items() if h != stable]
        return bool(
            by_hash[stable].spec.replicas == REPLICAS
            and by_hash[stable].status.ready_replicas == REPLICAS
            and all(not rs.spec.replicas for rs in others)
        )

    wait(scene.plane, stable_full, "the stable at full replicas, the canary scaled to zero")


def _latest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    assert runs, "the canary started an AnalysisRun"
    return max(runs, key=lambda run: str(run["metadata"]["creationTimestamp"]))

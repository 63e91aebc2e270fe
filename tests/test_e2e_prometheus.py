"""End to end: the runtime serves, a real Prometheus scrapes it and evaluates our rules.

Prometheus (Debian package `prometheus`, installed by `make tools`) runs on loopback with
the generated plain rule file; assertions go through its HTTP API.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.metrics.drift import bin_labels, bin_of, psi
from tests.evaluated_project import compiled_config, evaluated_project
from tests.runtime import REPO, Runtime, columns, free_port, holdout_rows, running

MODEL = ("production", "ml-production", "credit-default")


class Prometheus:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port, self.process, self.log = port, process, log

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            payload = json.loads(response.read())
        assert payload["status"] == "success", payload
        result: list[dict[str, Any]] = payload["data"]["result"]
        return result

    def wait_for(self, expr: str, what: str, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
            try:
                found = self.query(expr)
            except OSError:  # not listening yet
                found = []
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"{what}: `{expr}` stayed empty for {timeout}s")


QUALITY = "    quality:\n      accuracy: {min: 0.8}\n"
DRIFT = "    drift:\n      psi: {warning: 0.1, critical: 0.25}\n"


def own_quality_slo(specs: Path) -> None:
    """The test's own accuracy SLO (default window and label delay) in place of the bundled ones."""
    spec = specs / "credit-default.yaml"
    without = re.sub(r"^    quality:.*\n(?:      .*\n)+", "", spec.read_text(), flags=re.MULTILINE)
    spec.write_text(without.replace(DRIFT, DRIFT + QUALITY, 1))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled project evaluated and compiled afresh, credit-default with an accuracy SLO."""
    return evaluated_project(tmp_path_factory.mktemp("project"), own_quality_slo)


@pytest.fixture
def runtime(generated: Path, tmp_path: Path) -> Iterator[Runtime]:
    with running(compiled_config(generated, *MODEL), tmp_path) as served:
        yield served


@contextlib.contextmanager
def scraping(generated: Path, ports: list[int], tmp_path: Path) -> Iterator[Prometheus]:
    """A real Prometheus scraping the runtimes' metrics ports, with the model's rules."""
    rules = generated / "/".join(MODEL) / "rules.yaml"
    config = {
        # `increase` extrapolates each pod's counters by up to a scrape interval past its last
        # sample: frequent scrapes keep that, and so the pods' uneven weights, well under 1%.
        "global": {"scrape_interval": "250ms", "evaluation_interval": "250ms"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "modelops",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}" for port in ports], "labels": {"namespace": MODEL[1]}}
                ],
            }
        ],
    }
    server = launch(config, tmp_path)
    try:
        server.wait_for(
            f'count(up{{job="modelops"}} == 1) == {len(ports)}', "the runtimes are scraped", timeout=60
        )
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def launch(config: dict[str, Any], workdir: Path, port: int | None = None) -> Prometheus:
    """Start a real Prometheus on loopback (`port`, else a free one) with `config`; its
    configuration file, data and log in `workdir`. The caller terminates its process."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is installed by `make tools` (Debian package prometheus)"
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = port or free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Prometheus(port, process, log)


@pytest.fixture
def prometheus(generated: Path, runtime: Runtime, tmp_path: Path) -> Iterator[Prometheus]:
    with scraping(generated, [runtime.metrics_port], tmp_path) as server:
        yield server


class Traffic:
    """Requests from a background thread at a steady pace, until stopped (bounded)."""

    def __init__(
        self, runtime: Runtime, body: dict[str, Any] | bytes, per_second: float, limit_s: float = 120
    ) -> None:
        self.runtime, self.body, self.pause, self.limit_s = runtime, body, 1 / per_second, limit_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        ends = time.monotonic() + self.limit_s
        while not self.stop.is_set() and time.monotonic() < ends:
            if isinstance(self.body, bytes):
                self.runtime.request("POST", "/v2/models/credit-default/infer", raw=self.body)
            else:
                self.runtime.request("POST", "/v2/models/credit-default/infer", self.body)
            time.sleep(self.pause)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_recording_rules_and_alerts_against_a_real_prometheus(
    generated: Path, runtime: Runtime, prometheus: Prometheus
) -> None:
    features = compiled_config(generated, *MODEL)["model"]["features"]
    # 200 different holdout rows per request: a sample of the baseline distribution;
    # repeating a few rows would look like drift (and would be).
    rows = holdout_rows("data/credit-default/holdout.csv", 200)
    good = columns(rows, features)
    with Traffic(runtime, good, per_second=20):
        # SLI recording rules produce values from the live runtime's series. ">= 0" waits for a
        # number: evaluated before a second scrape has seen requests, the ratio is 0/0 (NaN).
        ratio = prometheus.wait_for(
            'slo:sli_error:ratio_rate5m{model="credit-default",slo="availability"} >= 0', "availability SLI"
        )
        assert float(ratio[0]["value"][1]) == 0.0
        latency = prometheus.wait_for('slo:sli_error:ratio_rate5m{slo="latency"} >= 0', "latency SLI")
        assert float(latency[0]["value"][1]) < 0.5
        prometheus.wait_for('slo:error_budget:remaining{slo="availability"}', "error budget remaining")
        assert not prometheus.query('ALERTS{alertname="ModelInvalidInputRatioHigh"}')
        assert not prometheus.query('ALERTS{alertname=~"ModelFeatureDrift.*"}')

        # a burst of invalid input makes the invalid-input alert go pending
        with Traffic(runtime, b'{"inputs": "not a list"}', per_second=20):
            alert = prometheus.wait_for(
                'ALERTS{alertname="ModelInvalidInputRatioHigh",model="credit-default"}', "invalid-input alert"
            )
        assert alert[0]["metric"]["alertstate"] in {"pending", "firing"}
        assert alert[0]["metric"]["team"] == "risk-analytics"

        # once PSI has a verdict, it says "no drift"
        psi = prometheus.wait_for('modelops:feature_drift:psi{feature="income"}', "a drift verdict")
        assert float(psi[0]["value"][1]) < 0.1
        # drifted inputs make the drift alert go pending for that feature only
        drifted = columns([{**r, "income": r["income"] * 5} for r in rows], features)
        with Traffic(runtime, drifted, per_second=20):
            drift = prometheus.wait_for(
                'ALERTS{alertname="ModelFeatureDriftCritical",feature="income"}', "drift alert"
            )
        assert drift[0]["metric"]["severity"] == "critical"
        assert not prometheus.query('ALERTS{alertname="ModelFeatureDriftCritical",feature="debt_ratio"}')
        # and the availability SLO never saw a server error
        assert not prometheus.query('ALERTS{alertname="ModelAvailabilityBudgetBurnFast"}')


def serve_on(config: dict[str, Any], workdir: Path, port: int, metrics_port: int) -> Runtime:
    """`modelops serve` on the given ports, so a restarted runtime is the same scrape target."""
    config_path = workdir / f"runtime-{port}.json"
    config_path.write_text(json.dumps(config))
    log = workdir / f"serve-{port}-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "compiler", "serve", "--config", str(config_path)]
    command += ["--port", str(port), "--metrics-port", str(metrics_port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    runtime = Runtime(process, port, metrics_port, log)
    runtime.wait_ready()
    return runtime


def _value(prometheus: Prometheus, expr: str) -> float:
    (found,) = prometheus.query(expr)
    return float(found["value"][1])


def _close(got: float, expected: float) -> bool:
    """Within 1% (or 0.001 for a value near zero, where a share's last digit dominates)."""
    return abs(got - expected) <= max(0.01 * abs(expected), 1e-3)


def test_two_runtimes_share_traffic_and_prometheus_computes_drift_and_accuracy(
    generated: Path, tmp_path: Path
) -> None:
    config = compiled_config(generated, *MODEL)
    features = config["model"]["features"]
    record = json.loads((generated.parent / "evaluations/credit-default/1.4.0.json").read_text())
    rows = holdout_rows("data/credit-default/holdout.csv", 1000)
    shifted = [{**row, "income": row["income"] * 1.5} for row in rows]
    ports = [(free_port(), free_port()), (free_port(), free_port())]
    runtimes = [serve_on(config, tmp_path, *pair) for pair in ports]
    try:
        started = time.monotonic()
        with scraping(generated, [metrics for _, metrics in ports], tmp_path) as prometheus:
            sent: list[dict[str, float]] = []
            predicted: list[int] = []
            labelled: list[tuple[float, int]] = []
            for i in range(18):  # three times the shifted holdout, 100 rows a request, alternating pods
                chunk = (shifted * 3)[i * 100 : (i + 1) * 100]
                runtime = runtimes[i % 2]
                status, answer = runtime.request(
                    "POST", "/v2/models/credit-default/infer", columns(chunk, features)
                )
                assert status == 200, answer
                sent += chunk
                predicted += answer["outputs"][0]["data"]
                if i % 3 == 0:  # labels come back for a third of the requests, to the pod that answered
                    truth = [row["default"] for row in chunk]
                    body = {"feedback": [{"id": answer["id"], "labels": truth}]}
                    assert runtime.request("POST", "/v2/models/credit-default/feedback", body)[0] == 200
                    labelled += zip(truth, answer["outputs"][0]["data"], strict=True)

            expected = {}
            for name, baseline in record["baseline"].items():
                labels = bin_labels(baseline["edges"], baseline.get("categories"))
                counts = [0] * len(labels)
                for row in sent:
                    counts[bin_of(baseline["edges"], baseline.get("categories"), row[name])] += 1
                expected[name] = psi(baseline["proportions"], counts)
            classes = record["predictions"]["categories"]
            prediction_counts = [predicted.count(int(c)) for c in classes] + [0]
            expected_prediction = psi(record["predictions"]["proportions"], prediction_counts)
            accuracy = sum(1 for t, p in labelled if t == p) / len(labelled)
            assert expected["income"] > 0.25 and expected["debt_ratio"] < 0.01

            scope = 'model="credit-default",namespace="ml-production"'
            time.sleep(max(0.0, started + 40 - time.monotonic()))  # series at least 40s long
            prometheus.wait_for(
                f'modelops:feature_samples:increase{{{scope},feature="income"}} >= {len(sent) - 1}',
                "every request scraped from both pods",
            )
            prometheus.wait_for(f'slo:sli_error:ratio_rate30m{{{scope},slo="accuracy"}}', "accuracy SLI")

            def verdict() -> None:
                for name, value in expected.items():
                    got = _value(prometheus, f'modelops:feature_drift:psi{{{scope},feature="{name}"}}')
                    assert _close(got, value), (name, got, value)
                got = _value(prometheus, f"modelops:prediction_drift:psi{{{scope}}}")
                assert _close(got, expected_prediction), (got, expected_prediction)
                error = _value(prometheus, f'slo:sli_error:ratio_rate30m{{{scope},slo="accuracy"}}')
                assert _close(1 - error, accuracy), (1 - error, accuracy)
                assert prometheus.wait_for(
                    'ALERTS{alertname="ModelFeatureDriftCritical",feature="income"}', "drift verdict"
                )
                assert not prometheus.query(
                    'ALERTS{alertname="ModelFeatureDriftWarning",feature="debt_ratio"}'
                )

            verdict()
            # one pod restarts: its counters start again at 0, and the window still holds its traffic
            runtimes[1].stop()
            runtimes[1] = serve_on(config, tmp_path, *ports[1])
            instance = f"127.0.0.1:{ports[1][1]}"
            prometheus.wait_for(
                f'sum(modelops_feature_bin_total{{instance="{instance}",feature="income"}}) == 0',
                "the restarted pod scraped with fresh counters",
            )
            time.sleep(3)  # a few rule evaluations after the reset
            verdict()
    finally:
        for runtime in runtimes:
            runtime.stop()

"""End to end: the runtime serves, a real Prometheus scrapes it and evaluates our rules.

Prometheus (Debian package `prometheus`, installed by `make tools`) runs on loopback with
the generated plain rule file; assertions go through its HTTP API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runtime import REPO, Runtime, columns, free_port, holdout_rows, running, runtime_config

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


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    config = runtime_config(*MODEL)
    config["drift"]["windowSize"] = 200
    with running(config, tmp_path) as served:
        yield served


@pytest.fixture
def prometheus(runtime: Runtime, tmp_path: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is installed by `make tools` (Debian package prometheus)"
    rules = REPO / "generated" / "/".join(MODEL) / "rules.yaml"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "modelops",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{runtime.metrics_port}"], "labels": {"namespace": MODEL[1]}}
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(port, process, log)
    try:
        server.wait_for('up{job="modelops"} == 1', "the runtime is scraped", timeout=60)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


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
    runtime: Runtime, prometheus: Prometheus
) -> None:
    features = runtime_config(*MODEL)["model"]["features"]
    # 200 different holdout rows per request fill the 200-value drift window with a sample
    # of the baseline distribution; repeating a few rows would look like drift (and would be).
    rows = holdout_rows("data/credit-default/holdout.csv", 200)
    good = columns(rows, features)
    with Traffic(runtime, good, per_second=20):
        # SLI recording rules produce values from the live runtime's series
        ratio = prometheus.wait_for(
            'slo:sli_error:ratio_rate5m{model="credit-default",slo="availability"}', "availability SLI"
        )
        assert float(ratio[0]["value"][1]) == 0.0
        latency = prometheus.wait_for('slo:sli_error:ratio_rate5m{slo="latency"}', "latency SLI")
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

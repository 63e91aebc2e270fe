"""`modelops serve` as a real HTTP server on loopback: OIP v2, bad input, metrics, shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from compiler.metrics import contract
from tests.runtime import (
    CREDIT,
    LOAN,
    REPO,
    Runtime,
    columns,
    holdout_rows,
    running,
    runtime_config,
    sample,
    start_runtime,
)


def features(model: tuple[str, str, str]) -> list[dict[str, str]]:
    return runtime_config(*model)["model"]["features"]


def test_health_and_metadata(credit: Runtime) -> None:
    assert credit.request("GET", "/v2/health/live") == (200, {"live": True})
    assert credit.request("GET", "/v2/health/ready") == (200, {"ready": True})
    status, meta = credit.request("GET", "/v2/models/credit-default")
    assert status == 200
    assert meta["versions"] == ["1.4.0"]
    assert [i["name"] for i in meta["inputs"]] == [
        "income",
        "debt_ratio",
        "credit_history_years",
        "open_accounts",
    ]
    assert credit.request("GET", "/v2/models/other")[0] == 404


def test_infer_by_named_inputs_and_by_matrix(credit: Runtime) -> None:
    rows = holdout_rows("data/credit-default/holdout.csv", 20)
    status, body = credit.request("POST", "/v2/models/credit-default/infer", columns(rows, features(CREDIT)))
    assert status == 200, body
    (output,) = body["outputs"]
    assert output["shape"] == [20] and set(output["data"]) <= {0, 1}
    names = [f["name"] for f in features(CREDIT)]
    matrix = {
        "id": "r-1",
        "inputs": [
            {"name": "x", "shape": [20, 4], "datatype": "FP64", "data": [[r[n] for n in names] for r in rows]}
        ],
    }
    status, again = credit.request("POST", "/v2/models/credit-default/infer", matrix)
    assert status == 200 and again["id"] == "r-1"
    assert again["outputs"][0]["data"] == output["data"]
    assert credit.request("POST", "/v2/models/credit-default/versions/1.4.0/infer", matrix)[0] == 200
    assert credit.request("POST", "/v2/models/credit-default/versions/9.9.9/infer", matrix)[0] == 404


def test_regressor_predicts_numbers(loan: Runtime) -> None:
    rows = holdout_rows("data/loan-risk-score/holdout.csv", 10)
    status, body = loan.request("POST", "/v2/models/loan-risk-score/infer", columns(rows, features(LOAN)))
    assert status == 200
    predicted = body["outputs"][0]["data"]
    assert body["outputs"][0]["datatype"] == "FP64"
    assert all(abs(p - r["risk_score"]) < 25 for p, r in zip(predicted, rows, strict=True))


BAD_INPUTS = {
    "json": (b"{not json", "json"),
    "nan": (
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [NaN, 1, 2, 3]}]}',
        "json",
    ),
    "no-inputs": (json.dumps({"inputs": []}).encode(), "schema"),
    "missing-feature": (
        json.dumps(
            {"inputs": [{"name": "income", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
        ).encode(),
        "schema",
    ),
    "wrong-width": (
        json.dumps(
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
        ).encode(),
        "schema",
    ),
    "string-value": (
        json.dumps(
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, "3", 4]}]}
        ).encode(),
        "type",
    ),
    "bytes-type": (
        json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": ["a"]}]}).encode(),
        "type",
    ),
    "fractional-int": (
        json.dumps(
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 0.2, 3, 4.5]}]}
        ).encode(),
        "type",
    ),
    "too-many-rows": (
        json.dumps(
            {"inputs": [{"name": "x", "shape": [10001, 4], "datatype": "FP64", "data": [0.0] * 40004}]}
        ).encode(),
        "size",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_400_and_counted(credit: Runtime, case: str) -> None:
    raw, reason = BAD_INPUTS[case]
    before = sample("modelops_invalid_inputs_total", credit.metrics(), reason=reason)
    status, body = credit.request("POST", "/v2/models/credit-default/infer", raw=raw)
    assert status == 400, body
    assert isinstance(body["error"], str) and body["error"]
    assert sample("modelops_invalid_inputs_total", credit.metrics(), reason=reason) == before + 1
    assert sample("modelops_requests_total", credit.metrics(), code="500") == 0


def test_latency_histogram_has_the_slo_threshold_bucket(credit: Runtime) -> None:
    text = credit.metrics()
    assert (
        'modelops_request_duration_seconds_bucket{le="0.25",model="credit-default",version="1.4.0"}' in text
    )
    assert (
        sample("modelops_model_info", text, model="credit-default", version="1.4.0", task="classification")
        == 1
    )


def _series_used(model_dir: Path) -> set[str]:
    names: set[str] = set()
    for group in yaml.safe_load((model_dir / "rules.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            names |= set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", rule["expr"]))
    dashboard = json.loads((model_dir / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names |= set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", target["expr"]))
    return {n for n in names if ":" not in n}  # recorded by the rules themselves (slo:, modelops:)


@pytest.mark.parametrize(("fixture", "model"), [("credit", CREDIT), ("loan", LOAN)])
def test_every_series_the_rules_and_dashboards_use_is_exported(
    request: pytest.FixtureRequest, fixture: str, model: tuple[str, str, str]
) -> None:
    runtime: Runtime = request.getfixturevalue(fixture)
    exported = {
        line.split("{")[0].split(" ")[0]
        for line in runtime.metrics().splitlines()
        if line and not line.startswith("#")
    }
    used = _series_used(REPO / "generated" / "/".join(model))
    assert used, "no series found in the rules and dashboards"
    assert used <= exported, used - exported
    assert used <= contract.series_names()


def test_not_ready_until_the_model_is_loaded(tmp_path: Path) -> None:
    """The artifact is a named pipe: loading blocks until we write the model into it."""
    fifo = tmp_path / "model.skops"
    os.mkfifo(fifo)
    config = runtime_config(*CREDIT)
    config["model"]["uri"] = "model.skops"
    runtime = start_runtime(config, tmp_path, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _ = runtime.request("GET", "/v2/health/live")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200
        assert runtime.request("GET", "/v2/health/ready")[0] == 503
        rows = holdout_rows("data/credit-default/holdout.csv", 2)
        assert (
            runtime.request("POST", "/v2/models/credit-default/infer", columns(rows, features(CREDIT)))[0]
            == 503
        )
        fifo.write_bytes((REPO / "models/credit-default/1.4.0/model.skops").read_bytes())
        runtime.wait_ready()
        assert (
            runtime.request("POST", "/v2/models/credit-default/infer", columns(rows, features(CREDIT)))[0]
            == 200
        )
    finally:
        runtime.stop()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x80\x04junk", "pickle"), (b"PK\x03\x04tampered", "but the spec pins")],
    ids=["pickle", "tampered"],
)
def test_refuses_to_serve_bad_artifacts(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "model.skops").write_bytes(content)
    config = runtime_config(*CREDIT)
    config["model"]["uri"] = "model.skops"
    if message == "pickle":
        config["model"]["sha256"] = None
    runtime = start_runtime(config, tmp_path, cwd=tmp_path)
    assert runtime.process.wait(timeout=60) == 1
    assert message in runtime.log.read_text()


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO / ".venv/bin/modelops"), "serve", "--config", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "cannot read the runtime configuration" in result.stderr


def test_sigterm_finishes_in_flight_requests(tmp_path: Path) -> None:
    rows = holdout_rows("data/credit-default/holdout.csv", 5)
    body = json.dumps(columns(rows, features(CREDIT))).encode()
    with running(runtime_config(*CREDIT), tmp_path) as runtime:
        client = socket.create_connection(("127.0.0.1", runtime.port))
        head = f"POST /v2/models/credit-default/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        client.sendall(head.encode() + body[:10])
        time.sleep(0.3)
        runtime.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", runtime.port), timeout=2).close()
        assert runtime.process.poll() is None, "still running while a request is in flight"
        client.sendall(body[10:])
        answer = b""
        client.settimeout(10)
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
        client.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert runtime.process.wait(timeout=30) == 0


def test_concurrent_requests(credit: Runtime) -> None:
    rows = holdout_rows("data/credit-default/holdout.csv", 3)
    payload = columns(rows, features(CREDIT))
    codes: list[int] = []

    def worker() -> None:
        for _ in range(20):
            codes.append(credit.request("POST", "/v2/models/credit-default/infer", payload)[0])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 160


def test_missing_extras_and_unreachable_hosts_are_clear(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    from compiler.modelio.fetch import fetch
    from compiler.modelio.skops_files import ArtifactError

    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the s3 extra were not installed
    with pytest.raises(ArtifactError, match=r"needs the optional extra: pip install 'modelops\[s3\]'"):
        fetch("s3://bucket/model.skops", tmp_path)
    monkeypatch.setitem(sys.modules, "google.cloud", None)
    with pytest.raises(ArtifactError, match=r"modelops\[gcs\]"):
        fetch("gs://bucket/model.skops", tmp_path)
    with pytest.raises(ArtifactError, match=re.escape("cannot download https://127.0.0.1:9/model.skops")):
        fetch("https://127.0.0.1:9/model.skops", tmp_path, timeout=5)
    with pytest.raises(ArtifactError, match="not found"):
        fetch("missing.skops", tmp_path)


def test_a_config_that_is_not_a_runtime_config_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "runtime.json"
    bad.write_text('{"model": {"name": "x"}}')
    result = subprocess.run(
        [str(REPO / ".venv/bin/modelops"), "serve", "--config", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "not a runtime configuration" in result.stderr and "Traceback" not in result.stderr
    bad.write_text("{not json")
    result = subprocess.run(
        [str(REPO / ".venv/bin/modelops"), "serve", "--config", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "not valid JSON or YAML" in result.stderr

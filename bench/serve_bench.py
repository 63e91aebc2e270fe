"""Load benchmark of `modelops serve` on loopback: throughput and p50/p99 latency per rate.

Open-loop load: requests are scheduled at a fixed rate and latency is measured from the
scheduled time, so a server that falls behind shows it (no coordinated omission). The
floor is the same model's bare `predict` on one row, in-process. Figures only.

    python bench/serve_bench.py [RATE ...]     (default: 50 100 200 400 800 requests/second)
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.runtime import columns, holdout_rows, running, runtime_config  # noqa: E402

MODEL = ("production", "ml-production", "credit-default")
INFER = "/v2/models/credit-default/infer"
FEEDBACK = "/v2/models/credit-default/feedback"
MIXED_INFER_RPS, MIXED_FEEDBACK_RPS = 200.0, 50.0
SECONDS_PER_LEVEL = 5.0
WORKERS = 16


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(
    port: int, body: bytes | Callable[[int], bytes], rate: float, path: str = INFER
) -> tuple[float, list[float], int]:
    """Send `rate` requests/second for SECONDS_PER_LEVEL; return achieved rate, latencies, errors.

    `body` is the request body, or makes the i-th request's body.
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    total = int(rate * SECONDS_PER_LEVEL)

    def worker(offset: int) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(offset, total, WORKERS):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                data = body(i) if callable(body) else body
                conn.request("POST", path, data, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                ok = False
            done = time.perf_counter()
            with lock:
                latencies.append(done - scheduled)
                errors += not ok
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, errors


def floor(rows: list[dict[str, float]]) -> tuple[float, float]:
    import numpy as np

    from compiler.modelio.skops_files import load_model

    model = load_model((REPO / "models/credit-default/1.4.0/model.skops").read_bytes())
    names = ["income", "debt_ratio", "credit_history_years", "open_accounts"]
    x = np.asarray([[rows[0][n] for n in names]])
    timings = []
    for _ in range(2000):
        t = time.perf_counter()
        model.predict(x)
        timings.append(time.perf_counter() - t)
    return statistics.median(timings), percentile(timings, 0.99)


def main(rates: list[float]) -> None:
    config = runtime_config(*MODEL)
    rows = holdout_rows("data/credit-default/holdout.csv", 1)
    body = json.dumps(columns(rows, config["model"]["features"])).encode()
    p50, p99 = floor(rows)
    print(f"floor: in-process predict of one row: p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms\n")
    print(f"{'target rps':>10} {'achieved rps':>12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}")
    with tempfile.TemporaryDirectory() as tmp, running(config, Path(tmp)) as runtime:
        drive(runtime.port, body, 50)  # warm-up
        for rate in rates:
            achieved, latencies, errors = drive(runtime.port, body, rate)
            print(
                f"{rate:>10.0f} {achieved:>12.1f} {percentile(latencies, 0.5) * 1000:>8.2f} "
                f"{percentile(latencies, 0.99) * 1000:>8.2f} {max(latencies) * 1000:>8.2f} {errors:>7}"
            )
        alone = percentile(drive(runtime.port, body, MIXED_INFER_RPS)[1], 0.99)
        mixed = mixed_load(runtime.port, rows, config["model"]["features"])
    inferred, feedback = mixed
    print(
        f"\n{MIXED_INFER_RPS:.0f} rps inference with {MIXED_FEEDBACK_RPS:.0f} rps feedback beside it: "
        f"inference p99 {percentile(inferred, 0.99) * 1000:.2f} ms "
        f"(alone, just before: {alone * 1000:.2f} ms), "
        f"feedback p99 {percentile(feedback, 0.99) * 1000:.2f} ms"
    )
    print(
        "\ntarget: p99 under 20 ms at 200 requests/second (one runtime process, 2 cores shared with "
        "the load);\nfeedback beside it keeps the inference p99 within 10%"
    )


def mixed_load(
    port: int, rows: list[dict[str, float]], features: list[dict[str, str]]
) -> tuple[list[float], list[float]]:
    """Inference with ids, and at the same time feedback for every fourth of them (a label per
    row); the latencies of each."""
    request = columns(rows, features)
    labels = [row["default"] for row in rows]

    def infer(i: int) -> bytes:
        return json.dumps({**request, "id": f"bench-{i}"}).encode()

    def feedback(i: int) -> bytes:
        return json.dumps({"feedback": [{"id": f"bench-{4 * i}", "labels": labels}]}).encode()

    results: dict[str, list[float]] = {}

    def run(name: str, make: Callable[[int], bytes], rate: float, path: str) -> None:
        results[name] = drive(port, make, rate, path)[1]

    threads = [
        threading.Thread(target=run, args=("infer", infer, MIXED_INFER_RPS, INFER)),
        threading.Thread(target=run, args=("feedback", feedback, MIXED_FEEDBACK_RPS, FEEDBACK)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results["infer"], results["feedback"]


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [50, 100, 200, 400, 800])

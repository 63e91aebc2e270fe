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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.runtime import columns, holdout_rows, running, runtime_config  # noqa: E402

MODEL = ("production", "ml-production", "credit-default")
SECONDS_PER_LEVEL = 5.0
WORKERS = 16


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(port: int, body: bytes, rate: float) -> tuple[float, list[float], int]:
    """Send `rate` requests/second for SECONDS_PER_LEVEL; return achieved rate, latencies, errors."""
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
                conn.request(
                    "POST", "/v2/models/credit-default/infer", body, {"Content-Type": "application/json"}
                )
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
    print(
        "\ntarget: p99 under 20 ms at 200 requests/second (one runtime process, 2 cores shared with the load)"
    )


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [50, 100, 200, 400, 800])

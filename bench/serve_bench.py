"""Load benchmark of `modelops serve` on loopback: throughput and p50/p99 latency per rate.

Open-loop load: requests are scheduled at a fixed rate and latency is measured from the
scheduled time, so a server that falls behind shows it (no coordinated omission). The
floor is the same model's bare `predict` on one row, in-process. The shadow figure compares
the stable's latency at 200 rps with a shadow candidate off and on. Figures only.

    python bench/serve_bench.py [RATE ...]     (default: 50 100 200 400 800 requests/second,
                                                then the shadow figure)
    python bench/serve_bench.py --shadow       (the shadow figure alone, about 40 seconds)
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.runtime import Runtime, columns, holdout_rows, running, runtime_config, sample  # noqa: E402

MODEL = ("production", "ml-production", "credit-default")
INFER = "/v2/models/credit-default/infer"
FEEDBACK = "/v2/models/credit-default/feedback"
MIXED_INFER_RPS, MIXED_FEEDBACK_RPS = 200.0, 50.0
SECONDS_PER_LEVEL = 5.0
SHADOW_RPS, SHADOW_ROUNDS, SHADOW_SECONDS = 200.0, 5, 2.0  # short rounds: off and on interleave
WORKERS = 16


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(
    port: int,
    body: bytes | Callable[[int], bytes],
    rate: float,
    path: str = INFER,
    seconds: float = SECONDS_PER_LEVEL,
) -> tuple[float, list[float], int]:
    """Send `rate` requests/second for `seconds`; return achieved rate, latencies, errors.

    `body` is the request body, or makes the i-th request's body.
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    total = int(rate * seconds)

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


def shadow_figure() -> None:
    """p99 of the stable's answers with the shadow off and on, measured in alternating rounds on
    two runtimes started side by side, so load from elsewhere on the machine falls on both."""
    from tests.test_shadow import CANDIDATE, regularised_candidate, save, with_shadow

    config = runtime_config(*MODEL)
    rows = holdout_rows("data/credit-default/holdout.csv", 600)
    bodies = [json.dumps(columns([row], config["model"]["features"])).encode() for row in rows]

    def body(i: int) -> bytes:
        return bodies[i % len(bodies)]

    latencies: dict[str, list[float]] = {"off": [], "on": []}
    rounds: dict[str, list[float]] = {"off": [], "on": []}  # each round's p99, to show the noise
    cpu = {"off": 0.0, "on": 0.0}  # the runtime's CPU seconds in the measured rounds
    with tempfile.TemporaryDirectory() as tmp:
        uri, sha256 = save(regularised_candidate(), Path(tmp) / "candidate.skops")
        with running(config, Path(tmp)) as off, running(with_shadow(MODEL, uri, sha256), Path(tmp)) as on:
            runtimes = {"off": off, "on": on}
            warm_up = {  # at the measured rate, not counted
                name: drive(runtime.port, body, SHADOW_RPS, seconds=SHADOW_SECONDS)[1]
                for name, runtime in runtimes.items()
            }
            sent = {name: len(values) for name, values in warm_up.items()}
            for _ in range(SHADOW_ROUNDS):
                for name, runtime in runtimes.items():
                    before = cpu_seconds(runtime.process.pid)
                    measured = drive(runtime.port, body, SHADOW_RPS, seconds=SHADOW_SECONDS)[1]
                    cpu[name] += cpu_seconds(runtime.process.pid) - before
                    latencies[name] += measured
                    rounds[name].append(percentile(measured, 0.99))
                    sent[name] += len(measured)
            counts = shadow_counts(on, sent["on"])
    p99 = {name: percentile(values, 0.99) for name, values in latencies.items()}
    print(
        f"\nshadow at {SHADOW_RPS:.0f} rps ({SHADOW_ROUNDS} alternating rounds of {SHADOW_SECONDS:.0f} s "
        f"each; candidate {CANDIDATE}: the stable retrained with C=0.01):"
    )
    for name, values in latencies.items():
        each = " ".join(f"{r * 1000:.1f}" for r in rounds[name])
        cost = cpu[name] / len(values) * 1000
        print(
            f"  shadow {name:<3}: p50 {percentile(values, 0.5) * 1000:.2f} ms, p99 {p99[name] * 1000:.2f} ms "
            f"({len(values)} requests, {cost:.2f} ms CPU each; p99 per round: {each})"
        )
    typical = {name: statistics.median(values) for name, values in rounds.items()}
    print(
        f"  p99 on / off: {p99['on'] / p99['off']:.3f} over all requests, "
        f"{typical['on'] / typical['off']:.3f} between the median rounds (target: at most 1.10)"
    )
    agree, disagree, error, dropped = counts
    print(
        f"  {sent['on']} one-row requests to the shadowed runtime: {agree + disagree + error:.0f} compared "
        f"(agree {agree:.0f}, disagree {disagree:.0f}, error {error:.0f}), dropped {dropped:.0f}"
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux): a cost that other load on the
    machine does not inflate, unlike latency."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shadow_counts(runtime: Runtime, sent: int) -> tuple[float, float, float, float]:
    """agree, disagree, error and dropped once the worker has caught up with `sent` requests
    (or after 30 seconds, if it has not)."""
    labels = {"model": "credit-default", "version": "1.4.0"}
    deadline = time.monotonic() + 30
    while True:
        text = runtime.metrics()
        outcomes = [
            sample("modelops_shadow_comparisons_total", text, outcome=o, **labels)
            for o in ("agree", "disagree", "error")
        ]
        dropped = sample("modelops_shadow_dropped_total", text, **labels)
        if sum(outcomes) + dropped >= sent or time.monotonic() > deadline:
            return outcomes[0], outcomes[1], outcomes[2], dropped
        time.sleep(0.1)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments != ["--shadow"]:
        main([float(a) for a in arguments] or [50, 100, 200, 400, 800])
    if not arguments or arguments == ["--shadow"]:
        shadow_figure()

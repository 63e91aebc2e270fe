"""Hostile and careless clients against the real runtime: a 4xx for each, never a 5xx, in bounded memory.

Every 500 counts against the availability SLO and can page someone, so the client's mistakes
(numbers out of range, deep nesting, huge bodies, leaving mid-body) must never produce one.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.serving.config import MAX_ROWS, RuntimeConfig
from tests.conftest import Result
from tests.runtime import (
    CHUNK,
    CREDIT,
    Runtime,
    read_response,
    running,
    runtime_config,
    sample,
)

INFER = "/v2/models/{}/infer"
MiB = 2**20
INVALID = "modelops_invalid_inputs_total"
REQUESTS = "modelops_requests_total"
# The stated bound on the runtime's peak memory above its size when ready: 4 bodies read at
# once, one parsed (a non-ASCII string takes 5 bytes per body byte), and the JSON values a
# request may hold (~100 bytes each, ~10 MiB for this model) with the interpreter's own.
MEMORY_BODY_LIMITS = 12
MEMORY_MORE = 64 * MiB


def body_limit(config: dict[str, Any]) -> int:
    return RuntimeConfig.model_validate(config).server.maxBodyBytes


def tensor(data: bytes, shape: bytes = b"[1, 4]") -> bytes:
    """An infer body with one [rows, 4] input whose data is given as JSON text."""
    return b'{"inputs": [{"name": "x", "shape": %b, "datatype": "FP64", "data": %b}]}' % (shape, data)


def nested_lists(size: int) -> bytes:
    """Valid JSON of exactly `size` bytes that would be as costly as JSON gets to parse."""
    unit = b"[" * 199 + b"]" * 199
    body = b"[" + b",".join([unit] * ((size - 2) // (len(unit) + 1)))
    return body + b" " * (size - len(body) - 1) + b"]"


def wide_string(size: int) -> bytes:
    """A JSON string of exactly `size` bytes that takes 4 bytes a character once parsed."""
    return b'"' + b"a" * (size - 6) + "\N{GRINNING FACE}".encode() + b'"'


def vm(runtime: Runtime, key: str) -> int:
    """A memory figure of the runtime's process (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{runtime.process.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/{runtime.process.pid}/status")


def server_errors(text: str) -> float:
    return sum(sample(REQUESTS, text, code=code) for code in ("500", "503"))


def invalid_total(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(INVALID + "{"))


def disconnect(runtime: Runtime, model: str) -> None:
    """Announce 1000 bytes, send a few, and leave."""
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=10) as client:
        head = f"POST {INFER.format(model)} HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"
        client.sendall(head.encode() + b'{"inputs": [')


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.05)


SMALL_LIMIT = 64 * 1024
SMALL_ROWS = 5


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A runtime with a 64 KiB body limit and 5 rows per request."""
    config = runtime_config(*CREDIT)
    config["server"] |= {"maxBodyBytes": SMALL_LIMIT, "maxRows": SMALL_ROWS}
    with running(config, tmp_path_factory.mktemp("small")) as runtime:
        yield runtime


HOSTILE: dict[str, tuple[bytes, str]] = {
    "ragged rows": (tensor(b"[[52000, 0.3, 8], [4, 61000, 0.2, 3, 2]]", shape=b"[2, 4]"), "schema"),
    "a row count that is true": (tensor(b"[[52000, 0.3, 8, 4]]", shape=b"[true, 4]"), "schema"),
    "401-digit integer": (tensor(b"[[" + b"9" * 401 + b", 1, 2, 3]]"), "range"),
    "100,000 [": (b"[" * 100_000, "json"),
    "100,000 {": (b'{"a":' * 100_000, "json"),
    "1e308 overflows inside the model": (tensor(b"[[1e308, 1e308, 1e308, 1e308]]"), "range"),
    "-1e308 overflows inside the model": (tensor(b"[[50000, -1e308, 1, 1]]"), "range"),
    "1e400 is infinite": (tensor(b"[[1e400, 1, 2, 3]]"), "range"),
    "Infinity": (tensor(b"[[Infinity, 1, 2, 3]]"), "json"),
    "5000-digit integer": (tensor(b"[[" + b"9" * 5000 + b", 1, 2, 3]]"), "json"),
    "not UTF-8": (b'{"inputs": "\xff\xfe"}', "json"),
    "empty body": (b"", "json"),
    "a list": (b"[1, 2, 3]", "schema"),
    "200,000 values": (b"[" + b"0," * 200_000 + b"0]", "size"),
    "a million nested arrays": (nested_lists(2 * MiB), "size"),
    "rows beyond any limit": (tensor(b"[]", shape=b"[" + b"9" * 300 + b", 4]"), "size"),
    "negative rows": (tensor(b"[]", shape=b"[-1, 4]"), "schema"),
    "a long string value": (tensor(b'[["' + b"a" * 100_000 + b'", 1, 2, 3]]'), "type"),
    "a datatype that is a long list": (
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": [' + b"0," * 50_000 + b'0], "data": []}]}',
        "type",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_input_is_a_short_400_counted_by_reason(credit: Runtime, case: str) -> None:
    body, reason = HOSTILE[case]
    before = credit.metrics()
    status, answer = credit.post_raw(INFER.format("credit-default"), body)
    after = credit.metrics()
    assert status == 400, answer
    assert 0 < len(answer["error"]) < 300, "the error must not echo what the client sent"
    assert sample(INVALID, after, reason=reason) == sample(INVALID, before, reason=reason) + 1
    assert server_errors(after) == server_errors(before) == 0


def test_values_a_tree_model_cannot_take_are_a_400(loan: Runtime) -> None:
    """The forest computes in float32: 1e39 fits a float64 but not a float32."""
    for data in (b"[[1e308, 36, 1e308, 1e308]]", b"[[1e39, 36, 50000, 0.3]]"):
        status, answer = loan.post_raw(INFER.format("loan-risk-score"), tensor(data))
        assert status == 400 and "out of the range" in answer["error"], answer
    assert sample(INVALID, loan.metrics(), reason="range") == 2
    assert server_errors(loan.metrics()) == 0


def test_a_client_that_leaves_mid_body_is_not_a_server_error(credit: Runtime) -> None:
    before = credit.metrics()
    disconnect(credit, "credit-default")
    wait_for(
        lambda: sample(REQUESTS, credit.metrics(), code="499") == sample(REQUESTS, before, code="499") + 1,
        "the runtime to notice the client left",
    )
    assert server_errors(credit.metrics()) == 0
    assert invalid_total(credit.metrics()) == invalid_total(before)
    assert "Traceback" not in credit.log.read_text()


def test_a_declared_length_over_the_limit_is_413_before_any_byte_of_the_body(small: Runtime) -> None:
    before = small.metrics()
    status, answer = small.post_raw(INFER.format("credit-default"), b"", declared=SMALL_LIMIT + 1)
    assert status == 413 and "server.maxBodyBytes" in answer["error"], answer
    assert status == small.post_raw(INFER.format("credit-default"), b"", declared=10**15)[0]
    assert sample(INVALID, small.metrics(), reason="size") == sample(INVALID, before, reason="size") + 2


def test_a_chunked_body_is_413_once_it_passes_the_limit(small: Runtime) -> None:
    """The body never ends: the answer comes when the bytes read pass the limit."""
    body = b" " * (SMALL_LIMIT + CHUNK)
    status, _ = small.post_raw(INFER.format("credit-default"), body, chunked=True, finish=False)
    assert status == 413


def test_bodies_up_to_the_limit_are_served(small: Runtime) -> None:
    row = b"[52000, 0.3, 8, 4]"
    body = tensor(b"[" + b", ".join([row] * SMALL_ROWS) + b"]", shape=b"[%d, 4]" % SMALL_ROWS)
    padded = body + b" " * (SMALL_LIMIT - len(body))
    assert small.post_raw(INFER.format("credit-default"), padded)[0] == 200
    assert small.post_raw(INFER.format("credit-default"), padded, chunked=True)[0] == 200
    assert small.post_raw(INFER.format("credit-default"), padded + b" ")[0] == 413


def test_rows_per_request_are_bounded_by_the_config(small: Runtime) -> None:
    rows = SMALL_ROWS + 1
    body = tensor(b"[" + b", ".join([b"[1, 0.3, 8, 4]"] * rows) + b"]", shape=b"[%d, 4]" % rows)
    status, answer = small.post_raw(INFER.format("credit-default"), body)
    assert status == 400 and "server.maxRows" in answer["error"], answer


def test_configs_without_the_limits_keep_working() -> None:
    """A runtime.json compiled before the limits existed still loads, with the defaults."""
    config = runtime_config(*CREDIT)
    config["server"] = {"port": 8080, "metricsPort": 9090}
    server = RuntimeConfig.model_validate(config).server
    assert server.maxRows == MAX_ROWS
    assert server.maxBodyBytes == 16 * MiB


def test_the_compiler_sizes_the_body_limit_from_the_pod_memory(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    spec = project / "specs" / "loan-risk-score.yaml"
    spec.write_text(spec.read_text().replace("limits: {memory: 768Mi}", "limits: {memory: 2Gi}"))
    assert cli("compile", project / "specs", "--out", tmp_path / "out").code == 0
    expected = {"credit-default": 1024 * MiB // 64, "loan-risk-score": 2048 * MiB // 64}
    for model, limit in expected.items():
        config_map = yaml.safe_load(
            (tmp_path / "out" / "/".join(CREDIT[:2]) / model / "configmap.yaml").read_text()
        )
        server = json.loads(config_map["data"]["runtime.json"])["server"]
        assert server["maxBodyBytes"] == limit and server["maxRows"] == MAX_ROWS


def test_many_large_bodies_at_once_are_read_a_few_at_a_time(tmp_path: Path) -> None:
    """16 clients each send all but the last byte of a body at the limit: only 4 are taken in."""
    config = runtime_config(*CREDIT)
    limit = body_limit(config)
    body = memoryview(b'"' + b"a" * (limit - 2) + b'"')  # valid JSON that parses to one string
    head = f"POST {INFER.format('credit-default')} HTTP/1.1\r\nHost: test\r\nContent-Length: {limit}\r\n\r\n"
    release = threading.Event()
    sent: list[int] = []

    def client() -> int:
        with socket.create_connection(("127.0.0.1", runtime.port), timeout=120) as connection:
            connection.sendall(head.encode())
            connection.sendall(body[:-1])
            sent.append(1)
            release.wait()
            connection.sendall(body[-1:])
            return read_response(connection)[0]

    with running(config, tmp_path) as runtime, ThreadPoolExecutor(16) as pool:
        ready = vm(runtime, "VmRSS")
        answers = [pool.submit(client) for _ in range(16)]
        wait_for(lambda: len(sent) >= 4, "four bodies to be taken in")
        settled = -1
        while settled != len(sent):  # until no more bodies get in
            settled = len(sent)
            time.sleep(1)
        holding = vm(runtime, "VmRSS") - ready
        release.set()
        codes = [answer.result() for answer in answers]
        peak = vm(runtime, "VmHWM") - ready
    assert codes == [400] * 16
    assert holding < 6 * limit, f"{holding / MiB:.0f} MiB held for bodies of {limit / MiB:.0f} MiB"
    bound = MEMORY_BODY_LIMITS * limit + MEMORY_MORE  # the stated bound; allocators and load vary
    assert peak < bound, f"peak {peak / MiB:.0f} MiB above the ready size (bound {bound / MiB:.0f} MiB)"


def test_a_thousand_malformed_requests_give_no_5xx_in_bounded_memory(tmp_path: Path) -> None:
    config = runtime_config(*CREDIT)
    limit = body_limit(config)
    model = "credit-default"
    path = INFER.format(model)
    small_cases = [body for body, _ in HOSTILE.values()]
    jobs: list[tuple[str, Callable[[Runtime], int | None]]] = []
    for i in range(936):
        body = small_cases[i % len(small_cases)]
        jobs.append(("400", lambda r, body=body: r.post_raw(path, body)[0]))
    for _ in range(8):
        jobs.append(("413", lambda r: r.post_raw(path, b"", declared=limit + 1)[0]))
        jobs.append(
            ("413", lambda r: r.post_raw(path, b" " * (limit + CHUNK), chunked=True, finish=False)[0])
        )
        jobs.append(("400", lambda r: r.post_raw(path, nested_lists(limit))[0]))
        jobs.append(("400", lambda r: r.post_raw(path, nested_lists(limit), chunked=True)[0]))
        jobs.append(("400", lambda r: r.post_raw(path, wide_string(limit))[0]))
        jobs.append(("400", lambda r: r.post_raw(path, b'{"inputs": [' * 3000)[0]))
        jobs.append(("400", lambda r: r.post_raw(path, tensor(b"[[1e308, 1e308, 1e308, 1e308]]"))[0]))
        jobs.append(("left", lambda r: disconnect(r, model)))
    random.Random(11).shuffle(jobs)
    assert len(jobs) == 1000

    with running(config, tmp_path) as runtime:
        ready = vm(runtime, "VmRSS")
        before = runtime.metrics()
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda job: job[1](runtime), jobs))
        left = sum(1 for kind, _ in jobs if kind == "left")
        wait_for(
            lambda: sample(REQUESTS, runtime.metrics(), code="499") == left,
            "the runtime to notice every client that left",
        )
        after = runtime.metrics()
        peak = vm(runtime, "VmHWM") - ready
        log = runtime.log.read_text()

    assert [str(code) for code, (kind, _) in zip(codes, jobs, strict=True) if kind != "left"] == [
        kind for kind, _ in jobs if kind != "left"
    ]
    assert server_errors(after) == server_errors(before) == 0
    assert invalid_total(after) - invalid_total(before) == len(jobs) - left
    assert "Traceback" not in log
    bound = MEMORY_BODY_LIMITS * limit + MEMORY_MORE
    assert peak < bound, f"peak {peak / MiB:.0f} MiB above the ready size; the bound is {bound / MiB:.0f} MiB"


def test_bodies_that_stall_get_408_and_free_their_share(tmp_path: Path) -> None:
    """Four clients stall mid-body, holding the whole body budget: each gets 408 after
    server.bodySeconds, and a request behind them is then served."""
    config = runtime_config(*CREDIT)
    config["server"] |= {"maxBodyBytes": SMALL_LIMIT, "bodySeconds": 2}
    head = f"POST {INFER.format('credit-default')} HTTP/1.1\r\nHost: test\r\nContent-Length: {SMALL_LIMIT}\r\n\r\n"

    sent = threading.Semaphore(0)

    def stalled() -> tuple[int, Any]:
        with socket.create_connection(("127.0.0.1", runtime.port), timeout=120) as connection:
            connection.sendall(head.encode() + b"[")
            sent.release()
            return read_response(connection)

    with running(config, tmp_path) as runtime, ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(stalled) for _ in range(4)]
        for _ in answers:
            sent.acquire(timeout=60)
        row = b"[52000, 0.3, 8, 4]"
        served = runtime.post_raw(INFER.format("credit-default"), tensor(b"[" + row + b"]"))
        outcomes = [answer.result() for answer in answers]
        assert "Traceback" not in runtime.log.read_text()
        assert sample(INVALID, runtime.metrics(), reason="timeout") == 4
    assert served[0] == 200, served
    assert [status for status, _ in outcomes] == [408] * 4
    assert all("server.bodySeconds" in body["error"] for _, body in outcomes)


def test_a_chunked_body_reserves_the_whole_limit_whatever_length_it_claims() -> None:
    """h11 reads a body sent with both Content-Length and chunked framing as chunked: the
    length it claims bounds nothing, so it must not be what the body budget counts."""
    import asyncio

    from starlette.requests import Request

    from compiler.serving.body import BodyBudget, read_body

    async def reserved_while_reading() -> int:
        budget = BodyBudget(4 * SMALL_LIMIT)
        started, go_on = asyncio.Event(), asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not started.is_set():
                started.set()
                return {"type": "http.request", "body": b"[", "more_body": True}
            await go_on.wait()
            return {"type": "http.request", "body": b"]", "more_body": False}

        headers = [(b"content-length", b"1"), (b"transfer-encoding", b"chunked")]
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive)
        reading = asyncio.create_task(read_body(request, SMALL_LIMIT, budget, 10))
        await started.wait()
        await asyncio.sleep(0)
        free = budget.free
        go_on.set()
        assert await reading == bytearray(b"[]")
        return 4 * SMALL_LIMIT - free

    assert asyncio.run(reserved_while_reading()) == SMALL_LIMIT


def test_an_unknown_model_name_is_not_echoed_whole(credit: Runtime) -> None:
    status, answer = credit.post_raw(INFER.format("a" * 50_000), tensor(b"[[52000, 0.3, 8, 4]]"))
    assert status == 404 and len(answer["error"]) < 300, len(answer["error"])

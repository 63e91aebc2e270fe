"""Run `modelops serve` for real on loopback, for the runtime and end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def runtime_config(env: str, namespace: str, model: str, root: Path = REPO) -> dict[str, Any]:
    config_map = yaml.safe_load((root / "generated" / env / namespace / model / "configmap.yaml").read_text())
    config: dict[str, Any] = json.loads(config_map["data"]["runtime.json"])
    return config


# (environment, namespace, model) of the bundled specs' compiled runtimes.
CREDIT = ("production", "ml-production", "credit-default")
LOAN = ("production", "ml-production", "loan-risk-score")


CHUNK = 64 * 1024


def sample(value: str, text: str, **labels: str) -> float:
    """The value of one series in a scrape, matched on the given labels."""
    for line in text.splitlines():
        if line.startswith(value + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {value}{labels}")


def read_response(client: socket.socket) -> tuple[int, Any]:
    """Status and JSON body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = client.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), json.loads(rest[:length] or b"null")


@dataclass
class Runtime:
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def post_raw(
        self,
        path: str,
        body: bytes,
        *,
        declared: int | None = None,
        chunked: bool = False,
        finish: bool = True,
    ) -> tuple[int, Any]:
        """POST over a bare socket, for what urllib cannot do: declare a Content-Length and send
        less of it, or stream `body` in chunks, and read the answer without finishing the body.
        """
        length = declared if declared is not None else len(body)
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
        head = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as client:
            client.sendall(head.encode())
            if chunked:
                for start in range(0, len(body), CHUNK):
                    piece = body[start : start + CHUNK]
                    client.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
                if finish:
                    client.sendall(b"0\r\n\r\n")
            else:
                client.sendall(body)
            return read_response(client)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            text: str = response.read().decode()
            return text

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"runtime exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            with contextlib.suppress(OSError, ValueError):
                if self.request("GET", "/v2/health/ready")[0] == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"runtime not ready after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_runtime(config: dict[str, Any], workdir: Path, *, cwd: Path = REPO) -> Runtime:
    config_path = workdir / f"runtime-{free_port()}.json"
    config_path.write_text(json.dumps(config))
    port, metrics_port = free_port(), free_port()
    log = workdir / f"serve-{port}.log"
    command = [
        sys.executable,
        "-m",
        "compiler",
        "serve",
        "--config",
        str(config_path),
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    return Runtime(process, port, metrics_port, log)


@contextlib.contextmanager
def running(config: dict[str, Any], workdir: Path, *, cwd: Path = REPO) -> Iterator[Runtime]:
    runtime = start_runtime(config, workdir, cwd=cwd)
    try:
        runtime.wait_ready()
        yield runtime
    finally:
        runtime.stop()


def columns(rows: list[dict[str, float]], features: list[dict[str, str]]) -> dict[str, Any]:
    """An OIP v2 request body with one input per feature."""
    return {
        "inputs": [
            {
                "name": f["name"],
                "shape": [len(rows)],
                "datatype": "INT64" if f["type"] == "int" else "FP64",
                "data": [row[f["name"]] for row in rows],
            }
            for f in features
        ]
    }


def holdout_rows(dataset: str, limit: int = 50) -> list[dict[str, float]]:
    import csv

    with (REPO / dataset).open() as handle:
        return [
            {k: float(v) for k, v in row.items()}
            for _, row in zip(range(limit), csv.DictReader(handle), strict=False)
        ]

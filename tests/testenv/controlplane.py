"""Start and stop etcd and kube-apiserver on loopback, and write a kubeconfig for them.

Everything lives in a state directory: data, certificates, logs, pid files and the
kubeconfig, so `python -m tests.testenv stop --state DIR` can stop what `start` started.
Authentication is a static bearer token for a user in system:masters; authorization is RBAC.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.testenv import build

READY_TIMEOUT = 120.0
LEFTOVER_GRACE = 3.0  # seconds: an API server whose etcd is gone takes long to shut down cleanly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class ControlPlane:
    state: Path
    server: str
    token: str

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def ca(self) -> Path:
        return self.state / "certs" / "apiserver.crt"


def spawn(name: str, args: list[str], state: Path) -> int:
    log = (state / f"{name}.log").open("ab")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (state / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def alive(pid: int) -> bool:
    """Whether `pid` still runs. A child of this process that exited is reaped here: until
    then it is a zombie, which signal 0 takes for alive (and its port for still in use)."""
    with contextlib.suppress(ChildProcessError):  # not our child, or reaped already
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _ready(server: str, token: str, ca: Path) -> bool:
    if not ca.is_file():
        return False
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(f"{server}/readyz", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return bool(response.status == 200)
    except (OSError, ssl.SSLError):
        return False


@contextlib.contextmanager
def running(state: Path) -> Iterator[ControlPlane]:
    """A control plane with the Prometheus Operator CRDs installed, stopped on leaving."""
    plane = start(state)
    try:
        install_crds(plane)
        yield plane
    finally:
        stop(state)


def start(state: Path) -> ControlPlane:
    """Start etcd and kube-apiserver in the background; return when /readyz answers.

    On a state directory used before (a restart after a fault), the data stays: an etcd that
    still runs is kept, a dead one starts again on its data and ports, and an API server left
    over from before is stopped (a new one, with a new token, replaces it)."""
    state.mkdir(parents=True, exist_ok=True)
    apiserver, etcd = build.kube_apiserver(), build.etcd()
    previous = (
        json.loads((state / "controlplane.json").read_text())
        if (state / "controlplane.json").is_file()
        else {}
    )
    stop_one(state, "kube-apiserver", timeout=LEFTOVER_GRACE)
    known = previous.get("etcd_port"), previous.get("etcd_peer_port")
    ports = (int(known[0]), int(known[1])) if known[0] and known[1] else None
    etcd_pid = state / "etcd.pid"
    if ports and etcd_pid.is_file() and alive(int(etcd_pid.read_text())):
        client, peer = ports
    else:
        stop_one(state, "etcd", timeout=LEFTOVER_GRACE)
        client, peer = ports if ports and (state / "etcd").is_dir() else (free_port(), free_port())
        _start_etcd(etcd, state, client, peer)
    secure = free_port()
    _start_apiserver(apiserver, state, client, secure)
    return _await(state, secure, client, peer)


def _start_etcd(etcd: Path, state: Path, client: int, peer: int) -> None:
    spawn(
        "etcd",
        [
            str(etcd),
            "--name=default",
            f"--data-dir={state / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        state,
    )


def _start_apiserver(apiserver: Path, state: Path, client: int, secure: int) -> None:
    token = secrets.token_hex(16)
    (state / "tokens.csv").write_text(f'{token},modelops-admin,1000,"system:masters"\n')
    key = state / "service-account.key"
    if not key.is_file():
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    certs = state / "certs"
    certs.mkdir(exist_ok=True)
    spawn(
        "kube-apiserver",
        [
            str(apiserver),
            f"--etcd-servers=http://127.0.0.1:{client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={secure}",
            f"--cert-dir={certs}",
            f"--token-auth-file={state / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ],
        state,
    )


def _await(state: Path, secure: int, client: int, peer: int) -> ControlPlane:
    token = (state / "tokens.csv").read_text().split(",", 1)[0]
    server = f"https://127.0.0.1:{secure}"
    plane = ControlPlane(state, server, token)
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(server, token, plane.ca):
        for name in ("etcd", "kube-apiserver"):
            if not alive(int((state / f"{name}.pid").read_text())):
                log = (state / f"{name}.log").read_text()[-3000:]
                stop(state)
                raise RuntimeError(f"{name} exited during start-up:\n{log}")
        if time.monotonic() > deadline:
            stop(state)
            raise RuntimeError(
                f"kube-apiserver not ready after {READY_TIMEOUT}s; see {state}/kube-apiserver.log"
            )
        time.sleep(0.25)
    _write_kubeconfig(plane)
    ports = {"etcd_port": client, "etcd_peer_port": peer}
    (state / "controlplane.json").write_text(json.dumps({"server": server, **ports}))
    return plane


def _write_kubeconfig(plane: ControlPlane) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "testenv", "cluster": {"server": plane.server, "certificate-authority": str(plane.ca)}}
        ],
        "users": [{"name": "admin", "user": {"token": plane.token}}],
        "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": "admin"}}],
        "current-context": "testenv",
    }
    plane.kubeconfig.write_text(yaml.safe_dump(config))


# Started by tests.testenv.cluster on a control plane; stopped with it, before the API server.
CONTROLLERS = ("rollouts-controller", "kwok", "kube-scheduler", "kube-controller-manager")


def stop(state: Path) -> None:
    """Stop the controllers started on this control plane, then kube-apiserver, then etcd."""
    for name in (*CONTROLLERS, "kube-apiserver", "etcd"):
        stop_one(state, name)


def stop_one(state: Path, name: str, timeout: float = 20) -> None:
    """SIGTERM first, SIGKILL if it lingers; then reap it and forget its pid."""
    pid_file = state / f"{name}.pid"
    if not pid_file.is_file():
        return
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


def install_crds(plane: ControlPlane) -> None:
    """Install the Prometheus Operator CRDs and wait until they are served."""
    names = ["prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"]
    _install(plane, build.prometheus_operator_crds(), names)


def install_sync_tool_crds(plane: ControlPlane) -> None:
    """Install Argo CD's ApplicationSet and Flux's Kustomization CRDs and wait until they are served."""
    names = ["applicationsets.argoproj.io", "kustomizations.kustomize.toolkit.fluxcd.io"]
    _install(plane, build.sync_tool_crds(), names)


ROLLOUTS_CRDS = [
    "rollouts.argoproj.io",
    "analysistemplates.argoproj.io",
    "clusteranalysistemplates.argoproj.io",
    "analysisruns.argoproj.io",
    "experiments.argoproj.io",
]


def install_rollouts_crds(plane: ControlPlane) -> None:
    """Install the Argo Rollouts CRDs and wait until they are served."""
    _install(plane, build.argo_rollouts_crds(), ROLLOUTS_CRDS)


def _install(plane: ControlPlane, paths: list[Path], names: list[str]) -> None:
    from kubernetes import client, config, utils

    api = config.new_client_from_config(str(plane.kubeconfig))
    for path in paths:
        with contextlib.suppress(utils.FailToCreateError):  # already there on a reused state
            utils.create_from_yaml(api, str(path))
    extensions = client.ApiextensionsV1Api(api)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conditions = [
            {
                c.type: c.status
                for c in (extensions.read_custom_resource_definition(n).status.conditions or [])
            }
            for n in names
        ]
        if all(c.get("Established") == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the CRDs {', '.join(names)} were not established within 60s")

"""Controllers on the test control plane, so workloads run as far as the API shows: pods get
scheduled and turn Ready without containers, and Argo Rollouts steps its canaries.

kube-controller-manager (the Deployment, ReplicaSet, ServiceAccount and HorizontalPodAutoscaler
controllers only), kube-scheduler, kwok (fake nodes; its "fast" stages make a scheduled pod
Running and Ready at once) and the Argo Rollouts controller, all with the control plane's admin
kubeconfig and their logs and pid files in its state directory, so `controlplane.stop` stops
them too.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.testenv import build, controlplane
from tests.testenv.controlplane import ControlPlane

READY_TIMEOUT = 120.0
NODES = ("kwok-node-0", "kwok-node-1")
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
T = TypeVar("T")


@contextlib.contextmanager
def controllers(plane: ControlPlane) -> Iterator[ControlPlane]:
    """`plane` with the controllers running (and the Argo Rollouts CRDs), stopped on leaving."""
    start(plane)
    try:
        yield plane
    finally:
        for name in controlplane.CONTROLLERS:
            controlplane.stop_one(plane.state, name)


def start(plane: ControlPlane) -> None:
    """Start the controllers and two fake nodes; return once a pod can become Ready."""
    controlplane.install_rollouts_crds(plane)
    kubeconfig = f"--kubeconfig={plane.kubeconfig}"
    binaries = {
        "kube-controller-manager": build.kube_controller_manager(),
        "kube-scheduler": build.kube_scheduler(),
        "kwok": build.kwok(),
        "rollouts-controller": build.rollouts_controller(),
    }
    state = plane.state
    controlplane.spawn(
        "kube-controller-manager",
        [
            str(binaries["kube-controller-manager"]),
            kubeconfig,
            "--controllers=deployment-controller,replicaset-controller,serviceaccount-controller,"
            "horizontal-pod-autoscaler-controller",
            # no metrics API here: the autoscaler only lifts a workload to its minimum replicas
            "--horizontal-pod-autoscaler-sync-period=2s",
            "--leader-elect=false",
            "--secure-port=0",
            "--concurrent-deployment-syncs=2",
            "--concurrent-replicaset-syncs=2",
        ],
        state,
    )
    controlplane.spawn(
        "kube-scheduler",
        [str(binaries["kube-scheduler"]), kubeconfig, "--leader-elect=false", "--secure-port=0"],
        state,
    )
    controlplane.spawn(
        "kwok",
        [
            str(binaries["kwok"]),
            kubeconfig,
            *(f"--config={stage}" for stage in build.kwok_stages()),
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
        ],
        state,
    )
    healthz = controlplane.free_port()
    controlplane.spawn(
        "rollouts-controller",
        [
            str(binaries["rollouts-controller"]),
            kubeconfig,
            "--leader-elect=false",
            f"--metricsport={controlplane.free_port()}",
            f"--healthzPort={healthz}",
            "--rollout-threads=2",
            "--analysis-threads=2",
            "--experiment-threads=1",
        ],
        state,
    )
    api = _api(plane)
    for node in NODES:
        _add_node(api, node)
    deadline = time.monotonic() + READY_TIMEOUT
    while not (_nodes_ready(api) and _healthy(healthz) and _default_account(api)):
        for name in controlplane.CONTROLLERS:
            if not controlplane.alive(int((state / f"{name}.pid").read_text())):
                log = (state / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"{name} exited during start-up:\n{log}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the controllers were not ready after {READY_TIMEOUT}s; see the logs in {state}"
            )
        time.sleep(0.5)


def _api(plane: ControlPlane) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(plane.kubeconfig)))


def _add_node(api: Any, name: str) -> None:
    """A fake node for kwok. Nodes may carry their status on create: the capacity includes
    ephemeral storage, which the generated pods request. The API server's admission taints a
    new node not-ready; no node lifecycle controller runs here to lift it, so it goes at once."""
    from kubernetes.client.exceptions import ApiException

    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    body = {
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": f"zone-{name[-1]}",
                "type": "kwok",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }
    with contextlib.suppress(ApiException):  # 409: there already, on a reused state
        api.create_node(body)
    api.patch_node(name, {"spec": {"taints": None}})


def _nodes_ready(api: Any) -> bool:
    ready = 0
    for node in api.list_node().items:
        if node.metadata.name in NODES:
            conditions = {c.type: c.status for c in (node.status.conditions or [])}
            ready += conditions.get("Ready") == "True"
    return ready == len(NODES)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _default_account(api: Any) -> bool:
    """The ServiceAccount controller has made the `default` account pods run as by default."""
    return any(a.metadata.name == "default" for a in api.list_namespaced_service_account("default").items)


def wait(plane: ControlPlane, check: Callable[[], T | None], what: str, timeout: float = 180) -> T:
    """Poll `check` until it returns something (not None, not False); on timeout fail with
    `what` and the controllers' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None and found is not False:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout}s\n{logs(plane.state)}")


def logs(state: Path) -> str:
    """The tail of every controller's log, for a failing test's message."""
    return "\n".join(
        f"--- {name}:\n{(state / f'{name}.log').read_text()[-2000:]}"
        for name in controlplane.CONTROLLERS
        if (state / f"{name}.log").is_file()
    )

"""Run the runtime: uvicorn for the API, prometheus-client's server for /metrics.

The model loads in the background so that liveness answers at once while readiness waits.
A model (or shadow candidate) that cannot load stops the process with exit code 1 and the
reason in the log: Kubernetes then shows the pod failing instead of one that never turns
ready. SIGTERM is uvicorn's graceful shutdown: stop accepting, finish in-flight requests,
then exit.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from compiler.errors import UsageError

if TYPE_CHECKING:
    import uvicorn
from compiler.modelio.skops_files import ArtifactError
from compiler.serving.config import RuntimeConfig

log = logging.getLogger("modelops.serve")
GRACEFUL_SHUTDOWN_SECONDS = 20  # below the pod's 30s terminationGracePeriodSeconds


def read_config(path: Path) -> RuntimeConfig:
    try:
        raw = yaml.safe_load(path.read_text())  # the ConfigMap carries JSON; YAML reads both
    except OSError as err:
        raise UsageError(f"{path}: cannot read the runtime configuration: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: not valid JSON or YAML: {err}") from err
    try:
        return RuntimeConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in err.errors()
        )
        raise UsageError(f"{path}: not a runtime configuration ({problems})") from err


def _graceful_server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn's server, but a SIGTERM ends in exit code 0 once in-flight requests are done.

    uvicorn re-raises the signal after its graceful shutdown, so the process would die of
    SIGTERM; the shutdown was orderly, so we report success instead.
    """
    import uvicorn

    class GracefulServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return GracefulServer(config)


def serve(config_path: Path, host: str, port: int | None, metrics_port: int | None) -> int:
    import uvicorn
    from prometheus_client import CollectorRegistry, disable_created_metrics, start_http_server

    from compiler.serving.app import create_app
    from compiler.serving.metrics import RuntimeMetrics
    from compiler.serving.model import ServedModel

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    config = read_config(config_path)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series double the scrape and no rule uses them
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(config, registry)
    served = ServedModel(config, Path.cwd(), metrics)
    metrics_server, metrics_thread = start_http_server(
        metrics_port if metrics_port is not None else config.server.metricsPort, addr=host, registry=registry
    )
    server = _graceful_server(
        uvicorn.Config(
            create_app(served),
            host=host,
            port=port if port is not None else config.server.port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            lifespan="off",
        )
    )

    def load() -> None:
        try:
            served.load()
        except ArtifactError as err:
            served.failure = err
            log.error("cannot serve %s: %s", config.model.name, err)
            server.should_exit = True

    threading.Thread(target=load, name="model-loader", daemon=True).start()
    try:
        server.run()
    finally:
        served.close()
        metrics_server.shutdown()
        metrics_thread.join(timeout=5)
    return 1 if served.failure is not None else 0

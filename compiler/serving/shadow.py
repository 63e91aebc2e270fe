"""The shadow (rollout.strategy: shadow): a candidate model scores a copy of every answered
request off the response path, and the runtime counts how often it agrees with the stable model.

The request only hands its validated rows and the stable's predictions to a bounded queue and
never waits on it: when the queue is full the copy is dropped and counted, the answer is not
delayed. One worker thread scores the candidate. Whatever the candidate does (fail, overflow,
answer nonsense) is counted as outcome=error and never reaches a client. The candidate touches
nothing the stable's series describe (feedback store, drift bins, predictions): those say what
users got. Memory: at most `shadow.queueSize` requests wait, each of at most `server.maxRows` rows.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
from pathlib import Path
from typing import Any

from compiler.modelio.fetch import fetch, verify
from compiler.modelio.fits import check_fits_spec
from compiler.modelio.skops_files import ArtifactError, load_model
from compiler.serving.config import RuntimeModel, RuntimeShadow
from compiler.serving.inference import Batch, scores
from compiler.serving.metrics import ShadowMetrics

log = logging.getLogger("modelops.serve")
STOP_SECONDS = 2.0  # how long shutdown waits for a candidate busy with its last request (a daemon)
Work = tuple[Batch, list[Any]]  # validated rows and the stable model's predictions for them


class Shadow:
    def __init__(
        self, model: RuntimeModel, shadow: RuntimeShadow, base: Path, metrics: ShadowMetrics
    ) -> None:
        self.model = model
        self.config = shadow
        self.base = base
        self.metrics = metrics
        self.estimator: Any = None
        self.tolerance = shadow.tolerance or 0.0
        self._queue: queue.Queue[Work | None] = queue.Queue(maxsize=shadow.queueSize)
        self._worker: threading.Thread | None = None
        self._failed_before = False

    def load(self) -> None:
        """Fetch, verify the pin, load and check the candidate as the stable model is; an
        ArtifactError names the candidate, so the log says which of the two cannot be served."""
        shadow = self.config
        log.info("loading the shadow candidate %s from %s", shadow.version, shadow.uri)
        try:
            data = fetch(shadow.uri, self.base)
            digest = verify(data, shadow.sha256, shadow.uri, "spec.candidate.sha256")
            estimator = load_model(data)
            check_fits_spec(estimator, self.model.task, [f.name for f in self.model.features])
        except ArtifactError as err:
            raise ArtifactError(f"the shadow candidate {shadow.version}: {err}") from None
        self.estimator = estimator
        log.info("shadowing with candidate %s (sha256 %s)", shadow.version, digest)

    def start(self) -> None:
        self._worker = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._worker.start()

    def submit(self, batch: Batch, predictions: list[Any]) -> None:
        """Queue a copy for the candidate, or count it dropped; never blocks the request.

        Nothing changes a Batch or the predictions once answered, so they are shared, not copied.
        """
        try:
            self._queue.put_nowait((batch, predictions))
        except queue.Full:
            self.metrics.dropped()

    def close(self) -> None:
        """Stop the worker; requests still waiting are not scored (the process is ending)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=STOP_SECONDS)
        if self._worker is not None:
            self._worker.join(STOP_SECONDS)

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            self._compare(*work)

    def _compare(self, batch: Batch, stable: list[Any]) -> None:
        """Score the candidate on the rows and count each row's outcome."""
        try:
            candidate: list[Any] = scores(self.estimator, batch).tolist()
            if len(candidate) != len(stable):
                raise ValueError(f"{len(candidate)} predictions for {len(stable)} rows")
            if self.model.task == "classification":
                agree = sum(1 for ours, theirs in zip(stable, candidate, strict=True) if ours == theirs)
            else:
                differences = [abs(float(c) - float(s)) for s, c in zip(stable, candidate, strict=True)]
                if not all(map(math.isfinite, differences)):
                    raise ValueError("a prediction that is not a finite number")
                self.metrics.differences(differences)
                agree = sum(1 for d in differences if d <= self.tolerance)
        except Exception as err:  # the candidate's failure is counted, never seen by a client
            self.metrics.compared("error", len(stable))
            if not self._failed_before:
                self._failed_before = True
                log.warning(
                    "the shadow candidate %s failed to predict (%s: %s); failures are counted "
                    "as outcome=error and not logged again",
                    self.config.version,
                    type(err).__name__,
                    err,
                )
            return
        self.metrics.compared("agree", agree)
        self.metrics.compared("disagree", len(stable) - agree)

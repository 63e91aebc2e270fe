"""The served model: fetched, verified and loaded once at start-up, then used per request."""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

from compiler.metrics.contract import OTHER_BIN
from compiler.modelio.fetch import fetch, verify
from compiler.modelio.fits import check_fits_spec
from compiler.modelio.skops_files import ArtifactError, load_model
from compiler.serving.config import RuntimeConfig
from compiler.serving.drift import Bins
from compiler.serving.feedback import Feedback, PendingPredictions
from compiler.serving.inference import Batch, InvalidInput, scores
from compiler.serving.metrics import RuntimeMetrics
from compiler.serving.shadow import Shadow

log = logging.getLogger("modelops.serve")
# A regressor's labels beyond this size are no measurement: the error counters (sums for the
# pod's life) would overflow to infinity, and RMSE with them, until the pod restarts.
LABEL_BOUND = 1e100


class ServedModel:
    def __init__(self, config: RuntimeConfig, base: Path, metrics: RuntimeMetrics) -> None:
        self.config = config
        self.base = base
        self.metrics = metrics
        self.estimator: Any = None
        self.failure: ArtifactError | None = None
        self.ready = threading.Event()
        drift = config.drift
        self.bins = {name: Bins(b) for name, b in drift.baseline.items()} if drift is not None else {}
        self.prediction_bins = Bins(drift.predictions) if drift is not None and drift.predictions else None
        self.pending = PendingPredictions(config.feedback.maxEntries, config.feedback.ttlSeconds)
        self.classes: dict[float, str] = {}  # a label's value -> the class it is, as metrics name it
        self.shadow = (
            Shadow(config.model, config.shadow, base, metrics.shadow)
            if config.shadow is not None and metrics.shadow is not None
            else None
        )

    @property
    def n_features(self) -> int | None:
        value = getattr(self.estimator, "n_features_in_", None)
        return int(value) if value is not None else None

    @property
    def width(self) -> int:
        """Features per row: the spec's, else the model's (1 when neither says)."""
        return len(self.config.model.features) or self.n_features or 1

    def load(self) -> None:
        """Fetch, verify the pin, load with the trusted-type list, and check it fits the spec;
        the shadow candidate too, if there is one: the pod is ready only with both."""
        model = self.config.model
        log.info("loading %s %s from %s", model.name, model.version, model.uri)
        data = fetch(model.uri, self.base)
        digest = verify(data, model.sha256, model.uri)
        estimator = load_model(data)
        check_fits_spec(estimator, model.task, [f.name for f in model.features])
        self.estimator = estimator
        classes = list(getattr(estimator, "classes_", []))
        self.metrics.known_classes(classes)
        if model.task == "classification":
            self.classes = {float(c): str(c) for c in classes}
        if self.shadow is not None:
            self.shadow.load()
            self.shadow.start()
        self.ready.set()
        log.info("ready: %s %s (sha256 %s)", model.name, model.version, digest)

    def close(self) -> None:
        """Stop the shadow's worker, if any (after the last request was answered)."""
        if self.shadow is not None:
            self.shadow.close()

    def predict(self, batch: Batch) -> list[Any]:
        """The model's predictions; InvalidInput when finite inputs overflow inside the model.

        Values such as 1e308 pass every input check, then overflow when scaled or cast to the
        float32 that trees compute in: that is the client's input, not a server fault.
        """
        import numpy as np

        try:
            result = scores(self.estimator, batch)
        except FloatingPointError as err:
            raise InvalidInput(
                "range", f"the input is out of the range the model can compute with ({err})"
            ) from None
        if result.dtype.kind == "f" and not np.isfinite(result).all():
            raise InvalidInput(
                "range", "the input is out of the range the model can compute with (its output is not finite)"
            )
        predictions: list[Any] = result.tolist()
        return predictions

    def observe(self, batch: Batch, key: str, predictions: list[Any]) -> None:
        """Count inputs and predictions in their baseline bins; hold predictions for feedback."""
        for feature, values in batch.columns.items():
            if (bins := self.bins.get(feature)) is not None:
                self.metrics.binned(feature, bins.count(values))
        if self.prediction_bins is not None:
            self.metrics.predictions_binned(self.prediction_bins.count(float(p) for p in predictions))
        dropped = self.pending.add(key, predictions)
        self.metrics.held(self.pending.held, dropped)

    def judge(self, items: list[Feedback]) -> dict[str, int]:
        """Score labelled predictions into the quality counters; how many were matched or not.

        Every item is checked before any is applied: a label count that does not match the
        request's rows is the client's mistake (InvalidInput) and leaves the store as it was.
        """
        regression = self.config.model.task == "regression"
        squared = 0.0  # the request's squared errors, which the counter adds up for the pod's life
        for item in items:
            entry = self.pending.peek(item.id)
            if entry is None:
                continue
            if len(entry.predictions) != len(item.labels):
                raise InvalidInput(
                    "schema",
                    f"feedback for {item.id!r} has {len(item.labels)} labels; "
                    f"its request had {len(entry.predictions)} rows",
                )
            if not regression:
                continue
            for predicted, label in zip(entry.predictions, item.labels, strict=True):
                error = float(predicted) - label
                squared += error * error
                if not abs(label) <= LABEL_BOUND or not math.isfinite(squared):
                    raise InvalidInput(
                        "range",
                        f"a label for {item.id!r} is too far from its prediction to score "
                        f"(labels of a regressor are at most {LABEL_BOUND:g} in size)",
                    )
        outcome = {"accepted": 0, "unknown": 0, "expired": 0}
        classified: list[tuple[str, str]] = []
        errors: list[float] = []
        for item in items:
            taken = self.pending.take(item.id)
            if isinstance(taken, str):
                outcome[taken] += 1
                self.metrics.feedback_unmatched(taken)
                continue
            outcome["accepted"] += 1
            if not regression:
                classified += [
                    (self.classes.get(label, OTHER_BIN), str(predicted))
                    for label, predicted in zip(item.labels, taken, strict=True)
                ]
            else:
                errors += [
                    float(predicted) - label for label, predicted in zip(item.labels, taken, strict=True)
                ]
        if classified:
            self.metrics.classified(classified)
        if errors:
            self.metrics.regressed(errors)
        self.metrics.held(self.pending.held, 0)
        return outcome

"""The served model: fetched, verified and loaded once at start-up, then used per request."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from compiler.modelio.fetch import fetch, verify
from compiler.modelio.fits import check_fits_spec
from compiler.modelio.skops_files import ArtifactError, load_model
from compiler.serving.config import RuntimeConfig
from compiler.serving.drift import DriftWindow
from compiler.serving.inference import Batch, InvalidInput
from compiler.serving.metrics import RuntimeMetrics

log = logging.getLogger("modelops.serve")


class ServedModel:
    def __init__(self, config: RuntimeConfig, base: Path, metrics: RuntimeMetrics) -> None:
        self.config = config
        self.base = base
        self.metrics = metrics
        self.estimator: Any = None
        self.failure: ArtifactError | None = None
        self.ready = threading.Event()
        self.drift = DriftWindow(config.drift) if config.drift is not None else None
        self._drift_lock = threading.Lock()

    @property
    def n_features(self) -> int | None:
        value = getattr(self.estimator, "n_features_in_", None)
        return int(value) if value is not None else None

    @property
    def width(self) -> int:
        """Features per row: the spec's, else the model's (1 when neither says)."""
        return len(self.config.model.features) or self.n_features or 1

    def load(self) -> None:
        """Fetch, verify the pin, load with the trusted-type list, and check it fits the spec."""
        model = self.config.model
        log.info("loading %s %s from %s", model.name, model.version, model.uri)
        data = fetch(model.uri, self.base)
        digest = verify(data, model.sha256, model.uri)
        estimator = load_model(data)
        check_fits_spec(estimator, model.task, [f.name for f in model.features])
        self.estimator = estimator
        self.metrics.known_classes(getattr(estimator, "classes_", []))
        self.ready.set()
        log.info("ready: %s %s (sha256 %s)", model.name, model.version, digest)

    def predict(self, batch: Batch) -> list[Any]:
        """The model's predictions; InvalidInput when finite inputs overflow inside the model.

        Values such as 1e308 pass every input check, then overflow when scaled or cast to the
        float32 that trees compute in: that is the client's input, not a server fault.
        """
        import numpy as np

        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                result = self.estimator.predict(np.asarray(batch.matrix(), dtype=float))
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

    def observe_inputs(self, batch: Batch) -> None:
        if self.drift is None:
            return
        with self._drift_lock:
            for feature, values in batch.columns.items():
                if feature in self.drift.edges:
                    self.metrics.drift_index(feature, self.drift.add(feature, values))

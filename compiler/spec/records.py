"""The evaluation record: measured metrics and drift baseline of one model version.

`modelops evaluate` writes it to evaluations/<model>/<version>.json, committed like a lock
file; `compile` reads it (no scikit-learn needed) to put measured gate values in the model
card and the drift baseline in the runtime configuration. It sits with the spec because the
catalog loads it as a project input; evaluate only writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

EVALUATIONS_DIR = "evaluations"


class FeatureBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    edges: list[float] = Field(description="Inner bin edges; bins are len(edges) + 1")
    proportions: list[float]
    categories: list[float] | None = Field(
        default=None, description="Sorted values of a categorical baseline; bins are these and 'other'"
    )


class RelativeOutcome(BaseModel):
    """One relative gate of a candidate: both versions' scores on the same holdout, the limit
    the candidate had to meet, and whether it did."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    stable: float | None = None
    candidate: float | None = None
    maxDrop: float | None = None
    maxIncrease: float | None = None
    limit: float | None = None
    passed: bool


class EvaluationRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    model: str
    version: str
    task: str
    artifact_sha256: str
    dataset: str
    dataset_sha256: str
    rows: int
    metrics: dict[str, float]
    baseline: dict[str, FeatureBaseline]
    predictions: FeatureBaseline | None = Field(
        default=None, description="The holdout's predictions: classes, or bins of a regressor's values"
    )
    relative: dict[str, dict[str, RelativeOutcome]] | None = Field(
        default=None,
        description="A candidate's relative gates: by the stable version compared with, then by metric",
    )

    @model_serializer(mode="wrap")
    def _without_absent_relative(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No `relative` key unless a candidate was compared: other records keep their shape."""
        data: dict[str, Any] = handler(self)
        if self.relative is None:
            data.pop("relative", None)
        return data


def record_path(root: Path, model: str, version: str) -> Path:
    return root / EVALUATIONS_DIR / model / f"{version}.json"


def write_record(root: Path, record: EvaluationRecord) -> Path:
    path = record_path(root, record.model, record.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    # exclude_none: a numeric baseline leaves out `categories`, a record without predictions that key
    path.write_text(
        json.dumps(record.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n"
    )
    return path


def load_records(root: Path) -> dict[tuple[str, str], EvaluationRecord]:
    """Every readable record under evaluations/, keyed by (model, version)."""
    records: dict[tuple[str, str], EvaluationRecord] = {}
    directory = root / EVALUATIONS_DIR
    if not directory.is_dir():
        return records
    for path in sorted(directory.glob("*/*.json")):
        try:
            record = EvaluationRecord.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            continue  # a damaged record is as good as none: evaluate writes it again
        records[(record.model, record.version)] = record
    return records

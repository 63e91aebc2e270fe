"""Read a holdout CSV into a feature matrix and a target vector, with clear errors."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from compiler.modelio.skops_files import ArtifactError


@dataclass(frozen=True)
class Holdout:
    features: list[str]
    x: np.ndarray
    y: np.ndarray


def read_holdout(data: bytes, name: str, target: str, features: list[str]) -> Holdout:
    """Columns `features` (all but the target when empty) and `target`, as floats."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ArtifactError(f"{name}: not a UTF-8 CSV file") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ArtifactError(f"{name}: the CSV file is empty")
    columns = {column.strip(): index for index, column in enumerate(header)}
    if target not in columns:
        raise ArtifactError(
            f"{name}: no column {target!r} (the evaluation target); columns: {', '.join(columns)}"
        )
    wanted = features or [c for c in columns if c != target]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise ArtifactError(f"{name}: missing feature column(s) {', '.join(missing)}")
    rows_x: list[list[float]] = []
    rows_y: list[float] = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            rows_x.append([float(row[columns[c]]) for c in wanted])
            rows_y.append(float(row[columns[target]]))
        except (ValueError, IndexError):
            raise ArtifactError(
                f"{name}:{line}: expected a number in every feature and target column"
            ) from None
    if not rows_y:
        raise ArtifactError(f"{name}: the CSV file has a header but no rows")
    return Holdout(wanted, np.asarray(rows_x, dtype=float), np.asarray(rows_y, dtype=float))

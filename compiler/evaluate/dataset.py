"""Read a holdout CSV into a feature matrix and a target vector, with clear errors.

No message quotes the file: a holdout set is data, not a spec, and what it holds is not
for CI logs. Messages name columns the spec asked for, line numbers and counts only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from compiler.modelio.skops_files import ArtifactError

MAX_DATASET_BYTES = 32 * 1024 * 1024


class DatasetError(ArtifactError):
    """A problem with the holdout set: reported at spec.evaluation.dataset, not at the model."""


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
        raise DatasetError(f"{name}: not a UTF-8 CSV file") from None
    reader = csv.reader(io.StringIO(text))
    try:
        return _parse(reader, name, target, features)
    except csv.Error as err:  # the csv module's messages describe the syntax, not the data
        raise DatasetError(f"{name}:{reader.line_num}: not a valid CSV file ({err})") from None


def _parse(reader: Iterator[list[str]], name: str, target: str, features: list[str]) -> Holdout:
    header = next(reader, None)
    if not header:
        raise DatasetError(f"{name}: the CSV file is empty")
    columns = {column.strip(): index for index, column in enumerate(header)}
    if target not in columns:
        raise DatasetError(
            f"{name}: no column {target!r} (the evaluation target) among its {len(header)} columns; "
            "the first line of the file must name the columns"
        )
    wanted = features or [c for c in columns if c != target]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DatasetError(f"{name}: missing feature column(s) {', '.join(missing)}")
    rows_x: list[list[float]] = []
    rows_y: list[float] = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            rows_x.append([float(row[columns[c]]) for c in wanted])
            rows_y.append(float(row[columns[target]]))
        except (ValueError, IndexError):
            raise DatasetError(
                f"{name}:{line}: expected a number in every feature and target column"
            ) from None
    if not rows_y:
        raise DatasetError(f"{name}: the CSV file has a header but no rows")
    return Holdout(wanted, np.asarray(rows_x, dtype=float), np.asarray(rows_y, dtype=float))

"""Open Inference Protocol v2 requests: validate them against the feature schema, predict.

Bad input is the client's problem, reported as InvalidInput (HTTP 400, or 413 for a body
over the limit) with a reason that the invalid-input counter carries; it must never surface
as a 500. Reasons: json (not strict JSON), schema (not the model's inputs), type (a value of
the wrong type), range (a number too large, or one that overflows inside the model), size
(a limit: body bytes, rows).
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Any

from compiler.serving.config import RuntimeConfig

_SHOWN = reprlib.Repr()  # how a client's value is quoted back in an error message: cut short
_SHOWN.maxstring = _SHOWN.maxlong = _SHOWN.maxother = 40
NUMERIC_TYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
)


class InvalidInput(Exception):
    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


def shown(value: Any) -> str:
    """A client's value for an error message, cut short: the answer must not echo a large body."""
    return _SHOWN.repr(value)


@dataclass(frozen=True)
class Batch:
    columns: dict[str, list[float]]  # feature name -> values, in schema order
    rows: int

    def matrix(self) -> list[list[float]]:
        names = list(self.columns)
        return [[self.columns[name][i] for name in names] for i in range(self.rows)]


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [value for row in data for value in (row if isinstance(row, list) else [row])]
    if isinstance(data, list):
        return data
    raise InvalidInput("schema", "'data' must be a list")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, feature: str, kind: str) -> float:
    if isinstance(value, bool):
        if kind != "bool":
            raise InvalidInput("type", f"feature {feature!r} expects a number, got {shown(value)}")
        return float(value)
    if not isinstance(value, int | float):
        raise InvalidInput("type", f"feature {feature!r} expects a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise InvalidInput("range", f"feature {feature!r} got {shown(value)}, beyond the range of a float")
    if kind == "int" and not number.is_integer():
        raise InvalidInput("type", f"feature {feature!r} expects an integer, got {shown(value)}")
    return number


def parse_request(body: Any, config: RuntimeConfig, n_features: int | None) -> Batch:
    """A validated batch from an infer request body (already JSON-decoded).

    The row count is checked before any value is converted, so the work done is bounded by
    `server.maxRows` whatever the body holds.
    """
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput("schema", "the body must be a JSON object with a non-empty 'inputs' list")
    inputs = body["inputs"]
    for tensor in inputs:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidInput("schema", "every input needs a 'name', 'shape', 'datatype' and 'data'")
        datatype = tensor.get("datatype")
        if not isinstance(datatype, str) or datatype.upper() not in NUMERIC_TYPES:
            raise InvalidInput(
                "type", f"input {shown(tensor['name'])}: datatype {shown(datatype)} is not numeric"
            )
    features: list[tuple[str, str]] = [(f.name, f.type) for f in config.model.features]
    max_rows = config.server.maxRows
    if len(inputs) == 1 and (not features or inputs[0]["name"] not in dict(features)):
        return _from_matrix(inputs[0], features, n_features, max_rows)
    return _from_columns(inputs, features, max_rows)


def _from_columns(inputs: list[dict[str, Any]], features: list[tuple[str, str]], max_rows: int) -> Batch:
    given = {tensor["name"]: tensor for tensor in inputs}
    names = [name for name, _ in features]
    missing = [name for name in names if name not in given]
    unknown = [name for name in given if name not in names]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing input(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown input(s) {shown(', '.join(unknown))}")
        raise InvalidInput("schema", "; ".join(parts) + f"; the model takes {', '.join(names)}")
    columns: dict[str, list[float]] = {}
    rows: int | None = None
    for name, kind in features:
        values = _flatten(given[name].get("data"))
        if rows is None:
            rows = _rows(len(values), max_rows)
        elif len(values) != rows:
            raise InvalidInput("schema", f"input {name!r} has {len(values)} values, others have {rows}")
        columns[name] = [_number(v, name, kind) for v in values]
    return Batch(columns, rows or 0)


def _from_matrix(
    tensor: dict[str, Any], features: list[tuple[str, str]], n_features: int | None, max_rows: int
) -> Batch:
    width = len(features) or n_features
    shape = tensor.get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(_count(s) for s in shape):
        raise InvalidInput(
            "schema", f"input {shown(tensor['name'])}: a single input needs shape [rows, {width}]"
        )
    rows, columns_given = _rows(shape[0], max_rows), shape[1]
    if columns_given != (width or columns_given) or columns_given < 1:
        raise InvalidInput(
            "schema",
            f"input {shown(tensor['name'])} has {shown(columns_given)} columns, "
            f"the model takes {width or 'at least 1'}",
        )
    data = tensor.get("data")
    rows_given = data if isinstance(data, list) else []
    nested = any(isinstance(row, list) for row in rows_given)
    if nested and not all(isinstance(row, list) and len(row) == columns_given for row in rows_given):
        # Values re-split into rows of another length would be predicted on, silently wrong.
        raise InvalidInput(
            "schema", f"input {shown(tensor['name'])}: each row must hold {columns_given} values"
        )
    values = _flatten(data)
    if len(values) != rows * columns_given:
        raise InvalidInput(
            "schema",
            f"input {shown(tensor['name'])}: shape {shown(shape)} needs {rows * columns_given} values, "
            f"got {len(values)}",
        )
    names = [(name, kind) for name, kind in features] or [(f"x{i}", "float") for i in range(columns_given)]
    columns = {
        name: [_number(values[r * columns_given + c], name, kind) for r in range(rows)]
        for c, (name, kind) in enumerate(names)
    }
    return Batch(columns, rows)


def _rows(rows: int, max_rows: int) -> int:
    """The row count, if the request may hold that many."""
    if rows <= 0:
        raise InvalidInput("schema", "the request holds no rows")
    if rows > max_rows:
        raise InvalidInput(
            "size", f"the request holds {shown(rows)} rows; the limit is {max_rows} (server.maxRows)"
        )
    return rows


def scores(estimator: Any, batch: Batch) -> Any:
    """The estimator's predictions (a numpy array) for the batch; a FloatingPointError when a
    value overflows inside the model instead of a silent inf or NaN."""
    import numpy as np

    with np.errstate(over="raise", invalid="raise", divide="raise"):
        return estimator.predict(np.asarray(batch.matrix(), dtype=float))


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def response(config: RuntimeConfig, predictions: list[Any], request_id: str) -> dict[str, Any]:
    """The OIP answer; it always carries the request's id, which feedback names it by."""
    values = [_jsonable(v) for v in predictions]
    if all(isinstance(v, bool) for v in values):
        datatype = "BOOL"
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        datatype = "INT64"
    elif all(isinstance(v, int | float) for v in values):
        datatype = "FP64"
    else:
        datatype, values = "BYTES", [str(v) for v in values]
    return {
        "id": request_id,
        "model_name": config.model.name,
        "model_version": config.model.version,
        "outputs": [{"name": "predict", "shape": [len(values)], "datatype": datatype, "data": values}],
    }

"""The evaluation record: measured metrics and drift baseline of one model version.

`modelops evaluate` writes it to evaluations/<model>/<version>.json, committed like a lock
file; `compile` reads it (no scikit-learn needed) to put measured gate values in the model
card and the drift baseline in the runtime configuration. It sits with the spec because the
catalog loads it as a project input; evaluate only writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from compiler.errors import ModelopsError

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
    """Write the record (atomically) below evaluations/, never through a link: a pull request
    may commit evaluations/<model> or the record itself as a link to anywhere. RecordError
    when it cannot."""
    path = record_path(root, record.model, record.version)
    # exclude_none: a numeric baseline leaves out `categories`, a record without predictions that key
    text = json.dumps(record.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n"
    temporary = f".{path.name}.{os.getpid()}"
    try:
        with _directory(root, (EVALUATIONS_DIR, record.model)) as directory:
            descriptor = os.open(temporary, _NEW_FILE, 0o666, dir_fd=directory)
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    file.write(text)
                os.rename(temporary, path.name, src_dir_fd=directory, dst_dir_fd=directory)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=directory)
                raise
    except OSError as err:
        where = path.relative_to(root).as_posix()
        raise RecordError(
            f"cannot write {where}: {err.strerror or err} (evaluations/ and its directories must be "
            "plain directories, the record a plain file, never a link)"
        ) from None
    return path


class RecordError(ModelopsError):
    """An evaluation record that cannot be written where it belongs."""


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_RECORD = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_RECORD_BYTES = 16 * 1024 * 1024  # a record holds metrics and bins: kilobytes


@contextlib.contextmanager
def _directory(root: Path, names: tuple[str, ...], *, create: bool = True) -> Iterator[int]:
    """The directory root/names..., each made when missing (if `create`) and opened without
    following a link (a link fails with ELOOP or ENOTDIR)."""
    descriptor = os.open(root, _DIRECTORY)
    try:
        for name in names:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=descriptor)
            inner = os.open(name, _DIRECTORY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
        yield descriptor
    finally:
        os.close(descriptor)


def record_files(root: Path) -> list[Path]:
    """The files that may be records: evaluations/<model>/<version>.json, sorted."""
    directory = root / EVALUATIONS_DIR
    return sorted(directory.glob("*/*.json")) if directory.is_dir() else []


def read_record(root: Path, path: Path) -> bytes | None:
    """A record file's bytes; None unless it is a plain file in plain directories below
    evaluations/ (no link anywhere on the way), of at most MAX_RECORD_BYTES: a link to
    /dev/zero or to a file outside the project is never read."""
    relative = path.relative_to(root)
    try:
        with _directory(root, relative.parts[:-1], create=False) as directory:
            descriptor = os.open(relative.name, _RECORD, dir_fd=directory)
            with os.fdopen(descriptor, "rb") as file:
                info = os.fstat(file.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
                    return None
                data = file.read(MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_RECORD_BYTES else None


def load_records(root: Path) -> dict[tuple[str, str], EvaluationRecord]:
    """Every readable record under evaluations/, keyed by (model, version)."""
    records: dict[tuple[str, str], EvaluationRecord] = {}
    for path in record_files(root):
        data = read_record(root, path)
        if data is None:
            continue  # a link, a directory, a FIFO, too large: as good as none
        try:
            record = EvaluationRecord.model_validate_json(data)
        except ValueError:
            continue  # a damaged record is as good as none: evaluate writes it again
        records[(record.model, record.version)] = record
    return records

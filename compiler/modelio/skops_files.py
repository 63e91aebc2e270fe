"""Load and save scikit-learn models as skops files, never unpickling anything.

Loading: a file is refused unless every type it names is on an explicit trusted list, and
pickle or joblib files are refused outright (unpickling runs arbitrary code). A skops file is a
zip: its directory is checked against `compiler.modelio.limits` before a byte is inflated, and
skops only ever reads an uncompressed copy made within those limits (no zip bombs).
Saving: skops names array files after object ids and stamps zip entries with the current
time, so two saves of one model differ; `deterministic_bytes` renumbers and re-stamps them
so the same model gives the same bytes (and the same sha256 pin) every time.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import IO, Any

from compiler.modelio import limits
from compiler.modelio.limits import describe_size

TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.bytes",
    "builtins.dict",
    "builtins.float",
    "builtins.int",
    "builtins.list",
    "builtins.slice",
    "builtins.str",
    "builtins.tuple",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "numpy.random._mt19937.MT19937",
    "numpy.random.mtrand.RandomState",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._gb.GradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
)

ZIP_MAGIC = b"PK\x03\x04"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_DIRECTORY_ENTRY = b"PK\x01\x02"  # zipfile checks that every central directory entry starts so
_READ_CHUNK = 1024**2
_METHODS = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
_NOT_UNPACKED = "refusing to unpack it (a zip bomb, or a model too large to load)"


class ArtifactError(Exception):
    """An artifact that cannot be used; the message says why and what to do."""


class ArtifactLimitError(ArtifactError):
    """An artifact over one of the limits in `compiler.modelio.limits`: a zip bomb, or too large."""


def describe_foreign_format(data: bytes) -> str | None:
    """Why `data` is not a skops file, in words, or None if it may be one."""
    if data.startswith(ZIP_MAGIC):
        return None
    if data[:1] == b"\x80" or data.startswith((b"(dp", b"(lp", b"ccopy_reg")):
        kind = "a pickle file"
    elif data.startswith(
        (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b'\x04"M\x18', b"ZL", b"x\x9c", b"x\x01", b"x\xda")
    ):
        kind = "a compressed (joblib?) file"
    else:
        kind = "not a skops file"
    return (
        f"the artifact is {kind}. modelops never unpickles: pickle and joblib run arbitrary code "
        "when loaded. Save the model with skops.io.dump(model, 'model.skops') instead"
    )


def load_model(data: bytes, trusted: tuple[str, ...] = TRUSTED_TYPES) -> Any:
    """The estimator in a skops file, if every type in it is trusted."""
    problem = describe_foreign_format(data)
    if problem is not None:
        raise ArtifactError(problem)
    data = _bounded_copy(data)
    import skops.io as sio

    try:
        named = types_in(data) | set(sio.get_untrusted_types(data=data))
    except Exception as err:  # a damaged zip or schema: skops raises many kinds
        raise ArtifactError(f"the skops file cannot be read: {_reason(err)}") from err
    untrusted = sorted(named - set(trusted))
    if untrusted:
        raise ArtifactError(
            "the skops file contains types that are not on the trusted list: "
            + ", ".join(untrusted)
            + ". Loading them could run code from the file; use supported scikit-learn estimators"
        )
    try:
        return sio.loads(data, trusted=list(trusted))
    except Exception as err:
        raise ArtifactError(f"the skops file cannot be loaded: {_reason(err)}") from err


def _bounded_copy(data: bytes) -> bytes:
    """The zip in `data` unpacked within the limits and repacked uncompressed, for skops to read.

    The central directory is checked before anything is inflated. Each member is then read in
    chunks, never past the size its header states: zipfile's read() inflates a member's whole
    stream at once and only then cuts it to that size, so a header that understates would not
    bound it. Members are stored uncompressed in the copy, so skops inflates nothing.
    """
    if data.count(_DIRECTORY_ENTRY) > limits.MAX_MEMBERS:
        raise ArtifactLimitError(
            f"the skops file has more than {limits.MAX_MEMBERS} members (the limit): refusing to read it"
        )
    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except Exception as err:  # a damaged directory: zipfile raises many kinds
        raise ArtifactError(f"the skops file cannot be read: {_reason(err)}") from err
    _check_directory(source.infolist(), len(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_TIME)
            entry.file_size = info.file_size
            with target.open(entry, "w") as sink:
                _copy_member(source, info, sink)
    return out.getvalue()


def _check_directory(members: list[zipfile.ZipInfo], file_size: int) -> None:
    """Refuse, from the sizes the directory states, what would take too much memory to unpack."""
    names: set[str] = set()
    total = 0
    for info in members:
        name = info.filename
        what = f"the skops file member {name}"
        if name in names:
            raise ArtifactError(f"the skops file has two members named {name}: refusing an ambiguous file")
        names.add(name)
        if info.flag_bits & 0x1:
            raise ArtifactError(f"{what} is encrypted: save the model with skops.io.dump(model, path)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            method = _METHODS.get(info.compress_type, f"method {info.compress_type}")
            raise ArtifactError(
                f"{what} is compressed with {method}; modelops reads stored or deflated members only: "
                "save with skops.io.dump(model, path), or with compression=zipfile.ZIP_DEFLATED"
            )
        if info.compress_size > file_size:
            raise ArtifactError(
                f"{what} claims {describe_size(info.compress_size)} of compressed data, more than "
                f"the whole file ({describe_size(file_size)}): the file is damaged"
            )
        limit, per = (
            (limits.MAX_SCHEMA_BYTES, "for schema.json")
            if name == "schema.json"
            else (limits.MAX_MEMBER_BYTES, "per member")
        )
        if info.file_size > limit:
            raise ArtifactLimitError(
                f"{what} inflates to {describe_size(info.file_size)}, over the limit of "
                f"{describe_size(limit)} {per}: {_NOT_UNPACKED}"
            )
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > limits.RATIO_FLOOR_BYTES and ratio > limits.MAX_COMPRESSION_RATIO:
            raise ArtifactLimitError(
                f"{what} inflates {ratio}-fold ({describe_size(info.compress_size)} to "
                f"{describe_size(info.file_size)}), over the limit of {limits.MAX_COMPRESSION_RATIO}-fold: "
                + _NOT_UNPACKED
            )
        total += info.file_size
    if total > limits.MAX_INFLATED_BYTES:
        raise ArtifactLimitError(
            f"the skops file inflates to {describe_size(total)} in all, over the limit of "
            f"{describe_size(limits.MAX_INFLATED_BYTES)}: {_NOT_UNPACKED}"
        )


def _copy_member(source: zipfile.ZipFile, info: zipfile.ZipInfo, sink: IO[bytes]) -> None:
    """Inflate one member into `sink` a chunk at a time; zipfile stops at its stated size, checks its CRC."""
    copied = 0
    try:
        with source.open(info) as member:
            while chunk := member.read(_READ_CHUNK):
                copied += len(chunk)
                sink.write(chunk)
    except Exception as err:  # a bad CRC, a truncated or invalid stream: zipfile and zlib raise many kinds
        raise ArtifactError(f"the skops file member {info.filename} is damaged: {_reason(err)}") from err
    if copied != info.file_size:
        raise ArtifactError(
            f"the skops file member {info.filename} is damaged: it holds {copied} bytes, its header says "
            f"{info.file_size}"
        )


def _reason(err: Exception) -> str:
    """An exception's message, or its type when the message is empty (a MemoryError has none)."""
    return str(err) or type(err).__name__


def types_in(data: bytes) -> set[str]:
    """Every type a skops file names: our list decides, not skops's broader default trust."""
    schema = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__class__"), str) and isinstance(node.get("__module__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def deterministic_bytes(model: Any) -> bytes:
    """skops bytes for `model` that are the same on every save (ids renumbered, fixed times)."""
    import skops.io as sio

    original = zipfile.ZipFile(io.BytesIO(sio.dumps(model)))
    schema = original.read("schema.json").decode()
    numbers: dict[str, str] = {}
    for match in re.finditer(r'"__id__": (\d+)|"file": "(\d+)\.npy"', schema):
        number = match.group(1) or match.group(2)
        numbers.setdefault(number, str(len(numbers) + 1))

    def renumber(match: re.Match[str]) -> str:
        if match.group(1):
            return f'"__id__": {numbers[match.group(1)]}'
        return f'"file": "{numbers[match.group(2)]}.npy"'

    schema = re.sub(r'"__id__": (\d+)|"file": "(\d+)\.npy"', renumber, schema)
    json.loads(schema)  # still valid
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        names = sorted(original.namelist())
        for name in names:
            content = schema.encode() if name == "schema.json" else original.read(name)
            stem = name.removesuffix(".npy")
            new_name = f"{numbers[stem]}.npy" if name.endswith(".npy") and stem in numbers else name
            info = zipfile.ZipInfo(new_name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, content)
    # Entry order must not depend on the original ids either.
    return _sorted_zip(out.getvalue())


def _sorted_zip(data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in sorted(source.infolist(), key=lambda i: i.filename):
            target.writestr(info, source.read(info.filename))
    return out.getvalue()

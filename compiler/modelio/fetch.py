"""Fetch an artifact named by a URI and verify its sha256 pin before anything reads it.

Repo-relative paths and https:// are built in; s3:// and gs:// need the optional extras
(`pip install modelops[s3]` / `modelops[gcs]`); pvc:// is a path mounted into the pod.
Nothing larger than `limits.MAX_ARTIFACT_BYTES` is read: a size known up front is refused before
any byte is, and every read stops one byte past the limit.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import stat
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler.modelio.limits import MAX_ARTIFACT_BYTES, describe_size
from compiler.modelio.skops_files import ArtifactError, ArtifactLimitError

PVC_MOUNT_ROOT = Path("/mnt/pvc")


def fetch(uri: str, base: Path, *, timeout: float = 60.0) -> bytes:
    """The bytes at `uri`; relative paths resolve against `base`."""
    if uri.startswith("https://"):
        return _https(uri, timeout)
    if uri.startswith("s3://"):
        return _from_bucket(uri, "boto3", "s3", _read_s3)
    if uri.startswith("gs://"):
        return _from_bucket(uri, "google.cloud.storage", "gcs", _read_gcs)
    path = PVC_MOUNT_ROOT / uri.removeprefix("pvc://") if uri.startswith("pvc://") else base / uri
    try:
        with path.open("rb") as file:
            status = os.fstat(file.fileno())
            if stat.S_ISREG(status.st_mode) and status.st_size > MAX_ARTIFACT_BYTES:
                raise _too_large(uri, status.st_size)
            return _within_limit(uri, file.read(MAX_ARTIFACT_BYTES + 1))  # a pipe tells no size
    except FileNotFoundError:
        where = (
            "the PVC must be mounted at /mnt/pvc/<claim>" if uri.startswith("pvc://") else f"looked in {base}"
        )
        raise ArtifactError(f"artifact {uri} not found ({where})") from None
    except OSError as err:
        raise ArtifactError(f"artifact {uri} cannot be read: {err.strerror or err}") from err


def verify(data: bytes, pin: str | None, uri: str, pinned_by: str = "spec.model.sha256") -> str:
    """The sha256 of `data`; raises when it does not match the pin (the spec field `pinned_by`)."""
    digest = hashlib.sha256(data).hexdigest()
    if pin is not None and digest != pin:
        raise ArtifactError(
            f"artifact {uri} has sha256 {digest}, but the spec pins {pin}: the file changed or "
            f"was tampered with. Refusing to load it; if the change is intended, update {pinned_by}"
        )
    return digest


def _too_large(uri: str, size: int | None) -> ArtifactLimitError:
    """The error for an artifact over the limit; `size` if known (else only the first bytes were read)."""
    stated = f"{size} bytes, over" if size is not None else "over"
    return ArtifactLimitError(f"artifact {uri} is {stated} the limit of {describe_size(MAX_ARTIFACT_BYTES)}")


def _within_limit(uri: str, data: bytes) -> bytes:
    """`data`, read with a bound of one byte past the limit; raises if that byte came."""
    if len(data) > MAX_ARTIFACT_BYTES:
        raise _too_large(uri, None)
    return data


def _refuse_stated(uri: str, size: int | None) -> None:
    """Refuse, before reading a byte, an artifact whose stated size is over the limit."""
    if size is not None and size > MAX_ARTIFACT_BYTES:
        raise _too_large(uri, size)


def _https(uri: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(uri, timeout=timeout) as response:
            _refuse_stated(uri, response.length)
            data: bytes = response.read(MAX_ARTIFACT_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise ArtifactError(f"cannot download {uri}: {err}") from err
    return _within_limit(uri, data)


def _from_bucket(uri: str, module: str, extra: str, read: Callable[[Any, str, str, str], bytes]) -> bytes:
    """`read(client module, uri, bucket, key)` from an object store whose client is an optional extra;
    whatever the client raises names the URI."""
    try:
        client = importlib.import_module(module)
    except ImportError:
        scheme = uri.partition("://")[0]
        raise ArtifactError(
            f"{uri}: reading {scheme}:// artifacts needs the optional extra: pip install 'modelops[{extra}]'"
        ) from None
    bucket, _, key = uri.partition("://")[2].partition("/")
    try:
        data = read(client, uri, bucket, key)
    except ArtifactError:
        raise
    except Exception as err:  # the cloud clients raise many kinds
        raise ArtifactError(f"cannot download {uri}: {err}") from err
    return _within_limit(uri, data)


def _read_s3(boto3: Any, uri: str, bucket: str, key: str) -> bytes:
    response = boto3.client("s3").get_object(Bucket=bucket, Key=key)
    _refuse_stated(uri, response["ContentLength"])
    data: bytes = response["Body"].read(MAX_ARTIFACT_BYTES + 1)
    return data


def _read_gcs(storage: Any, uri: str, bucket: str, key: str) -> bytes:
    blob = storage.Client().bucket(bucket).get_blob(key)
    if blob is None:
        raise ArtifactError(f"artifact {uri} not found")
    _refuse_stated(uri, blob.size)
    # the generation read is the one whose size was checked
    data: bytes = blob.download_as_bytes(if_generation_match=blob.generation)
    return data

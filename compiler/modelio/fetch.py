"""Fetch an artifact named by a URI and verify its sha256 pin before anything reads it.

Repo-relative paths and https:// are built in; s3:// and gs:// need the optional extras
(`pip install modelops[s3]` / `modelops[gcs]`); pvc:// is a path mounted into the pod.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from compiler.modelio.skops_files import ArtifactError

MAX_ARTIFACT_BYTES = 2 * 1024**3
PVC_MOUNT_ROOT = Path("/mnt/pvc")


def fetch(uri: str, base: Path, *, timeout: float = 60.0) -> bytes:
    """The bytes at `uri`; relative paths resolve against `base`."""
    if uri.startswith("https://"):
        return _https(uri, timeout)
    if uri.startswith("s3://"):
        return _s3(uri)
    if uri.startswith("gs://"):
        return _gcs(uri)
    path = PVC_MOUNT_ROOT / uri.removeprefix("pvc://") if uri.startswith("pvc://") else base / uri
    try:
        return path.read_bytes()
    except FileNotFoundError:
        where = (
            "the PVC must be mounted at /mnt/pvc/<claim>" if uri.startswith("pvc://") else f"looked in {base}"
        )
        raise ArtifactError(f"artifact {uri} not found ({where})") from None
    except OSError as err:
        raise ArtifactError(f"artifact {uri} cannot be read: {err.strerror or err}") from err


def verify(data: bytes, pin: str | None, uri: str) -> str:
    """The sha256 of `data`; raises when it does not match the pin."""
    digest = hashlib.sha256(data).hexdigest()
    if pin is not None and digest != pin:
        raise ArtifactError(
            f"artifact {uri} has sha256 {digest}, but the spec pins {pin}: the file changed or "
            "was tampered with. Refusing to load it; if the change is intended, update spec.model.sha256"
        )
    return digest


def _https(uri: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(uri, timeout=timeout) as response:
            data: bytes = response.read(MAX_ARTIFACT_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise ArtifactError(f"cannot download {uri}: {err}") from err
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"artifact {uri} is larger than {MAX_ARTIFACT_BYTES} bytes")
    return data


def _s3(uri: str) -> bytes:
    try:
        import boto3
    except ImportError:
        raise ArtifactError(
            f"{uri}: reading s3:// artifacts needs the optional extra: pip install 'modelops[s3]'"
        ) from None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read()
    except Exception as err:  # botocore raises many kinds
        raise ArtifactError(f"cannot download {uri}: {err}") from err
    return data


def _gcs(uri: str) -> bytes:
    try:
        from google.cloud import storage
    except ImportError:
        raise ArtifactError(
            f"{uri}: reading gs:// artifacts needs the optional extra: pip install 'modelops[gcs]'"
        ) from None
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    try:
        data: bytes = storage.Client().bucket(bucket).blob(key).download_as_bytes()
    except Exception as err:
        raise ArtifactError(f"cannot download {uri}: {err}") from err
    return data

"""Read a file a spec names by a repo-relative path, without ever leaving the project.

`validate` already refuses absolute paths and `..`; what it cannot see is the tree on disk:
a committed symbolic link can point anywhere (`/proc/self/environ`, a CI secret), and a FIFO
blocks a reader forever. So the path is resolved here, after links, and must land on a
regular file inside the project before a byte is read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from compiler.modelio.skops_files import ArtifactError


def read_inside(root: Path, relative: str, what: str, limit: int) -> bytes:
    """The bytes of `root/relative`, at most `limit` of them; ArtifactError says why not.
    Messages name the path as the spec wrote it, never the link's target or the content."""
    root = root.resolve()
    try:
        resolved = Path(os.path.realpath(root / relative, strict=True))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ArtifactError(f"{what} {relative}: symbolic link loop") from None
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            raise ArtifactError(f"{what} {relative} not found (looked in {root})") from None
        raise ArtifactError(f"{what} {relative} cannot be read: {err.strerror or err}") from None
    if not resolved.is_relative_to(root):
        raise ArtifactError(
            f"{what} {relative} is a symbolic link that leads outside the project ({root}); "
            "modelops reads only files inside the project: commit the file itself"
        )
    try:
        descriptor = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ArtifactError(
                    f"{what} {relative} is not a regular file (a directory, FIFO, socket or device)"
                )
            if info.st_size > limit:
                raise ArtifactError(f"{what} {relative} is {info.st_size} bytes, over the limit of {limit}")
            data = handle.read(limit + 1)
    except OSError as err:
        raise ArtifactError(f"{what} {relative} cannot be read: {err.strerror or err}") from None
    if len(data) > limit:  # it grew while being read
        raise ArtifactError(f"{what} {relative} is over the limit of {limit} bytes")
    return data

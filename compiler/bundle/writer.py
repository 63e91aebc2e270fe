"""Write the bundle to disk atomically, or compare it with what is there (--check).

The new tree is written beside the old one and swapped in with one rename: an interrupted
compile (Ctrl-C, kill -9, a full disk) leaves the previous tree whole. Only a directory that
modelops wrote (it carries our manifest) is ever replaced, so a wrong --out cannot wipe
someone else's files.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compiler.bundle.layout import MANIFEST
from compiler.errors import UsageError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass
class TreeChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file below root, by relative POSIX path."""
    files: dict[str, bytes] = {}
    if not root.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def compare(files: dict[str, bytes], existing: dict[str, bytes]) -> TreeChanges:
    changes = TreeChanges()
    for path in sorted(files.keys() | existing.keys()):
        if path not in existing:
            changes.added.append(path)
        elif path not in files:
            changes.removed.append(path)
        elif files[path] != existing[path]:
            changes.changed.append(path)
    return changes


def _ensure_ours(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UsageError(
            f"refusing to replace {out}: it is not empty and was not written by modelops "
            f"(no {MANIFEST}); choose another --out or empty it first"
        )


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One compile at a time per output directory (a lock on the parent, so no lock file litters)."""
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another modelops compile is writing {out}; try again when it ends") from None
        yield
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where the system cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a))


def _link(source: Path, target: Path) -> bool:
    try:
        os.link(source, target)
    except OSError:
        return False
    return True


def _old_tree(out: Path) -> Path:
    return out.with_name(f".{out.name}.old")


def _remove_leftovers(out: Path) -> None:
    """Clean up after a compile that was killed before it could: restore, then delete."""
    old = _old_tree(out)
    if old.is_dir() and not out.exists():
        old.rename(out)  # killed between the two renames of the fallback swap
    shutil.rmtree(old, ignore_errors=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_tree(files: dict[str, bytes], out: Path) -> TreeChanges:
    """Replace `out` with exactly `files`; return what changed against the old tree."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        _remove_leftovers(out)
        _ensure_ours(out)
        existing = read_tree(out)
        changes = compare(files, existing)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            made: set[Path] = set()
            for relative, content in sorted(files.items()):
                target = staging / relative
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                if existing.get(relative) == content and _link(out / relative, target):
                    continue  # unchanged: share the old file's inode instead of writing it again
                target.write_bytes(content)
            staging.chmod(0o755)
            if not out.exists():
                staging.rename(out)
            elif _exchange(staging, out):
                shutil.rmtree(staging)  # staging now holds the old tree
            else:
                old = _old_tree(out)
                out.rename(old)
                staging.rename(out)
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return changes

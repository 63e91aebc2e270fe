"""Write the compiled tree to disk as one transaction, or compare it with what is there.

Only files whose bytes change are touched, so recompiling one model among thousands writes a
handful of files rather than re-linking the whole tree. The update is a redo log: new files
are first written beside the tree (in .<out>.txn/), then a journal naming every write and
removal is committed with one rename, and only then are files renamed into place. A compile
that fails before the commit (bad input, a full disk, Ctrl-C) leaves the tree as it was; one
killed after it leaves the journal, which the next compile replays before it reads anything,
so the tree ends wholly new. Only a directory that modelops wrote (it carries our manifest)
is ever changed, so a wrong --out cannot wipe someone else's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compiler.bundle.layout import MANIFEST
from compiler.errors import UsageError

JOURNAL = "journal.json"


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


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def compare_listings(wanted: Mapping[str, str], existing: Mapping[str, str]) -> TreeChanges:
    """What turns `existing` into `wanted`; both map relative paths to sha256 digests."""
    return TreeChanges(
        added=sorted(wanted.keys() - existing.keys()),
        changed=sorted(p for p, sha in wanted.items() if p in existing and existing[p] != sha),
        removed=sorted(existing.keys() - wanted.keys()),
    )


def _transaction_dir(out: Path) -> Path:
    return out.with_name(f".{out.name}.txn")


def interrupted(out: Path) -> bool:
    """Whether a compile committed an update of `out` and was stopped before finishing it."""
    return (_transaction_dir(out.absolute()) / JOURNAL).is_file()


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """One compile at a time per output directory; a journal left by a killed one is replayed
    first. (The lock is on the parent directory, so no lock file litters.)"""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another modelops compile is writing {out}; try again when it ends") from None
        replay_pending(out)
        yield
    finally:
        os.close(fd)


def ensure_ours(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UsageError(
            f"refusing to replace {out}: it is not empty and was not written by modelops "
            f"(no {MANIFEST}); choose another --out or empty it first"
        )


def _inside(out: Path, relative: str) -> Path:
    parts = relative.split("/")
    if not relative or relative.startswith("/") or ".." in parts or "" in parts:
        raise UsageError(f"refusing a journal entry outside {out}: {relative!r}")
    return out.joinpath(*parts)


def stage(out: Path, writes: Mapping[str, bytes], removes: list[str]) -> Path:
    """Write the new files beside the tree and commit the journal; the tree is not touched yet."""
    txn = _transaction_dir(out)
    shutil.rmtree(txn, ignore_errors=True)
    staged = txn / "files"
    try:
        staged.mkdir(parents=True)
        entries = []
        for number, (relative, content) in enumerate(sorted(writes.items(), key=_manifest_last)):
            _inside(out, relative)
            (staged / str(number)).write_bytes(content)
            entries.append([relative, str(number)])
        for relative in removes:
            _inside(out, relative)
        pending = txn / (JOURNAL + ".tmp")
        pending.write_bytes(json.dumps({"writes": entries, "removes": sorted(removes)}).encode())
        pending.rename(txn / JOURNAL)  # the commit point
    except BaseException:
        shutil.rmtree(txn, ignore_errors=True)
        raise
    return txn


def _manifest_last(item: tuple[str, bytes]) -> tuple[bool, str]:
    return (item[0] == MANIFEST, item[0])


def replay_pending(out: Path) -> bool:
    """Finish a committed transaction (idempotent); discard one that never committed."""
    txn = _transaction_dir(out)
    if not txn.is_dir():
        return False
    journal_path = txn / JOURNAL
    if not journal_path.is_file():
        shutil.rmtree(txn)  # staging was interrupted: the tree was never touched
        return False
    try:
        journal = json.loads(journal_path.read_bytes())
        writes = [(str(relative), str(number)) for relative, number in journal["writes"]]
        removes = [str(relative) for relative in journal["removes"]]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(
            f"the journal of an interrupted compile, {journal_path}, is damaged ({err}); remove "
            f"{txn} and run `modelops compile --full`"
        ) from err
    for relative, number in writes:
        source = txn / "files" / number
        target = _inside(out, relative)
        if not source.exists():
            continue  # renamed into place before the interruption
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
    for relative in removes:
        target = _inside(out, relative)
        target.unlink(missing_ok=True)
        _remove_empty_parents(out, target.parent)
    journal_path.unlink()
    shutil.rmtree(txn)
    return True


def _remove_empty_parents(out: Path, directory: Path) -> None:
    while directory != out and out in directory.parents:
        try:
            directory.rmdir()
        except OSError:  # not empty (or already gone): stop climbing
            return
        directory = directory.parent


def apply_changes(out: Path, writes: Mapping[str, bytes], removes: list[str]) -> None:
    """Make the tree hold `writes` and lose `removes`, all or (after a crash, on replay) all."""
    if not writes and not removes:
        return
    txn = stage(out, writes, removes)
    try:
        replay_pending(out)
    except OSError as err:
        raise UsageError(
            f"updating {out} stopped half-way ({err.strerror or err}); the rest is recorded in {txn}: "
            "fix the cause and run modelops compile again to finish it"
        ) from err


def update_tree(
    out: Path, files: Mapping[str, bytes], kept: Mapping[str, str], existing: Mapping[str, str]
) -> TreeChanges:
    """Turn the tree described by `existing` into `files` plus the `kept` files (both listings
    map paths to sha256; kept files are in `existing` as they are). The caller holds the lock
    and vouches for `existing`. Work is in proportion to `files`, not to the tree."""
    hashes = {path: digest(content) for path, content in files.items()}
    changes = TreeChanges(
        added=sorted(p for p in hashes if p not in existing),
        changed=sorted(p for p, sha in hashes.items() if p in existing and existing[p] != sha),
        removed=sorted(existing.keys() - kept.keys() - hashes.keys()),
    )
    writes = {p: files[p] for p in changes.added + changes.changed}
    apply_changes(out, writes, changes.removed)
    return changes


def write_tree(files: dict[str, bytes], out: Path) -> TreeChanges:
    """Make `out` hold exactly `files`, reading the tree to find what differs."""
    out = out.absolute()
    with locked(out):
        ensure_ours(out)
        existing = {p: digest(c) for p, c in read_tree(out).items()}
        return update_tree(out, files, {}, existing)

"""Write the compiled tree to disk as one transaction, or compare it with what is there.

Only files whose bytes change are touched, so recompiling one model among thousands writes a
handful of files rather than re-linking the whole tree. The update is a redo log: new files
are first written into a staging area inside the tree (.modelops-txn/, never listed), then a
journal naming every write and removal is committed with one rename, and only then are files
renamed into place. A compile that fails before the commit (bad input, a full disk, Ctrl-C)
leaves the tree as it was; one killed after it leaves the journal, which the next compile
replays before it reads anything, so the tree ends wholly new.

What modelops may touch, and how:
- `out` itself may be a symbolic link (to another filesystem, say): it is resolved once. The
  staging area is inside the resolved directory, so renames never cross filesystems.
- Nothing inside `out` is ever followed: every directory is opened relative to its parent with
  O_NOFOLLOW, so a link, a FIFO or a device met on the way stops the compile with an error
  naming it instead of sending a write (or a read) somewhere else.
- Only a directory that modelops wrote (it carries our manifest) is changed, and in it only the
  files the manifest lists: a file modelops did not write is never removed or overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bundle.bundle import Placed
from compiler.bundle.layout import MANIFEST
from compiler.errors import OutputError

TXN = ".modelops-txn"  # the staging area, inside the output directory
JOURNAL = "journal.json"
STAGED = "files"
MAX_DEPTH = 16  # modelops writes 4 levels (env/namespace/model/file); deeper is not its tree

# A committed transaction: (path, staged name) of each file to place, the manifest last; the
# paths to remove.
Journal = tuple[list[tuple[str, str]], list[str]]
_STAGED_NAME = re.compile(r"[0-9a-f]{1,64}")  # a staged file: the digest of its path (a number, before)

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class TreeChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class Output:
    """An output directory, open and locked: `path` as the user named it (for messages) and
    `fd` the directory it resolved to, which every write is relative to."""

    path: Path
    fd: int


def resolved(out: Path) -> Path:
    """The directory `out` names, its own link (if it is one) followed once."""
    return Path(os.path.realpath(out))


# --- refusals ------------------------------------------------------------------------------


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def _refusal(out: Path, relative: str, mode: int) -> OutputError:
    """Why modelops will not use `relative`: a link or special file, or something in the way."""
    where = out / relative
    if stat.S_ISLNK(mode):
        return OutputError(
            f"{where} is a symbolic link: modelops never follows a link inside its output "
            "(only --out itself may be one); replace it with a real directory or file, or remove it"
        )
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        return OutputError(
            f"{where} is {_kind(mode)}: an output directory holds only directories and regular "
            "files; remove it"
        )
    return in_the_way(out, relative, _kind(mode))


def in_the_way(out: Path, relative: str, kind: str = "a file") -> OutputError:
    return OutputError(
        f"{out / relative} is in the way: modelops needs that path, and {kind} that modelops did "
        f"not write (it is not in {MANIFEST}) is there; move it away and compile again"
    )


def refuse_in_the_way(out: Path, wanted: Mapping[str, str], foreign: Mapping[str, str]) -> None:
    """What a compile would refuse, found from listings (path -> sha256): a foreign file with
    other bytes where a wanted file goes, or where a wanted file needs a directory (or the
    reverse). A foreign file with the wanted bytes is simply adopted."""
    if not foreign:
        return
    foreign_dirs = {path.rsplit("/", i)[0] for path in foreign for i in range(1, path.count("/") + 1)}
    for path, sha in sorted(wanted.items()):
        if path in foreign_dirs:
            raise in_the_way(out, path, "a directory")
        if foreign.get(path, sha) != sha:
            raise in_the_way(out, path)
        parents = (path.rsplit("/", i)[0] for i in range(1, path.count("/") + 1))
        for parent in parents:
            if parent in foreign:
                raise in_the_way(out, parent)


def check_target(out: Path, project: Path, spec_dirs: Iterable[Path]) -> None:
    """Refuse, before anything is read or written, an --out that cannot be a tree of its own:
    the filesystem root, a file, a path whose parent is missing, a directory that holds the
    project, its specs or the home directory, or one inside the specs."""
    target = resolved(out)
    if target == Path(target.anchor):
        raise OutputError(f"--out {out} is the filesystem root; give modelops a directory of its own")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    if not target.parent.is_dir():
        raise OutputError(
            f"--out {out}: its parent directory {target.parent} does not exist; create it first"
        )
    protected = [("the project", project)]
    protected += [("the specs directory", directory) for directory in spec_dirs]
    with contextlib.suppress(RuntimeError):  # no home directory to protect
        protected.append(("your home directory", Path("~").expanduser()))
    for name, directory in protected:
        held = resolved(directory)
        if target == held or target in held.parents:
            where = "is" if target == held else "holds"
            raise OutputError(
                f"--out {out} {where} {name} ({held}); give modelops a directory of its own, "
                f"such as {resolved(project) / 'generated'}"
            )
        if name == "the specs directory" and held in target.parents:
            raise OutputError(
                f"--out {out} is inside the specs directory {held}, where what compile writes "
                "would be read as specs; choose a directory outside it"
            )


# --- opening and reading without following links --------------------------------------------


def _lstat(dir_fd: int, name: str) -> int | None:
    try:
        return os.lstat(name, dir_fd=dir_fd).st_mode
    except FileNotFoundError:
        return None


def _open_dir(parent: int, name: str, out: Path, relative: str, *, create: bool = False) -> int | None:
    """The directory `name` below `parent`, never through a link; None when it is missing
    (unless `create`)."""
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            return None
        with contextlib.suppress(FileExistsError):  # raced: the open below says what is there
            os.mkdir(name, dir_fd=parent)
        return _open_dir(parent, name, out, relative)
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        mode = _lstat(parent, name)
        raise _refusal(out, relative, mode if mode is not None else stat.S_IFREG) from None


@contextlib.contextmanager
def _directories(root: int, out: Path, directory: str, *, create: bool) -> Iterator[list[int] | None]:
    """Open every directory of the relative path `directory` in turn (root first, then each
    level), never following a link; None when one is missing and not created."""
    with contextlib.ExitStack() as stack:
        fds = [root]
        relative = ""
        for part in directory.split("/") if directory else []:
            relative = f"{relative}/{part}" if relative else part
            fd = _open_dir(fds[-1], part, out, relative, create=create)
            if fd is None:
                yield None
                return
            stack.callback(os.close, fd)
            fds.append(fd)
        yield fds


def _read_file(dir_fd: int, name: str, out: Path, relative: str) -> bytes:
    """A regular file's bytes; a link, FIFO or device is refused, never opened or followed."""
    mode = _lstat(dir_fd, name)
    if mode is None:
        raise FileNotFoundError(errno.ENOENT, "No such file", str(out / relative))
    if not stat.S_ISREG(mode):
        raise _refusal(out, relative, mode)
    with os.fdopen(os.open(name, _READ, dir_fd=dir_fd), "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # swapped since the lstat
            raise _refusal(out, relative, os.fstat(file.fileno()).st_mode)
        return file.read()


def _names(dir_fd: int) -> set[str]:
    with os.scandir(dir_fd) as entries:
        return {entry.name for entry in entries}


def _create(dir_fd: int, name: str, content: bytes) -> None:
    """A new file (never an existing one, never through a link). Written through the
    descriptor: a buffered file object around it cost a sixth of a compile's file writing."""
    fd = os.open(name, _CREATE, 0o666, dir_fd=dir_fd)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _open_root(out: Path) -> int | None:
    """The output directory, its own link followed once; None when it does not exist."""
    try:
        return os.open(resolved(out), _DIR)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputError(f"{out} exists and is not a directory") from None


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file below root, by relative POSIX path (the staging area excepted).
    A link, FIFO, socket or device anywhere below root is refused, not followed."""
    files: dict[str, bytes] = {}
    _walk(root, files, lambda content: content)
    return files


def hash_tree(root: Path) -> dict[str, str]:
    """What read_tree reads, as sha256 digests: each file is read once and let go, so a tree
    of any size is compared in little memory."""
    hashes: dict[str, str] = {}
    _walk(root, hashes, digest)
    return hashes


def _walk(root: Path, files: dict[str, Any], take: Callable[[bytes], Any]) -> None:
    fd = _open_root(root)
    if fd is not None:
        try:
            _read_directory(fd, "", root, files, take)
        finally:
            os.close(fd)


def _read_directory(
    fd: int, prefix: str, root: Path, files: dict[str, Any], take: Callable[[bytes], Any]
) -> None:
    if prefix.count("/") > MAX_DEPTH:
        raise OutputError(f"{root / prefix} is nested too deep for an output of modelops")
    with os.scandir(fd) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        relative = prefix + entry.name
        if relative == TXN:
            continue
        if entry.is_dir(follow_symlinks=False):
            sub = _open_dir(fd, entry.name, root, relative)
            if sub is not None:
                try:
                    _read_directory(sub, relative + "/", root, files, take)
                finally:
                    os.close(sub)
        elif entry.is_file(follow_symlinks=False):
            files[relative] = take(_read_file(fd, entry.name, root, relative))
        else:
            raise _refusal(root, relative, entry.stat(follow_symlinks=False).st_mode)


def read_manifest(out: Path) -> bytes | None:
    """The manifest's bytes, None when there is none (a link or FIFO in its place is refused)."""
    fd = _open_root(out)
    if fd is None:
        return None
    try:
        return _read_file(fd, MANIFEST, out, MANIFEST)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def split_owned(files: Mapping[str, bytes]) -> tuple[dict[str, str], dict[str, str], bool]:
    """A tree read from disk as (files modelops wrote, foreign files), both path -> sha256 with
    the manifest left out, and whether the manifest is damaged. Ownership is the manifest's
    list; when there is none to read (a merge conflict) every file counts as modelops'."""
    hashes = {path: digest(content) for path, content in files.items()}
    return split_owned_hashes(hashes, files.get(MANIFEST))


def split_owned_hashes(
    hashes: Mapping[str, str], manifest: bytes | None
) -> tuple[dict[str, str], dict[str, str], bool]:
    """split_owned for a tree already hashed (path -> sha256), given the manifest's bytes."""
    listed: object = None
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        listed = json.loads(manifest).get("files")  # type: ignore[arg-type]
    ours = listed if isinstance(listed, dict) else None
    owned: dict[str, str] = {}
    foreign: dict[str, str] = {}
    for path, sha in hashes.items():
        if path != MANIFEST:
            (owned if ours is None or path in ours else foreign)[path] = sha
    return owned, foreign, ours is None and MANIFEST in hashes


def compare_listings(wanted: Mapping[str, str], existing: Mapping[str, str]) -> TreeChanges:
    """What turns `existing` into `wanted`; both map relative paths to sha256 digests."""
    return TreeChanges(
        added=sorted(wanted.keys() - existing.keys()),
        changed=sorted(p for p, sha in wanted.items() if p in existing and existing[p] != sha),
        removed=sorted(existing.keys() - wanted.keys()),
    )


# --- the transaction ---------------------------------------------------------------------


def _legacy_transaction(out: Path) -> Path | None:
    """Where earlier versions staged: beside the tree, so on another device when --out is a
    link to one (the rename then failed, and every later compile with it)."""
    out = out.absolute()
    return out.with_name(f".{out.name}.txn") if out.name else None


def interrupted(out: Path) -> bool:
    """Whether a compile committed an update of `out` and was stopped before finishing it."""
    legacy = _legacy_transaction(out)
    journals = [resolved(out) / TXN / JOURNAL, *([legacy / JOURNAL] if legacy else [])]
    return any(os.path.lexists(path) for path in journals)


@contextlib.contextmanager
def locked(out: Path) -> Iterator[Output]:
    """Open (creating it if need be) and lock the output directory: one compile at a time per
    directory, and a journal left by a killed one is replayed first."""
    target = resolved(out)
    try:
        target.mkdir(exist_ok=True)
    except FileNotFoundError:
        raise OutputError(f"cannot create {out}: its parent directory does not exist") from None
    except FileExistsError:
        raise OutputError(f"{out} exists and is not a directory") from None
    fd = _open_root(out)
    if fd is None:
        raise OutputError(f"{out} was removed while modelops was opening it")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another modelops compile is writing {out}; try again when it ends") from None
        output = Output(out, fd)
        try:
            _finish_legacy(output)
            _finish(output, fd, out / TXN, TXN)
        except OSError as err:
            raise OutputError(
                f"cannot finish the interrupted update of {out} ({err.strerror or err}); fix the "
                "cause and run modelops compile again"
            ) from err
        yield output
    finally:
        os.close(fd)


def ensure_ours(out: Output) -> None:
    names = _names(out.fd)
    if names - {TXN} and MANIFEST not in names:
        raise OutputError(
            f"refusing to replace {out.path}: it is not empty and was not written by modelops "
            f"(no {MANIFEST}); choose another --out or empty it first"
        )


def _inside(out: Path, relative: object) -> str:
    parts = relative.split("/") if isinstance(relative, str) else []
    if not parts or len(parts) > MAX_DEPTH or parts[0] == TXN or {"", ".", ".."} & set(parts):
        raise OutputError(f"refusing a journal entry outside {out}: {relative!r}")
    return "/".join(parts)


def _by_directory(paths: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """Paths grouped by their directory, so each directory is opened once (in the order the
    directories first come)."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        directory, _, name = path.rpartition("/")
        groups.setdefault(directory, []).append(name)
    yield from groups.items()


def _check_targets(
    out: Output, writes: Mapping[str, str], removes: list[str], existing: Mapping[str, str]
) -> None:
    """Before the commit, refuse a write or removal that would go through a link, over a
    special file, or over a file modelops did not write (unless it has the same bytes)."""
    for directory, names in _by_directory([*writes, *removes]):
        with _directories(out.fd, out.path, directory, create=False) as fds:
            if fds is None:
                continue  # created by the update: nothing in it yet
            for name in names:
                relative = f"{directory}/{name}" if directory else name
                mode = _lstat(fds[-1], name)
                if mode is None:
                    continue
                if not stat.S_ISREG(mode):
                    raise _refusal(out.path, relative, mode)
                if relative in existing or relative == MANIFEST:  # ensure_ours vouched for it
                    continue
                if digest(_read_file(fds[-1], name, out.path, relative)) != writes[relative]:
                    raise in_the_way(out.path, relative)
                # else: a foreign file with the very bytes wanted, adopted


class Staging:
    """The files of one update, written into the staging area as they come (only those whose
    bytes differ from `existing`, the files modelops wrote: path -> sha256) by the process that
    rendered them, a worker (`put`, then `took` here) or this one (`add`), so that memory holds
    one file at a time. `commit` then makes them the tree's, all or nothing; until its
    journal is written the tree is untouched, and leaving the `with` block before that discards
    the stage."""

    def __init__(self, out: Output, existing: Mapping[str, str]) -> None:
        self.out = out
        self.existing = existing
        self.staged: dict[str, str] = {}  # path -> sha256 of the files staged (named _staged_name)
        self._fds: list[int] | None = None  # the output, the staging area, its files
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self._fds is not None:  # opened and never committed
            with contextlib.suppress(OSError):
                shutil.rmtree(TXN, dir_fd=self.out.fd)

    def add(self, path: str, content: bytes) -> None:
        """One file, staged by this process."""
        sha = digest(content)
        self.took(path, sha, self.put(path, content, sha))

    def fds(self) -> list[int]:
        """Open the staging area now, before workers are forked: they stage into it."""
        return [self._open()[2]]

    def put(self, path: str, content: bytes, sha: str) -> Placed:
        """Stage the file unless the tree has these bytes already; its name there, or None. May
        run in a forked worker: it changes nothing but the staging area (names come from the
        path, so processes never pick the same one)."""
        _inside(self.out.path, path)
        if self.existing.get(path) == sha:
            return None
        name = _staged_name(path)
        _create(self._open()[2], name, content)
        return name

    def took(self, path: str, sha: str, placed: Placed) -> None:
        """Record a file that `put` handled, in the compile's process (the caller lists every
        file, and refuses a path given twice)."""
        if placed is not None:
            self.staged[path] = sha

    def _open(self) -> list[int]:
        if self._fds is None:
            _discard(self.out.fd, self.out.path / TXN, TXN)  # left by a compile that never committed
            fds = self._stack.enter_context(
                _directories(self.out.fd, self.out.path, f"{TXN}/{STAGED}", create=True)
            )
            assert fds is not None
            self._fds = fds
        return self._fds

    def journal(self, removes: list[str]) -> Journal | None:
        """Commit: write the journal naming every staged file and every removal (the tree is not
        touched yet), and return it. None when there is nothing to do."""
        for relative in removes:
            _inside(self.out.path, relative)
        if not self.staged and not removes:
            return None
        _check_targets(self.out, self.staged, removes, self.existing)
        txn = self._open()[1]
        writes = [(path, _staged_name(path)) for path in sorted(self.staged, key=_manifest_last)]
        pending = JOURNAL + ".tmp"
        _create(txn, pending, json.dumps({"writes": writes, "removes": sorted(removes)}).encode())
        os.rename(pending, JOURNAL, src_dir_fd=txn, dst_dir_fd=txn)  # the commit point
        self._fds = None
        self._stack.close()
        return writes, sorted(removes)

    def commit(self, removes: list[str]) -> None:
        """Make the tree hold every added file and lose `removes`, all or (after a crash, on
        replay) all."""
        journal = self.journal(removes)
        if journal is None:
            return
        try:
            _finish(self.out, self.out.fd, self.out.path / TXN, TXN, journal)
        except OSError as err:
            raise OutputError(
                f"updating {self.out.path} stopped half-way ({err.strerror or err}); the rest is "
                f"recorded in {self.out.path / TXN}: fix the cause and run modelops compile again "
                "to finish it"
            ) from err


def stage(out: Output, writes: Mapping[str, bytes], removes: list[str], existing: Mapping[str, str]) -> None:
    """Stage `writes` and commit the journal, leaving the tree untouched: what a compile killed
    right after its commit point leaves."""
    with Staging(out, existing) as staging:
        for relative, content in writes.items():
            staging.add(relative, content)
        staging.journal(removes)


def _staged_name(path: str) -> str:
    """The name a file is staged under: its path's digest, the same in every process."""
    return digest(path.encode())


def _manifest_last(path: str) -> tuple[bool, str]:
    return (path == MANIFEST, path)


def _open_staging(parent: int, txn: Path, name: str) -> int | None:
    """Open the staging area `name` in `parent` (shown as `txn`) without following a link;
    None when there is none."""
    mode = _lstat(parent, name)
    if mode is None:
        return None
    if not stat.S_ISDIR(mode):
        raise OutputError(f"{txn} is {_kind(mode)}, where modelops stages its writes; remove it")
    return _open_dir(parent, name, txn.parent, name)


def _discard(parent: int, txn: Path, name: str) -> None:
    """Remove a staging area that never committed, after making sure it is ours."""
    fd = _open_staging(parent, txn, name)
    if fd is None:
        return
    try:
        strange = _names(fd) - {STAGED, JOURNAL, JOURNAL + ".tmp"}
    finally:
        os.close(fd)
    if strange:
        raise OutputError(
            f"{txn} holds {sorted(strange)[0]!r}, which modelops did not stage there; move it away"
        )
    shutil.rmtree(name, dir_fd=parent)


def _finish(out: Output, parent: int, txn: Path, name: str, written: Journal | None = None) -> None:
    """Finish a committed transaction (idempotent) and remove the staging area; discard one
    that never committed. `parent` holds the staging area `name` (shown as `txn`). `written`:
    the journal this process has just written, its targets checked a moment ago: its files
    are renamed at once (replaying a journal read back looks at each file first)."""
    fd = _open_staging(parent, txn, name)
    if fd is None:
        return
    try:
        journal = written if written is not None else _read_journal(fd, txn)
        if journal is not None:
            _replay(out, fd, txn, *journal, fresh=written is not None)
            os.unlink(JOURNAL, dir_fd=fd)
    finally:
        os.close(fd)
    _discard(parent, txn, name)


def _finish_legacy(out: Output) -> None:
    """Finish (across devices if need be) or discard what earlier versions staged beside the
    tree: a compile into a link to another filesystem left it stuck there."""
    legacy = _legacy_transaction(out.path)
    if legacy is None:
        return
    try:
        parent = os.open(legacy.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        _finish(out, parent, legacy, legacy.name)
    finally:
        os.close(parent)


def _read_journal(txn_fd: int, txn: Path) -> Journal | None:
    try:
        raw = _read_file(txn_fd, JOURNAL, txn, JOURNAL)
    except FileNotFoundError:
        return None
    except OutputError as err:  # a link or FIFO in its place
        raise OutputError(f"the journal of an interrupted compile is damaged: {err}") from err
    try:
        journal = json.loads(raw)
        writes = [(str(relative), str(staged_name)) for relative, staged_name in journal["writes"]]
        removes = [str(relative) for relative in journal["removes"]]
    except (ValueError, KeyError, TypeError) as err:
        raise OutputError(
            f"the journal of an interrupted compile, {txn / JOURNAL}, is damaged ({err}); remove "
            f"{txn} and run `modelops compile --full`"
        ) from err
    if any(_STAGED_NAME.fullmatch(staged_name) is None for _, staged_name in writes):
        raise OutputError(f"the journal of an interrupted compile, {txn / JOURNAL}, is damaged")
    return writes, removes


def _replay(
    out: Output,
    txn_fd: int,
    txn: Path,
    writes: list[tuple[str, str]],
    removes: list[str],
    *,
    fresh: bool = False,
) -> None:
    names_staged = {_inside(out.path, relative): staged_name for relative, staged_name in writes}
    staged = _open_dir(txn_fd, STAGED, txn, STAGED)
    try:
        order = sorted(names_staged, key=lambda path: (path == MANIFEST, path)) if staged is not None else []
        # Renamed at once: files this compile staged that are still regular files, onto a name
        # that is free or a regular file, as one listing of each directory says just before.
        # Anything else, and every file of a journal read back, is looked at first (_place).
        at_once = _names_by_kind(staged)[0] if fresh and staged is not None else set()
        for directory, names in _by_directory(order):  # the manifest last, as staged
            with _directories(out.fd, out.path, directory, create=True) as fds:
                assert fds is not None and staged is not None
                occupied = _names_by_kind(fds[-1])[1] if at_once else set()  # not by a regular file
                for name in names:
                    relative = f"{directory}/{name}" if directory else name
                    staged_name = names_staged[relative]
                    if staged_name in at_once and name not in occupied:
                        _rename_first(out, staged, staged_name, fds[-1], name, relative)
                    else:
                        _place(out, staged, staged_name, fds[-1], name, relative)
        for directory, names in _by_directory(_inside(out.path, r) for r in removes):
            with _directories(out.fd, out.path, directory, create=False) as fds:
                if fds is None:
                    continue
                for name in names:
                    relative = f"{directory}/{name}" if directory else name
                    mode = _lstat(fds[-1], name)
                    if mode is not None and not stat.S_ISREG(mode):
                        raise _refusal(out.path, relative, mode)
                    if mode is not None:
                        os.unlink(name, dir_fd=fds[-1])
                _remove_empty(fds, directory)
    finally:
        if staged is not None:
            os.close(staged)


def _names_by_kind(dir_fd: int) -> tuple[set[str], set[str]]:
    """A directory's regular files and everything else in it, by name, from one listing (the
    entries' types: no lookup per name)."""
    regular: set[str] = set()
    other: set[str] = set()
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            (regular if entry.is_file(follow_symlinks=False) else other).add(entry.name)
    return regular, other


def _rename_first(out: Output, staged: int, staged_name: str, dir_fd: int, name: str, relative: str) -> None:
    """Move a file staged by this compile into place: a rename at once, which never follows a
    link and fails on a directory; anything unexpected (another device, a directory made since
    the listing) goes the careful way. Two lookups fewer per file: a third of a commit's
    system calls."""
    try:
        os.rename(staged_name, name, src_dir_fd=staged, dst_dir_fd=dir_fd)
    except OSError:
        _place(out, staged, staged_name, dir_fd, name, relative)


def _place(out: Output, staged: int, staged_name: str, dir_fd: int, name: str, relative: str) -> None:
    """Move one staged file into place (a copy, then a rename, when it is on another device)."""
    source = _lstat(staged, staged_name)
    if source is None:
        return  # renamed into place before the interruption
    if not stat.S_ISREG(source):
        raise OutputError(
            f"the staged file {staged_name} of an interrupted compile is {_kind(source)}; refusing it"
        )
    target = _lstat(dir_fd, name)
    if target is not None and not stat.S_ISREG(target):
        raise _refusal(out.path, relative, target)
    try:
        os.rename(staged_name, name, src_dir_fd=staged, dst_dir_fd=dir_fd)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        temporary = f".{name}.modelops-copy"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=dir_fd)
        _create(dir_fd, temporary, _read_file(staged, staged_name, out.path, staged_name))
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.unlink(staged_name, dir_fd=staged)


def _remove_empty(fds: list[int], directory: str) -> None:
    """Remove `directory` and its parents while they are empty (never the output itself)."""
    names = directory.split("/") if directory else []
    for level in range(len(names), 0, -1):
        try:
            os.rmdir(names[level - 1], dir_fd=fds[level - 1])
        except OSError:  # not empty (or already gone): stop climbing
            return


def changes_of(
    listing: Mapping[str, str], kept: Mapping[str, str], existing: Mapping[str, str]
) -> TreeChanges:
    """What turns the tree described by `existing` into `listing` plus the `kept` files (all
    path -> sha256; kept files are in `existing` as they are)."""
    return TreeChanges(
        added=sorted(p for p in listing if p not in existing),
        changed=sorted(p for p, sha in listing.items() if p in existing and existing[p] != sha),
        removed=sorted(existing.keys() - kept.keys() - listing.keys()),
    )

"""Write scaffolded files without ever clobbering a user's work by accident."""

from __future__ import annotations

from pathlib import Path

from compiler.errors import ModelopsError


class ScaffoldError(ModelopsError):
    """A file to be written already exists (and --force was not given), or cannot be written."""


def write_files(root: Path, files: dict[str, bytes], *, force: bool = False) -> list[str]:
    """Write every file under `root`; refuse before writing anything if one exists, unless `force`.

    `.gitignore` is the exception: its missing lines are appended, since a repository
    usually has one already. Returns the relative paths written, in order.
    """
    for name in files:
        if (linked := _link_on_the_way(root, name)) is not None:
            raise ScaffoldError(
                f"{linked} is a symbolic link; modelops writes no file through one (nothing was written)"
            )
    existing = [name for name in files if name != ".gitignore" and (root / name).exists()]
    if existing and not force:
        raise ScaffoldError(
            f"{root / existing[0]} already exists; modelops writes no file over an existing one "
            f"(pass --force to overwrite{f' it and {len(existing) - 1} more' if len(existing) > 1 else ''})"
        )
    written: list[str] = []
    for name, content in files.items():
        path = root / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if name == ".gitignore" and path.exists():
                merged = _merged_ignore(path.read_bytes(), content)
                if merged is None:
                    continue
                content = merged
            path.write_bytes(content)
        except OSError as err:
            raise ScaffoldError(f"{path}: cannot be written: {err.strerror or err}") from None
        written.append(name)
    return written


def _link_on_the_way(root: Path, name: str) -> Path | None:
    """The first link among the directories below `root` leading to `name`, or `name` itself."""
    path = root
    for part in Path(name).parts:
        path = path / part
        if path.is_symlink():
            return path
    return None


def _merged_ignore(current: bytes, wanted: bytes) -> bytes | None:
    """`current` with the lines of `wanted` it lacks appended; None when it has them all."""
    have = {line.strip() for line in current.decode(errors="replace").splitlines()}
    missing = [line for line in wanted.decode().splitlines() if line.strip() and line.strip() not in have]
    if not [line for line in missing if not line.startswith("#")]:
        return None
    separator = b"" if not current or current.endswith(b"\n") else b"\n"
    return current + separator + ("\n".join(missing) + "\n").encode()

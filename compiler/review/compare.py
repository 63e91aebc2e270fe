"""File-by-file and object-by-object comparison of two compiled trees."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_DIFF_LINES = 400
# libyaml's safe loader where built: the same objects, ten times faster on an environment's kustomization
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class FileChange:
    path: str
    kind: str  # added | removed | changed
    diff: str
    fields: list[str] = field(default_factory=list)  # changed field paths, for Kubernetes objects


def _field_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                found.append(path)
            else:
                found += _field_paths(old[key], new[key], path)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found += _field_paths(a, b, f"{prefix}[{index}]")
        return found
    return [] if old == new else [prefix or "(whole)"]


def unified(path: str, old: bytes, new: bytes) -> str:
    lines = list(
        difflib.unified_diff(
            old.decode(errors="replace").splitlines(),
            new.decode(errors="replace").splitlines(),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
            lineterm="",
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines"]
    return "\n".join(lines)


def compare_trees(base: dict[str, bytes], head: dict[str, bytes], ignore: frozenset[str]) -> list[FileChange]:
    changes: list[FileChange] = []
    for path in sorted(base.keys() | head.keys()):
        if path in ignore:
            continue
        old, new = base.get(path), head.get(path)
        if old == new:
            continue
        if old is None:
            changes.append(FileChange(path, "added", unified(path, b"", new or b"")))
        elif new is None:
            changes.append(FileChange(path, "removed", unified(path, old, b"")))
        else:
            fields: list[str] = []
            if path.endswith(".yaml"):
                try:
                    fields = _field_paths(yaml.load(old, Loader=_Loader), yaml.load(new, Loader=_Loader))
                except yaml.YAMLError:
                    fields = []
            changes.append(FileChange(path, "changed", unified(path, old, new), fields))
    return changes

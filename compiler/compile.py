"""The render stage as a whole: models in, the files of generated/ out (no writing).

Incremental: the manifest records, per model directory, a hash of everything its files are
rendered from (the resolved model, the stamp, the environment list, the compiler version).
A model whose hash is unchanged keeps its directory as it is on disk instead of being
rendered again; since rendering is a pure function of those inputs, the result is the same
bytes as a full compile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from compiler import __version__
from compiler.bundle.layout import (
    KUSTOMIZATION,
    MANIFEST,
    KeptModel,
    build_bundle,
    environment_paths,
    with_manifest,
)
from compiler.bundle.writer import digest, read_manifest, read_tree, split_owned
from compiler.diagnostics import Diagnostic
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.project import Project
from compiler.stamp import Stamp


@dataclass(frozen=True)
class ModelEntry:
    """One model in one environment as compile sees it. `resolved` is None when the model
    comes from the check cache (its spec did not change): compile can keep its directory
    but not render it."""

    environment: str
    namespace: str
    name: str
    model_hash: str
    resolved: ResolvedModel | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.environment, self.namespace, self.name)

    @property
    def directory(self) -> str:
        return f"{self.environment}/{self.namespace}/{self.name}"


# Fields of ResolvedModel that no file of the model's directory is rendered from: the kube
# context picks the cluster `apply` talks to, the Namespace object sits at the environment's level.
NOT_RENDERED = frozenset({"kube_context", "create_namespace"})


def model_hash(model: ResolvedModel) -> str:
    """A hash of what the model's directory is rendered from: editing anything else keeps it."""
    return hashlib.sha256(model.model_dump_json(exclude=set(NOT_RENDERED)).encode()).hexdigest()


def entries_of(models: Iterable[ResolvedModel]) -> list[ModelEntry]:
    return [ModelEntry(m.environment, m.namespace, m.name, model_hash(m), m) for m in models]


def input_keys(
    entries: Iterable[ModelEntry], stamp: Stamp, environments: list[tuple[str, str]]
) -> dict[str, str]:
    """Per model directory, a hash of everything its files are rendered from."""
    common = hashlib.sha256()
    for part in (__version__, str(stamp.commit), json.dumps(environments)):
        common.update(part.encode() + b"\0")
    keys = {}
    for entry in entries:
        hashed = common.copy()
        hashed.update(entry.model_hash.encode())
        keys[entry.directory] = hashed.hexdigest()
    return keys


@dataclass
class CompileInput:
    """A passed check, as compile needs it (from the full check or the check cache)."""

    project: Project
    project_file: Path
    root: Path
    entries: list[ModelEntry]
    diagnostics: list[Diagnostic]  # warnings only
    checked: int  # spec files parsed and resolved by this run
    cached: int = 0  # spec files whose check came from the cache, unchanged


@dataclass
class PreviousTree:
    """What the last compile left: its manifest's input hashes and the files on disk. Files
    the manifest does not list were not written by modelops: they are `foreign`, never in
    `listing`, so nothing ever removes or overwrites them."""

    inputs: dict[str, str] = field(default_factory=dict)
    listing: dict[str, str] = field(default_factory=dict)  # path -> sha256, manifest excluded
    manifest: str | None = None  # sha256 of the manifest itself
    foreign: dict[str, str] = field(default_factory=dict)  # path -> sha256 (when read from disk)
    damaged: bool = False  # the manifest is unreadable, so every file counts as modelops'

    @classmethod
    def from_manifest(cls, out: Path) -> PreviousTree:
        """Trust the manifest for what is on disk: reads one file, however large the tree."""
        try:
            raw = read_manifest(out)
            if raw is None:
                return cls()
            manifest = json.loads(raw)
            return cls(_strings(manifest.get("inputs")), _strings(manifest.get("files")), digest(raw))
        except (OSError, ValueError, AttributeError):
            return cls()

    @classmethod
    def from_disk(cls, out: Path) -> PreviousTree:
        """Read every file: for --full, --check and anything that must not trust the manifest."""
        return cls.from_files(read_tree(out))

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> PreviousTree:
        """A whole tree in memory, manifest included: read from disk, or the other side of a diff."""
        try:
            inputs = _strings(json.loads(files[MANIFEST]).get("inputs"))
        except (KeyError, ValueError, AttributeError):
            inputs = {}
        listing, foreign, damaged = split_owned(files)
        manifest = digest(files[MANIFEST]) if MANIFEST in files else None
        return cls(inputs, listing, manifest, foreign, damaged)

    def full_listing(self) -> dict[str, str]:
        """Every file, the manifest included."""
        return {**self.listing, MANIFEST: self.manifest} if self.manifest else dict(self.listing)

    def keep(self, directories: Iterable[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
        """The file names directly in each given directory, and those files' listing entries
        (one pass over the listing, however many directories)."""
        names: dict[str, list[str]] = {directory: [] for directory in directories}
        kept: dict[str, str] = {}
        for path, sha in self.listing.items():
            directory, _, name = path.rpartition("/")
            in_directory = names.get(directory)
            if in_directory is not None:
                in_directory.append(name)
                kept[path] = sha
        return names, kept


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


class CannotKeep(Exception):
    """A model from the check cache whose directory cannot be kept: it has to be resolved."""


@dataclass
class Compiled:
    files: dict[str, bytes]  # every rendered file, the manifest included
    kept: dict[str, str]  # path -> sha256 of the files that stay on disk as they are
    rendered: int
    reused: int

    def listing(self) -> dict[str, str]:
        return {**self.kept, **{path: digest(content) for path, content in self.files.items()}}


def compile_entries(
    entries: list[ModelEntry],
    project: Project,
    stamp: Stamp,
    previous: PreviousTree | None = None,
    environments: list[str] | None = None,
    *,
    reuse: bool = True,
) -> Compiled:
    """Every file of the output tree (environments: all when None). With a previous tree,
    unchanged model directories are kept (when `reuse`) and the other environments' files stay."""
    chosen = environments or [env.name for env in project.environments]
    names = [(env.name, env.namespace) for env in project.environments]
    previous = previous or PreviousTree()
    selected = [e for e in entries if e.environment in chosen]
    inputs = input_keys(selected, stamp, names)
    unchanged = {
        e.directory
        for e in selected
        if reuse
        and previous.inputs.get(e.directory) == inputs[e.directory]
        and f"{e.directory}/{KUSTOMIZATION}" in previous.listing
    }
    on_disk, kept = previous.keep(unchanged)
    kept_models: list[KeptModel] = []
    to_render: list[ResolvedModel] = []
    for entry in selected:
        if entry.directory in unchanged:
            kept_models.append(KeptModel(*entry.key, tuple(on_disk[entry.directory])))
        elif entry.resolved is None:
            raise CannotKeep(entry.directory)
        else:
            to_render.append(entry.resolved)
    bundle = build_bundle(to_render, project, stamp, chosen, kept_models)
    if environments:  # what belongs to the environments we are not compiling stays
        ours = tuple(p for env in chosen for p in environment_paths(env))
        kept.update((p, sha) for p, sha in previous.listing.items() if not p.startswith(ours))
        inputs.update({d: k for d, k in previous.inputs.items() if not d.startswith(ours)})
    files = with_manifest(dict(bundle.files), inputs, kept)
    return Compiled(files, kept, len(to_render), len(kept_models))


def render_models(
    models: list[ResolvedModel], project: Project, stamp: Stamp, environments: list[str] | None = None
) -> dict[str, bytes]:
    """The whole tree in memory, every model rendered (for apply and benchmarks)."""
    return compile_entries(entries_of(models), project, stamp, None, environments).files


def render_beside(
    models: list[ResolvedModel], project: Project, stamp: Stamp, other: dict[str, bytes]
) -> dict[str, bytes]:
    """The whole tree in memory, taking from `other` (a tree rendered in memory, manifest
    included) every model directory whose inputs are the same: the bytes a full render gives,
    for the cost of the models that differ. Diff's head side is mostly its base side."""
    compiled = compile_entries(entries_of(models), project, stamp, PreviousTree.from_files(other))
    return {**{path: other[path] for path in compiled.kept}, **compiled.files}

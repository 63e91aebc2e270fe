"""The render stage as a whole: models in, the files of generated/ out (no writing).

Incremental: the manifest records, per model directory, a hash of everything its files are
rendered from (the resolved model, the stamp, the environment list, the compiler version).
A model whose hash is unchanged keeps its directory as it is on disk instead of being
rendered again; since rendering is a pure function of those inputs, the result is the same
bytes as a full compile.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import pickle
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from compiler import __version__
from compiler.bundle.bundle import Bundle, Placed, Sink
from compiler.bundle.layout import (
    KUSTOMIZATION,
    MANIFEST,
    KeptModel,
    ModelKey,
    build_bundle,
    directory_files,
    environment_paths,
    manifest_json,
    model_directory,
)
from compiler.bundle.writer import digest, hash_tree, read_manifest, split_owned, split_owned_hashes
from compiler.diagnostics import Diagnostic
from compiler.errors import WorkerStopped
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.project import Project
from compiler.stamp import Stamp
from compiler.workers import can_fork, in_workers


def _unpickled(model: ResolvedModel | bytes) -> ResolvedModel:
    """A model as a check worker may hand it over, pickled, ready to render."""
    if isinstance(model, bytes):
        resolved: ResolvedModel = pickle.loads(model)  # pickled by our own worker
        return resolved
    return model


@dataclass(frozen=True)
class ModelEntry:
    """One model in one environment as compile sees it. `model` is None when the model comes
    from the check cache (its spec did not change): compile can keep its directory but not
    render it. It is the model's pickle when a worker process checked it: the workers that
    render it unpickle it, and this process only if it asks for `resolved`."""

    environment: str
    namespace: str
    name: str
    model_hash: str
    model: ResolvedModel | bytes | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def resolved(self) -> ResolvedModel | None:
        return None if self.model is None else _unpickled(self.model)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.environment, self.namespace, self.name)

    @property
    def directory(self) -> str:
        return f"{self.environment}/{self.namespace}/{self.name}"


# Fields of ResolvedModel that no file of the model's directory is rendered from: the kube
# context picks the cluster `apply` talks to, the Namespace object sits at the environment's level.
NOT_RENDERED = frozenset({"kube_context", "create_namespace"})


# Fields added after the manifest format settled: left out while at their defaults, so a project
# that does not use them keeps the input hashes (and so the manifest bytes) it had before them.
_LEFT_OUT_AT_DEFAULT = (
    "prometheus",
    "rollout",
    "candidate",
    "stable",
    "stable_evaluated",
    "shadow",
    "shadow_evaluated",
)


@functools.cache
def _defaults() -> tuple[tuple[str, object], ...]:
    """The defaults of _LEFT_OUT_AT_DEFAULT, made once (a default factory per model per field
    was a tenth of a check)."""
    fields = ResolvedModel.model_fields
    return tuple((name, fields[name].get_default(call_default_factory=True)) for name in _LEFT_OUT_AT_DEFAULT)


def model_hash(model: ResolvedModel) -> str:
    """A hash of what the model's directory is rendered from: editing anything else keeps it."""
    excluded = set(NOT_RENDERED) | {name for name, default in _defaults() if getattr(model, name) == default}
    return hashlib.sha256(model.model_dump_json(exclude=excluded).encode()).hexdigest()


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
        """Hash every file (read once each, none kept): for --full, --check and anything that
        must not trust the manifest for what is on disk."""
        hashes = hash_tree(out)
        raw = read_manifest(out) if MANIFEST in hashes else None
        try:
            inputs = _strings(json.loads(raw).get("inputs")) if raw is not None else {}
        except (ValueError, AttributeError):
            inputs = {}
        listing, foreign, damaged = split_owned_hashes(hashes, raw)
        return cls(inputs, listing, hashes.get(MANIFEST), foreign, damaged)

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
    listing: dict[str, str]  # path -> sha256 of every file of the tree, the manifest included
    kept: dict[str, str]  # path -> sha256 of the files that stay on disk as they are
    rendered: int
    reused: int
    files: dict[str, bytes] = field(default_factory=dict)  # the rendered files, when kept in memory


class _Listed:
    """Every file of the tree passes here, in order: each path once, its digest listed, and the
    file handed to the sink (put by the process that rendered it, or here)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.listing: dict[str, str] = {}

    def add(self, path: str, content: bytes) -> None:
        if path in self.listing:
            raise ValueError(f"two outputs want the same path {path!r}")
        sha = digest(content)
        self.took(path, sha, self.sink.put(path, content, sha))

    def took(self, path: str, sha: str, placed: Placed) -> None:
        if path in self.listing:
            raise ValueError(f"two outputs want the same path {path!r}")
        self.listing[path] = sha
        self.sink.took(path, sha, placed)


# One file of a model's directory as the process that rendered it hands it back: its path,
# sha256, whether it is a Kubernetes object, and what the sink's `put` left there.
Rendered = tuple[str, str, bool, Placed]

PARALLEL_THRESHOLD = 48  # models to render; below this, starting worker processes costs more
BATCH = 16  # models per batch at most: what a worker hands back at once is a few kilobytes

# What a model is rendered from: its job, the model perhaps still pickled (see ModelEntry).
Work = tuple[ResolvedModel | bytes, Stamp, tuple[tuple[str, str], ...]]


def _render(work: Work, sink: Sink) -> list[Rendered]:
    """One model's directory, every file rendered, digested and put by this process."""
    packed, stamp, environments = work
    model = _unpickled(packed)
    directory = model_directory(model)
    rendered: list[Rendered] = []
    for name, content, is_object in directory_files((model, stamp, environments)):
        path = f"{directory}/{name}"
        sha = digest(content)
        rendered.append((path, sha, is_object, sink.put(path, content, sha)))
    return rendered


# In a worker process: where the files of the compile that forked it go.
_forked: list[Sink] = []


def _render_batch(batch: bytes) -> list[list[Rendered]]:
    """In a worker: a few models (pickled), their files put by the forked sink here."""
    work: list[Work] = pickle.loads(batch)  # pickled by the parent
    return [_render(one, _forked[0]) for one in work]


def render_in_order(work: list[Work], workers: int, sink: Sink) -> Generator[list[Rendered], None, None]:
    """Each model's files, in the order given, put by the sink in the process that rendered
    them: in `workers` forked processes when there is enough work. A worker gets a batch of
    models pickled before the fork, a few kilobytes each, and hands back digests and staged
    names, so nothing large crosses a pipe."""
    if workers < 2 or len(work) < PARALLEL_THRESHOLD or not can_fork():
        for one in work:
            yield _render(one, sink)
        return
    size = max(1, min(BATCH, len(work) // (workers * 4)))
    batches = collections.deque(
        pickle.dumps(work[start : start + size]) for start in range(0, len(work), size)
    )
    results = in_workers(
        _render_batch,
        (batches.popleft() for _ in range(len(batches))),  # each batch let go once it is sent
        workers,
        setup=functools.partial(_forked.append, sink),
        keep=sink.fds(),
    )
    try:
        for batch in results:
            yield from batch
    except BrokenProcessPool as err:
        raise WorkerStopped(
            f"a worker process rendering the models was killed ({err}); nothing was written: run "
            "modelops again, with --jobs 1 if memory is short"
        ) from None
    finally:
        results.close()


def _recorded(
    keys: list[ModelKey], rendered: Iterator[list[Rendered]], listed: _Listed
) -> Iterator[tuple[ModelKey, list[str]]]:
    """Each rendered model's files recorded in order, and the model's key with its objects."""
    for key, files in zip(keys, rendered, strict=True):
        for path, sha, _, placed in files:
            listed.took(path, sha, placed)
        yield key, [path.rpartition("/")[2] for path, _, is_object, _ in files if is_object]


def compile_entries(
    entries: list[ModelEntry],
    project: Project,
    stamp: Stamp,
    previous: PreviousTree | None = None,
    environments: list[str] | None = None,
    *,
    reuse: bool = True,
    sink: Sink | None = None,
    jobs: int = 1,
) -> Compiled:
    """Every file of the output tree (environments: all when None), each handed to `sink` as it
    is rendered (the manifest last); without a sink they are kept in `Compiled.files`. With a
    previous tree, unchanged model directories are kept (when `reuse`) and the other
    environments' files stay. Raises CannotKeep, before rendering anything, for a cached model
    whose directory cannot be kept."""
    chosen = environments or [env.name for env in project.environments]
    names = [(env.name, env.namespace) for env in project.environments]
    previous = previous or PreviousTree()
    selected = sorted((e for e in entries if e.environment in chosen), key=lambda e: e.key)
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
    work: list[Work] = []
    keys: list[ModelKey] = []
    environment_names = tuple(names)
    for entry in selected:
        if entry.directory in unchanged:
            kept_models.append(KeptModel(*entry.key, tuple(on_disk[entry.directory])))
        elif entry.model is None:
            raise CannotKeep(entry.directory)
        else:
            work.append((entry.model, stamp, environment_names))
            keys.append(entry.key)
    memory: Bundle | None = None
    if sink is None:
        sink = memory = Bundle()
    listed = _Listed(sink)
    rendered = render_in_order(work, jobs, listed.sink)
    try:  # the workers stop before the caller cleans up after an error: none still writes
        build_bundle(_recorded(keys, rendered, listed), project, chosen, kept_models, listed)
    finally:
        rendered.close()
    if environments:  # what belongs to the environments we are not compiling stays
        ours = tuple(p for env in chosen for p in environment_paths(env))
        kept.update((p, sha) for p, sha in previous.listing.items() if not p.startswith(ours))
        inputs.update({d: k for d, k in previous.inputs.items() if not d.startswith(ours)})
    listing = {**kept, **listed.listing}
    listing.pop(MANIFEST, None)
    listed.add(MANIFEST, manifest_json(listing, inputs))
    listing[MANIFEST] = listed.listing[MANIFEST]
    files = memory.files if memory is not None else {}
    return Compiled(listing, kept, len(work), len(kept_models), files)


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

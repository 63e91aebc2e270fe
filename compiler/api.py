"""The library API of modelops: check a project, render it, write it; plan and apply it on a cluster.

The CLI, the benchmarks and the tests all go through here. Nothing in this module prints;
refusals are typed errors (`compiler.errors.ModelopsError` and `CheckFailed`)::

    from compiler import api
    project = api.check(api.Options(paths=[Path("specs")]))
    files = api.render(project).files            # in memory, no I/O
    written = api.write(project, api.Mode.UPDATE)  # journaled, locked, incremental
    print(written.changes.added, written.changes.changed, written.changes.removed)

The stamp policy (which commit annotates the objects), the check-cache policy and the
fallback when a cached model's directory cannot be kept live here, once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.bundle.bundle import Placed, Sink
from compiler.bundle.layout import MANIFEST, model_documents
from compiler.bundle.layout import serialise as serialise_document
from compiler.bundle.writer import (
    Staging,
    TreeChanges,
    changes_of,
    check_target,
    compare_listings,
    ensure_ours,
    hash_tree,
    interrupted,
    locked,
    read_manifest,
    refuse_in_the_way,
    split_owned_hashes,
)
from compiler.compile import (
    CannotKeep,
    Compiled,
    CompileInput,
    PreviousTree,
    compile_entries,
    entries_of,
)
from compiler.diagnostics import Diagnostic
from compiler.errors import ModelopsError, OutputError
from compiler.pipeline import Checked, check_at_ref
from compiler.pipeline import check as check_specs
from compiler.review.review import Review, SideFailed, review  # diff --base: only what changed
from compiler.spec.catalog import find_project_file
from compiler.stamp import Stamp
from compiler.workers import default_jobs

if TYPE_CHECKING:  # imported when used: compile never loads the kubernetes client
    from compiler.reconcile.apply import ApplyOptions, ApplyReport
    from compiler.reconcile.changeset import Change
    from compiler.reconcile.client import Cluster
    from compiler.reconcile.environments import Target
    from compiler.reconcile.errors import Stage
    from compiler.reconcile.session import Observer, Outcome, Session

__all__ = [
    "CheckFailed",
    "Mode",
    "ModelopsError",
    "Options",
    "Project",
    "Review",
    "SideFailed",
    "Written",
    "apply",
    "check",
    "documents",
    "plan",
    "render",
    "review",
    "serialise",
    "targets",
    "write",
]


class Mode(enum.Enum):
    """How much a compile trusts what the last one left."""

    UPDATE = "update"  # reuse unchanged models' files and the check cache; write what changed
    FULL = "full"  # check and render everything again, hash every file; write what changed
    CHECK = "check"  # write nothing: render the models whose inputs changed, hash every file
    # against what the manifest and the renders say, report what an update would change
    VERIFY = "verify"  # write nothing: render every model again (after a change to modelops
    # itself, which input hashes do not cover) and compare every file's bytes


class CheckFailed(ModelopsError):
    """The specs have errors: `diagnostics` says where; nothing was written."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("compile stopped: fix the errors above; nothing was written")
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class Options:
    """What to compile and where. `stamp`: None follows the project's output.stamp."""

    paths: Sequence[Path] = (Path("specs"),)
    project: Path | None = None  # default: the nearest modelops.yaml at or above the first path
    environments: Sequence[str] | None = None  # default: every environment
    ref: str | None = None  # compile the specs as they are at this Git ref
    stamp: bool | None = None
    out: Path | None = None  # default: generated/ beside the specs directory
    jobs: int | None = None  # worker processes that check and render; default: the CPUs this process may use


@dataclass
class Project:
    """A project that passed its check, with the stamp its objects get."""

    inputs: CompileInput
    stamp: Stamp
    options: Options
    project_file: Path  # the working tree's (with a ref, `inputs` come from another commit)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Warnings only: a project with errors is never returned."""
        return self.inputs.diagnostics

    @property
    def out(self) -> Path:
        if self.options.out is not None:
            return self.options.out
        return self.project_file.resolve().parent.parent / "generated"


@dataclass(frozen=True)
class Written:
    """What `write` did (or, in check mode, would do) to the output tree."""

    out: Path
    changes: TreeChanges
    foreign: dict[str, str] = field(default_factory=dict)  # files modelops did not write, left alone
    damaged: bool = False  # the manifest was unreadable: every file counted as modelops'
    models: int = 0
    files: int = 0
    rendered: int = 0
    reused: int = 0

    @property
    def stale(self) -> bool:
        return self.changes.any


def _environments(options: Options) -> list[str] | None:
    return list(options.environments) if options.environments is not None else None


def _passed(checked: Checked) -> CompileInput:
    if not checked.ok or checked.catalog is None:
        raise CheckFailed(checked.diagnostics)
    catalog = checked.catalog
    return CompileInput(
        catalog.project,
        catalog.project_file,
        catalog.root,
        entries_of(checked.models),
        checked.diagnostics,
        catalog.spec_files,
    )


def check(options: Options, mode: Mode = Mode.FULL) -> Project:
    """Load, validate and resolve the specs; raise CheckFailed with every error found.
    In UPDATE mode unchanged specs come from the check cache (`render` then needs the previous tree)."""
    paths, environments = list(options.paths), _environments(options)
    if options.ref is not None:
        working = find_project_file(paths, options.project)
        with check_at_ref(paths, options.project, environments, options.ref) as (checked, snap):
            inputs = _passed(checked)
            return Project(inputs, Stamp(None if options.stamp is False else snap.commit), options, working)
    inputs = _check_working_tree(options, mode)
    commit = None
    if inputs.project.output.stamp if options.stamp is None else options.stamp:
        from compiler.gitops.stamp import commit_stamp

        commit = commit_stamp(inputs.project_file.parent)
    return Project(inputs, Stamp(commit), options, inputs.project_file)


def _check_working_tree(options: Options, mode: Mode) -> CompileInput:
    """The check, served from the cache for unchanged specs unless the mode trusts nothing."""
    from compiler import check_cache
    from compiler.check_workers import check_in_workers

    paths, environments = list(options.paths), _environments(options)
    jobs = options.jobs or default_jobs()
    if mode is not Mode.UPDATE:
        in_workers = check_in_workers(paths, options.project, environments, jobs)
        return in_workers[0] if in_workers else _passed(check_specs(paths, options.project, environments))
    project_file = find_project_file(paths, options.project)
    root = project_file.resolve().parent.parent
    context = check_cache.context_key(project_file, root)
    quick = check_cache.quick_check(paths, project_file, environments, context)
    if quick is not None:
        inputs, entries = quick
        if entries is not None:
            check_cache.save(root, context, entries)
        return inputs
    in_workers = check_in_workers(paths, options.project, environments, jobs)
    if in_workers is not None:
        inputs, entries = in_workers
        if environments is None:
            check_cache.save(root, context, entries)
        return inputs
    checked = check_specs(paths, options.project, environments)
    passed = _passed(checked)
    if environments is None:
        check_cache.save(root, context, check_cache.record(checked, passed.entries))
    return passed


def render(
    project: Project, previous: PreviousTree | None = None, *, reuse: bool = True, sink: Sink | None = None
) -> Compiled:
    """Every file of the output tree, in `Compiled.files` or, one by one, to `sink` (no I/O of its
    own). With a previous tree, unchanged model directories are kept (when `reuse`); raises
    CannotKeep for a cached model it cannot keep."""
    inputs = project.inputs
    jobs = project.options.jobs or default_jobs()
    environments = _environments(project.options)
    return compile_entries(
        inputs.entries,
        inputs.project,
        project.stamp,
        previous,
        environments,
        reuse=reuse,
        sink=sink,
        jobs=jobs,
    )


def write(
    project: Project, mode: Mode = Mode.UPDATE, *, warn: Callable[[str], None] | None = None
) -> Written:
    """Render and write the output tree as one journaled transaction under a lock, finishing an
    interrupted one first; in CHECK mode write nothing and report what would change.
    `warn` hears about a damaged manifest as soon as it is found."""
    out = project.out
    spec_dirs = [path for path in project.options.paths if path.is_dir()]
    check_target(out, project.project_file.resolve().parent.parent, [project.project_file.parent, *spec_dirs])
    if mode in (Mode.CHECK, Mode.VERIFY):
        if interrupted(out):  # a check writes nothing, so it cannot finish the update itself
            raise OutputError(
                f"a compile of {out} was stopped half-way through writing; run `modelops compile` "
                "to finish it, then check again"
            )
        return _check(project, out, warn, reuse=mode is Mode.CHECK)
    try:
        with locked(out) as tree:
            ensure_ours(tree)
            previous = PreviousTree.from_disk(out) if mode is Mode.FULL else PreviousTree.from_manifest(out)
            if previous.manifest is None:  # no manifest, or a damaged one: see what is there
                previous = PreviousTree.from_disk(out)
            _warn_damaged(previous, out, warn)
            existing = previous.full_listing()
            with Staging(tree, existing) as staging:  # each file staged as it is rendered
                try:
                    compiled = render(project, previous, reuse=mode is Mode.UPDATE, sink=staging)
                except CannotKeep:  # a cached model whose directory is gone or stale: check it all
                    project = _checked_again(project)
                    compiled = render(project, previous, reuse=mode is Mode.UPDATE, sink=staging)
                refuse_in_the_way(out, compiled.listing, previous.foreign)
                changes = changes_of(compiled.listing, compiled.kept, existing)
                staging.commit(changes.removed)
    except OSError as err:  # full disk, permissions: nothing was committed, the old tree is intact
        raise OutputError(
            f"cannot write {out}: {err.strerror or err}; the previous tree was left as it was"
        ) from err
    return Written(
        out,
        changes,
        previous.foreign,
        previous.damaged,
        len(project.inputs.entries),
        len(compiled.listing),
        compiled.rendered,
        compiled.reused,
    )


def _check(project: Project, out: Path, warn: Callable[[str], None] | None, *, reuse: bool) -> Written:
    """What an update would change, writing nothing: models whose inputs the manifest records
    as unchanged are not rendered, their files are expected as the manifest lists them, and
    every file on disk is hashed (read once) to find one edited, removed or added by hand."""
    if interrupted(out):  # a check writes nothing, so it cannot finish the update itself
        raise OutputError(
            f"a compile of {out} was stopped half-way through writing; run `modelops compile` "
            "to finish it, then check again"
        )
    expected = PreviousTree.from_manifest(out)  # what the last compile says it wrote
    on_disk = hash_tree(out)
    listing, foreign, damaged = split_owned_hashes(
        on_disk, read_manifest(out) if MANIFEST in on_disk else None
    )
    if damaged:
        expected = PreviousTree()
    _warn_damaged(PreviousTree(damaged=damaged), out, warn)
    compiled = render(project, expected, reuse=reuse, sink=_Nowhere())
    refuse_in_the_way(out, compiled.listing, foreign)  # as an update would
    actual = {**listing, MANIFEST: on_disk[MANIFEST]} if MANIFEST in on_disk else listing
    changes = compare_listings(compiled.listing, actual)
    return Written(
        out,
        changes,
        foreign,
        damaged,
        len(project.inputs.entries),
        len(compiled.listing),
        compiled.rendered,
        compiled.reused,
    )


def documents(project: Project) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each model's documents before serialisation, as (file name, document), rendered one by one
    in this process: with `serialise`, how the benchmark times serialisation alone (its floor).
    The environments' few shared files (kustomizations, overview, Argo CD, Flux) are not among
    them. The project must come from a FULL or CHECK mode `check` (every model resolved)."""
    names = tuple((env.name, env.namespace) for env in project.inputs.project.environments)
    for entry in sorted(project.inputs.entries, key=lambda e: e.key):  # the chosen environments'
        if entry.resolved is None:
            raise ValueError(f"{entry.directory} came from the check cache: check in Mode.FULL")
        for filename, document, _ in model_documents((entry.resolved, project.stamp, names)):
            yield filename, document


def serialise(filename: str, document: dict[str, Any]) -> bytes:
    """A document's bytes as compile writes them to a file named `filename`."""
    return serialise_document(filename, document)


class _Nowhere:
    """A check's sink: the digests are all it needs (compile keeps them)."""

    def fds(self) -> list[int]:
        return []

    def put(self, path: str, content: bytes, sha: str) -> Placed:
        return None

    def took(self, path: str, sha: str, placed: Placed) -> None:
        pass


def _checked_again(project: Project) -> Project:
    """The full check of the working tree, keeping the stamp (a ref's check is full already)."""
    if project.options.ref is not None:
        return project
    options = project.options
    inputs = _passed(check_specs(list(options.paths), options.project, _environments(options)))
    return Project(inputs, project.stamp, options, project.project_file)


def _warn_damaged(previous: PreviousTree, out: Path, warn: Callable[[str], None] | None) -> None:
    if previous.damaged and warn is not None:
        warn(
            f"warning: {out / MANIFEST} is damaged, so modelops cannot tell its files from others: "
            f"every file in {out} counts as its own, and those the new output lacks are removed"
        )


# --- the cluster: what would change, and changing it ------------------------------------------


def targets(options: Options, context: str | None = None) -> list[Target]:
    """The desired objects of each chosen environment, rendered in memory, with the kube context
    to apply them to (`context` overrides the environments')."""
    from compiler.reconcile.environments import targets as environment_targets

    environments = _environments(options)
    checked = check_specs(list(options.paths), options.project, environments)
    if not checked.ok:
        raise CheckFailed(checked.diagnostics)
    return environment_targets(checked, environments, context)


def plan(cluster: Cluster, target: Target, *, force_conflicts: bool = False) -> list[Change]:
    """What applying `target` would do, one typed change per object (server-side dry run)."""
    from compiler.reconcile.diff import plan as plan_changes

    return plan_changes(cluster, target.objects, target.applysets, force_conflicts=force_conflicts)


def apply(
    cluster: Cluster,
    target: Target,
    changes: list[Change],
    options: ApplyOptions,
    on_stage: Callable[[Stage, int], None] = lambda stage, count: None,
) -> ApplyReport:
    """Carry out a plan: apply, recreate and (when asked) prune, stage by stage."""
    from compiler.reconcile.apply import apply_all

    return apply_all(cluster, changes, target.applysets, options, on_stage)


def apply_environments(targets: list[Target], session: Session, observer: Observer) -> Iterator[Outcome]:
    """`apply`: each environment in turn (plan, apply, wait as `session` says), outcome by outcome."""
    from compiler.reconcile.session import apply_environments as apply_in_turn

    return apply_in_turn(targets, session, observer)

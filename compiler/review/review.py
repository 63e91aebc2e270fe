"""Review a change: what moving the specs from a base ref to a head does to the generated tree.

Only what changed is rendered. With the same project file and evaluation records on both sides,
a spec file with the same bytes on both sides resolves to the same models, so those models are
neither checked twice, rendered nor compared: their model hashes come from the check cache (or
from one check shared by both sides). A model directory whose input hash (as the manifest
records it) differs is rendered on each side that has it. The environment-level files change
only when the set of model files does; then the other models' file names come from a manifest
that records the same input hashes: the base commit's committed generated/ tree, or the working
tree's. Anything else (an error on either side, a changed project file or evaluation record, no
usable manifest, a removed recording rule whose users must be searched) takes the whole path:
check and render both sides in full, as a compile would, which also reports every error.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from compiler import check_cache
from compiler.bundle.layout import MANIFEST, is_object, model_documents
from compiler.check_workers import SpecInput, check_specs
from compiler.compile import (
    CannotKeep,
    ModelEntry,
    PreviousTree,
    compile_entries,
    entries_of,
    input_keys,
    render_beside,
)
from compiler.diagnostics import Diagnostic, DiagnosticError, problems_in
from compiler.errors import ModelopsError, UsageError
from compiler.pipeline import Checked, check, check_at_ref
from compiler.resolve.resolved import ResolvedModel
from compiler.resolve.resolver import (
    build_models,
    chosen_environments,
    merge_catalog,
    undeclared_environments,
)
from compiler.review.compare import compare_trees
from compiler.review.render import DiffReport
from compiler.review.summary import Documents, breaking_changes, series_used, summarise
from compiler.spec.catalog import (
    SPEC_SUFFIXES,
    Catalog,
    LoadedSpec,
    check_overlay_names,
    display_path,
    find_project_file,
    parse_project,
    parse_spec,
    root_relative,
    scan_spec_files,
)
from compiler.spec.check_merged import check_merged
from compiler.spec.project import PROJECT_FILE, Project
from compiler.spec.records import EVALUATIONS_DIR, EvaluationRecord, load_records, read_record, record_files
from compiler.spec.yamlsource import SourceDocument, load_bytes, read_source
from compiler.stamp import Stamp
from compiler.targets.grafana.dashboards import overview_dashboard
from compiler.workers import default_jobs

# No stamps: the commit annotation would differ in every file and hide the real changes.
UNSTAMPED = Stamp(None)
ALLOW_TRAILER = re.compile(r"^Modelops-Allow-Breaking:\s*(yes|true)\s*$", re.MULTILINE | re.IGNORECASE)
OUTPUT_DIR = "generated"  # beside the specs directory, where a project commits its output

Stage = Callable[[str, int, int], None]
Manifest = Callable[[], PreviousTree]  # read only when asked: a large tree's is megabytes


class Inputs(Protocol):
    """What to review (`compiler.api.Options` is one)."""

    @property
    def paths(self) -> Sequence[Path]: ...
    @property
    def project(self) -> Path | None: ...
    @property
    def environments(self) -> Sequence[str] | None: ...


class SideFailed(ModelopsError):
    """One side of the review does not compile: `diagnostics` says where."""

    def __init__(self, side: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(f"the {side} side does not compile; fix the errors above")
        self.diagnostics = diagnostics


@dataclass
class Review(DiffReport):
    """The report, and how it was made."""

    rendered: int = 0  # model directories rendered, both sides
    whole: bool = False  # both sides were checked and rendered in full

    @property
    def changed(self) -> bool:
        return bool(self.models or self.files)


class _Whole(Exception):
    """The quick path cannot answer exactly: check and render both sides in full."""


@dataclass
class _Side:
    """One side: its models by directory, and what has been rendered of them."""

    project: Project
    entries: dict[str, ModelEntry]  # model directory -> entry, the chosen environments only
    manifests: list[Manifest] = field(default_factory=list)  # output trees it may match
    files: dict[str, bytes] = field(default_factory=dict)
    documents: Documents = field(default_factory=dict)  # "<directory>/" -> file name -> document
    whole: bool = False  # every entry is resolved and `files` is the whole tree

    def names(self) -> tuple[tuple[str, str], ...]:
        return tuple((env.name, env.namespace) for env in self.project.environments)

    def keys(self) -> dict[str, str]:
        return input_keys(self.entries.values(), UNSTAMPED, list(self.names()))

    def model(self, directory: str) -> ResolvedModel:
        resolved = self.entries[directory].resolved
        if resolved is None:
            raise _Whole  # from the check cache: known by its hash only
        return resolved

    def rendered(self, directory: str) -> dict[str, Any]:
        """Every document of one model directory, rendered once."""
        key = directory + "/"
        if key not in self.documents:
            job = (self.model(directory), UNSTAMPED, self.names())
            self.documents[key] = {name: body for name, body, _ in model_documents(job)}
        return self.documents[key]

    def series_in(self, environment: str) -> set[str]:
        """Series that any rule or dashboard of an environment uses: needs all its models."""
        if not self.whole:
            raise _Whole
        directories = [d for d in self.entries if d.startswith(f"{environment}/")]
        documents = [(n, b) for d in directories for n, b in self.rendered(d).items()]
        env = self.project.environment(environment)
        if env is not None and directories:
            board = overview_dashboard(environment, env.namespace, len(directories), list(self.names()))
            documents.append(("overview-dashboard.json", board))
        return series_used(documents)


def review(
    options: Inputs,
    base: str,
    head: str | None = None,
    *,
    allow_breaking: bool = False,
    on_stage: Stage = lambda what, done, total: None,
) -> Review:
    """Compare the specs at `base` with `head` (default: the working tree); raise SideFailed
    when a side does not compile. A breaking change counts as acknowledged with
    `allow_breaking` or a `Modelops-Allow-Breaking: yes` trailer on a commit in base..head."""
    labels = (base, head or "working tree")
    try:
        report = _compare(*_quick_sides(options, base, head, on_stage), labels, on_stage)
    except _Whole:
        report = _compare(*_whole_sides(options, base, head, on_stage), labels, on_stage)
    if report.breaking:
        report.acknowledged = allow_breaking or _trailer(options, base, head)
    return report


def _compare(base: _Side, head: _Side, labels: tuple[str, str], on_stage: Stage) -> Review:
    on_stage("comparing", 3, 3)
    base_keys, head_keys = base.keys(), head.keys()
    changed = sorted(d for d in base_keys.keys() | head_keys.keys() if base_keys.get(d) != head_keys.get(d))
    if changed and not base.whole:
        _render_changed(base, head, changed, base_keys.keys() & head_keys.keys() - set(changed))
    files = compare_trees(base.files, head.files, frozenset({MANIFEST}))
    before = [base.model(d) for d in changed if d in base.entries]
    after = [head.model(d) for d in changed if d in head.entries]
    for side, directories in ((base, base_keys), (head, head_keys)):
        for directory in changed:
            if directory in directories:
                side.rendered(directory)
    models = summarise(before, after, base.documents, head.documents, files)
    breaking = breaking_changes(models, base.documents, head.documents, head.series_in)
    rendered = len(base.entries) + len(head.entries) if base.whole else len(before) + len(after)
    return Review(*labels, models, files, breaking, False, rendered, base.whole)


def _render_changed(base: _Side, head: _Side, changed: list[str], same: set[str]) -> None:
    """Render the changed model directories on each side that has them, and the environment-level
    files when the set of model files differs (they depend on nothing else that can differ)."""
    objects = [
        {d: [n for n in side.rendered(d) if is_object(n)] for d in changed if d in side.entries}
        for side in (base, head)
    ]
    previous = _listed(base, same, [*base.manifests, *head.manifests]) if objects[0] != objects[1] else None
    ours = tuple(f"{d}/" for d in changed)
    for side in (base, head):
        if previous is None:  # the environment-level files are the same on both sides
            entries = [side.entries[d] for d in changed if d in side.entries]
            files = compile_entries(entries, side.project, UNSTAMPED).files
            side.files = {path: content for path, content in files.items() if path.startswith(ours)}
            continue
        try:  # the unchanged directories are kept (the same on both sides): not in `files`
            side.files = compile_entries(list(side.entries.values()), side.project, UNSTAMPED, previous).files
        except CannotKeep:
            raise _Whole from None


def _listed(side: _Side, same: set[str], manifests: list[Manifest]) -> PreviousTree:
    """The unchanged model directories' files, from manifests that record the same input
    hashes for them: what lets compile keep them without rendering."""
    keys = side.keys()
    inputs: dict[str, str] = {}
    listing: dict[str, str] = {}
    for read in manifests:
        if inputs.keys() == same:
            break
        manifest = read()
        found = [d for d in same if d not in inputs and manifest.inputs.get(d) == keys[d]]
        listing.update(manifest.keep(found)[1])
        inputs.update((d, keys[d]) for d in found)
    if inputs.keys() != same:
        raise _Whole
    return PreviousTree(inputs, listing)


# --- the whole path: check and render both sides in full -------------------------------------


def _whole_sides(options: Inputs, base: str, head: str | None, on_stage: Stage) -> tuple[_Side, _Side]:
    on_stage(f"compiling the base ({base})", 1, 3)
    base_side = _checked(options, base, f"base ({base})")
    on_stage(f"compiling the head ({head or 'working tree'})", 2, 3)
    head_side = _checked(options, head, f"head ({head or 'working tree'})")
    entries = list(base_side.entries.values())
    base_side.files = compile_entries(entries, base_side.project, UNSTAMPED, jobs=default_jobs()).files
    models = [e.resolved for e in head_side.entries.values() if e.resolved is not None]
    head_side.files = render_beside(models, head_side.project, UNSTAMPED, base_side.files)
    return base_side, head_side


def _checked(options: Inputs, ref: str | None, label: str) -> _Side:
    paths, environments = list(options.paths), _environments(options)
    checked: Checked
    if ref is None:
        checked = check(paths, options.project, environments)
    else:
        with check_at_ref(paths, options.project, environments, ref) as (checked, _):
            pass
    if not checked.ok or checked.catalog is None:
        raise SideFailed(label, checked.diagnostics)
    entries = {entry.directory: entry for entry in entries_of(checked.models)}
    return _Side(checked.catalog.project, entries, whole=True)


def _environments(options: Inputs) -> list[str] | None:
    return list(options.environments) if options.environments is not None else None


# --- the quick path: check and render only what differs ----------------------------------------


@dataclass
class _Tree:
    """The inputs of one side as bytes: specs by source, the project file, evaluation records."""

    project_file: Path
    project: bytes
    specs: dict[str, tuple[Path, bytes]]  # source -> (path as named, content)
    evaluations: dict[str, bytes]  # path under the project root -> content
    manifest: Manifest  # what generated/ records of itself there


def _quick_sides(options: Inputs, base: str, head: str | None, on_stage: Stage) -> tuple[_Side, _Side]:
    paths, environments = list(options.paths), _environments(options)
    project_file = find_project_file(paths, options.project).resolve()
    root = project_file.parent.parent
    on_stage(f"compiling the base ({base})", 1, 3)
    base_tree = _tree_at(paths, project_file, base)
    on_stage(f"compiling the head ({head or 'working tree'})", 2, 3)
    working = _working_tree(paths, project_file)
    head_tree = working if head is None else _tree_at(paths, project_file, head)
    inputs = {
        (tree.project, tuple(sorted(tree.evaluations.items()))) for tree in (base_tree, head_tree, working)
    }
    if len(inputs) != 1:
        raise _Whole  # every model may differ: the whole path says how
    document, project = _project(head_tree)
    if undeclared_environments(project, environments):
        raise _Whole  # the whole path names the unknown environment
    cached = check_cache.load(root, check_cache.context_key(project_file, root))
    records = load_records(root)
    same = {
        s for s, (_, raw) in base_tree.specs.items() if s in head_tree.specs and head_tree.specs[s][1] == raw
    }
    shared, unknown = _from_cache(head_tree, same, cached)
    context = (project_file, root, document, project, records, environments)
    shared += _resolve(head_tree, unknown, *context)
    sides = []
    for tree in (base_tree, head_tree):
        own = _resolve(tree, sorted(tree.specs.keys() - same), *context)
        entries = [e for e in shared + own if environments is None or e.environment in environments]
        by_directory = {entry.directory: entry for entry in entries}
        if len(by_directory) != len(entries):
            raise _Whole  # a duplicate model: the whole path says where
        sides.append(_Side(project, by_directory, [tree.manifest, working.manifest]))
    return sides[0], sides[1]


def _working_tree(paths: list[Path], project_file: Path) -> _Tree:
    """The working tree's inputs (the head side's, or what the check cache was made from).
    Anything it cannot read (a path not there, an unreadable evaluation record, which the check
    skips) sends the review down the whole path: with --head the working tree may not matter,
    and otherwise the whole path says what is wrong."""
    root = project_file.parent.parent
    try:
        scan = scan_spec_files(paths or [project_file.parent], root)
        if scan.problems:
            raise _Whole  # a refused link or a skipped special file: the whole path reports it
        specs = {
            root_relative(resolved, root): (path, read_source(path, str(path)))
            for path, resolved in scan.files
            if resolved != project_file
        }
        project = read_source(project_file, str(project_file))
        evaluations: dict[str, bytes] = {}
        for record in record_files(root):
            content = read_record(root, record)
            if content is None:
                raise _Whole  # a record the check skips (a link, a FIFO): compared in full
            evaluations[record.relative_to(root).as_posix()] = content
    except (OSError, UsageError, DiagnosticError):
        raise _Whole from None
    previous = functools.partial(PreviousTree.from_manifest, root / OUTPUT_DIR)
    return _Tree(project_file, project, specs, evaluations, previous)


def _tree_at(paths: list[Path], project_file: Path, ref: str) -> _Tree:
    """A side's inputs at a commit, read from Git's object database into memory. The spec files
    are those `scan_spec_files` finds in an export; a link or submodule, a path that is not
    there or outside the project, sends the review down the whole path, which says why."""
    from compiler.gitops.repo import REGULAR_MODES, blobs_under, commit_at

    root = project_file.parent.parent
    found = commit_at(root, ref)
    if found is None:
        raise _Whole
    worktree, commit = found
    try:
        prefix = root.relative_to(worktree)
        wanted = [path.resolve().relative_to(root).as_posix() for path in paths] or [project_file.parent.name]
    except ValueError:
        raise _Whole from None
    if "." in wanted:  # the whole project root: the whole path walks it as a scan does
        raise _Whole
    project_name = project_file.relative_to(root).as_posix()
    manifest_name = f"{OUTPUT_DIR}/{MANIFEST}"
    asked = [*wanted, project_name, EVALUATIONS_DIR, manifest_name]
    blobs = blobs_under(worktree, commit, [(prefix / name).as_posix() for name in asked])
    if any(mode not in REGULAR_MODES for mode, _ in blobs.values()):
        raise _Whole
    cut = len(f"{prefix.as_posix()}/") if prefix.parts else 0
    files = {path[cut:]: content for path, (_, content) in blobs.items()}
    if project_name not in files:
        raise _Whole
    specs: dict[str, tuple[Path, bytes]] = {}
    for name in wanted:
        below = [source for source in files if source.startswith(f"{name}/")]
        if name in files:  # a file named on the command line is read whatever its name
            below = [name]
        elif not below:
            raise _Whole  # not there at that commit
        for source in below:
            if source != project_name and (source == name or _spec_name(source[len(name) + 1 :])):
                specs[source] = (Path(f"{ref}:{source}"), files[source])
    evaluations = {
        name: content
        for name, content in files.items()
        if name.startswith(f"{EVALUATIONS_DIR}/") and _record_name(name[len(EVALUATIONS_DIR) + 1 :])
    }
    manifest = functools.partial(_manifest, files.get(manifest_name))
    return _Tree(project_file, files[project_name], specs, evaluations, manifest)


def _manifest(raw: bytes | None) -> PreviousTree:
    """A committed manifest, read as compile reads one from disk."""
    if raw is None:
        return PreviousTree()
    with tempfile.TemporaryDirectory(prefix="modelops-manifest-") as scratch:
        (Path(scratch) / MANIFEST).write_bytes(raw)
        return PreviousTree.from_manifest(Path(scratch))


def _spec_name(below: str) -> bool:
    """Whether a file this far below a directory is a spec, as scan_spec_files walks it."""
    *directories, name = below.split("/")
    hidden = any(part.startswith(".") for part in directories) or name.startswith(".")
    return not hidden and name.endswith(SPEC_SUFFIXES) and name != PROJECT_FILE


def _record_name(below: str) -> bool:
    """Whether a file this far below evaluations/ is a record, as load_records globs them."""
    parts = below.split("/")
    return len(parts) == 2 and not any(part.startswith(".") for part in parts) and parts[1].endswith(".json")


def _project(tree: _Tree) -> tuple[SourceDocument, Project]:
    try:
        document = load_bytes(tree.project, display_path(tree.project_file))
    except DiagnosticError:
        raise _Whole from None
    project, problems = parse_project(document)
    if project is None or problems:
        raise _Whole
    return document, project


def _from_cache(
    tree: _Tree, sources: set[str], cached: dict[str, check_cache.CachedSpec]
) -> tuple[list[ModelEntry], list[str]]:
    """The models of specs whose text the check cache knows, and the sources it does not."""
    found: list[ModelEntry] = []
    unknown: list[str] = []
    for source in sorted(sources):
        hit = cached.get(source)
        try:
            text = tree.specs[source][1].decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _Whole from None
        if hit is not None and hit.digest == check_cache.text_digest(text):
            found += hit.models
        else:
            unknown.append(source)
    return found, unknown


def _resolve(
    tree: _Tree,
    sources: list[str],
    project_file: Path,
    root: Path,
    document: SourceDocument,
    project: Project,
    records: dict[tuple[str, str], EvaluationRecord],
    environments: list[str] | None,
) -> list[ModelEntry]:
    """Check and resolve some specs of a side; any problem sends the review down the whole path."""
    catalog = Catalog(root, project_file, project, document, [], len(sources), records)
    inputs = [
        SpecInput(source, display_path(tree.specs[source][0]), *tree.specs[source]) for source in sources
    ]
    checked = check_specs(catalog, chosen_environments(project, environments), inputs, default_jobs())
    if checked is not None:  # a large side, in workers, without a problem (warnings aside)
        return sorted((entry for spec in checked for entry in spec.cached.models), key=lambda e: e.key)
    loaded: list[LoadedSpec] = []
    for one in inputs:
        assert one.raw is not None  # read from the side's tree
        try:
            spec_document = load_bytes(one.raw, one.display)
        except DiagnosticError:
            raise _Whole from None
        spec, problems = parse_spec(spec_document)
        if spec is None or problems or check_overlay_names(spec, spec_document, project):
            raise _Whole
        loaded.append(LoadedSpec(spec_document, spec, one.source))
    if not loaded:
        return []
    catalog.specs = loaded
    passed, found = check_merged(project, merge_catalog(catalog, environments))
    resolution = build_models(catalog, passed)
    if any(d.is_error for d in problems_in(found) + resolution.diagnostics):
        raise _Whole
    return entries_of(resolution.models)


def _trailer(options: Inputs, base: str, head: str | None) -> bool:
    """Whether a commit in base..head accepts breaking changes with a trailer."""
    from compiler.gitops.repo import open_repo

    repo = open_repo(find_project_file(list(options.paths), options.project).parent)
    commits = repo.iter_commits(f"{base}..{head or 'HEAD'}", max_count=1000)
    return any(ALLOW_TRAILER.search(str(commit.message)) for commit in commits)

"""`diff --base` renders only what changed, and says exactly what a full render of both sides says."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import api
from compiler.bundle.layout import MANIFEST
from compiler.bundle.writer import read_tree
from compiler.gitops.repo import REGULAR_MODES, blobs_under, commit_at, snapshot
from compiler.review.compare import compare_trees
from tests.conftest import REPO, Result
from tests.git_workspace import GitWorkspace

COPIES = 6  # models besides the bundled ones: enough that "only what changed" means something


class Project(GitWorkspace):
    """A Git repository holding the bundled project and copies of one spec."""

    def __init__(self, root: Path) -> None:
        for name in ("specs", "models", "data", "evaluations"):
            shutil.copytree(REPO / name, root / name)
        text = (root / "specs" / "credit-default.yaml").read_text()
        for i in range(COPIES):
            copy = text.replace("name: credit-default", f"name: copy-{i}", 1)
            (root / "specs" / f"copy-{i}.yaml").write_text(copy)
        super().__init__(root)

    def commit(self, message: str) -> str:
        return self.save(message)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    (tmp_path / "full").mkdir()  # where the sides are compiled in full, outside the repository
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    return Project(tmp_path / "repo")


def compiled(cli: Callable[..., Result], ref: str | None, out: Path) -> dict[str, bytes]:
    """One side compiled in full, as `compile` writes it: what the review must agree with."""
    args = ["compile", "specs", "--full", "--no-stamp", "--out", out, *(["--ref", ref] if ref else [])]
    result = cli(*args)
    assert result.code == 0, result.err
    return read_tree(out)


def expected_files(
    cli: Callable[..., Result], base: str, head: str | None, tmp: Path
) -> list[tuple[str, str, str]]:
    changes = compare_trees(
        compiled(cli, base, tmp / "a"), compiled(cli, head, tmp / "b"), frozenset({MANIFEST})
    )
    return [(c.path, c.kind, c.diff) for c in changes]


def reviewed(base: str, head: str | None = None) -> api.Review:
    return api.review(api.Options(paths=[Path("specs")]), base, head)


def files_of(report: api.Review) -> list[tuple[str, str, str]]:
    return [(c.path, c.kind, c.diff) for c in report.files]


def test_one_changed_spec_renders_its_models_alone(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    project.commit("start")
    assert cli("compile", "specs").code == 0  # fills the check cache, as a developer's last compile
    project.edit("specs/copy-3.yaml", "{min: 1, max: 2}", "{min: 1, max: 3}")
    report = reviewed("HEAD")
    assert not report.whole
    assert report.rendered == 2  # copy-3 in staging, on each side: nothing else
    assert [(m.model, m.environment, m.status) for m in report.models] == [("copy-3", "staging", "changed")]
    assert report.models[0].details == ["replicas 1..2 -> 1..3"]
    assert files_of(report) == expected_files(cli, "HEAD", None, tmp_path / "full")


def test_an_added_model_takes_the_other_file_names_from_the_committed_tree(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    assert cli("compile", "specs").code == 0
    base = project.commit("start, generated/ committed")
    shutil.rmtree(project.root / "generated")  # only the base commit's tree can say
    shutil.copy(project.root / "specs" / "copy-0.yaml", project.root / "specs" / "copy-new.yaml")
    project.edit("specs/copy-new.yaml", "name: copy-0", "name: copy-new")
    report = reviewed(base)
    assert not report.whole and report.rendered == 2
    assert {(m.model, m.status) for m in report.models} == {("copy-new", "added")}
    paths = [change.path for change in report.files]
    assert "staging/kustomization.yaml" in paths and "production/kustomization.yaml" in paths
    assert files_of(report) == expected_files(cli, base, None, tmp_path / "full")


def test_without_a_tree_that_lists_them_both_sides_are_rendered_whole(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    base = project.commit("start, nothing generated")
    (project.root / "specs" / "copy-5.yaml").unlink()
    report = reviewed(base)
    assert report.whole
    assert {(m.model, m.status) for m in report.models} == {("copy-5", "removed")}
    assert files_of(report) == expected_files(cli, base, None, tmp_path / "full")


def test_a_stale_committed_tree_is_not_trusted(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    assert cli("compile", "specs").code == 0
    project.edit("specs/copy-1.yaml", "{min: 1, max: 2}", "{min: 2, max: 2}")
    base = project.commit("copy-1 edited, generated/ not compiled again")
    shutil.rmtree(project.root / "generated")
    (project.root / "specs" / "copy-2.yaml").unlink()
    report = reviewed(base)
    assert report.whole  # copy-1's recorded inputs are not its inputs at the base
    assert files_of(report) == expected_files(cli, base, None, tmp_path / "full")


def test_a_changed_project_file_compares_every_model(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    base = project.commit("start")
    project.edit("specs/modelops.yaml", "stamp: false", "stamp: true")
    report = reviewed(base)
    assert report.whole and not report.models and not report.files


def test_between_two_refs_and_a_broken_base(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    start = project.commit("start")
    project.edit("specs/copy-4.yaml", "task: classification", "task: clasification")
    broken = project.commit("typo")
    project.edit("specs/copy-4.yaml", "task: clasification", "task: classification")
    project.edit("specs/copy-0.yaml", "{min: 1, max: 2}", "{min: 1, max: 4}")
    fixed = project.commit("fixed, and copy-0 scaled")
    with pytest.raises(api.SideFailed) as failed:
        reviewed(broken, fixed)
    assert any(d.file == f"{broken}:specs/copy-4.yaml" and d.is_error for d in failed.value.diagnostics)
    result = cli("diff", "specs", "--base", broken, "--head", fixed)
    assert result.code == 2 and f"the base ({broken}) side does not compile" in result.err
    assert f"{broken}:specs/copy-4.yaml" in result.err
    report = reviewed(start, fixed)
    assert not report.whole and [m.details for m in report.models] == [["replicas 1..2 -> 1..4"]]
    assert files_of(report) == expected_files(cli, start, fixed, tmp_path / "full")


def test_an_unreadable_record_in_the_working_tree_is_left_to_the_whole_path(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    start = project.commit("start")
    project.edit("specs/copy-0.yaml", "{min: 1, max: 2}", "{min: 1, max: 4}")
    (project.root / "evaluations" / "credit-default" / "9.9.9.json").symlink_to("nowhere.json")
    report = reviewed(start)  # the check skips such a record, and so does the review
    assert [m.details for m in report.models] == [["replicas 1..2 -> 1..4"]]
    assert files_of(report) == expected_files(cli, start, None, tmp_path / "full")


def test_two_refs_are_compared_whatever_the_working_tree_holds(project: Project) -> None:
    team = project.root / "specs" / "team"
    team.mkdir()
    text = (project.root / "specs" / "copy-1.yaml").read_text()
    (team / "c.yaml").write_text(text.replace("name: copy-1", "name: team-c", 1))
    (project.root / "specs" / "copy-1.yaml").unlink()
    added = project.commit("team")
    project.edit("specs/team/c.yaml", "{min: 1, max: 2}", "{min: 1, max: 3}")
    scaled = project.commit("scaled")
    shutil.rmtree(team)  # not in the working tree any more, nor in a later commit
    project.commit("gone")
    report = api.review(api.Options(paths=[Path("specs/team")]), added, scaled)
    assert [(m.model, m.details) for m in report.models] == [("team-c", ["replicas 1..2 -> 1..3"])]


def test_specs_beside_the_specs_directory_are_read_at_a_ref(
    cli: Callable[..., Result], project: Project, tmp_path: Path
) -> None:
    teams = project.root / "teams"
    teams.mkdir()
    (project.root / "specs" / "copy-2.yaml").rename(teams / "copy-2.yaml")
    start = project.commit("copy-2 kept by its team")
    at = cli("compile", "specs", "teams", "--ref", start, "--no-stamp", "--out", tmp_path / "at")
    assert at.code == 0, at.err
    assert "staging/ml-staging/copy-2/deployment.yaml" in read_tree(tmp_path / "at")
    project.edit("teams/copy-2.yaml", "{min: 1, max: 2}", "{min: 1, max: 5}")
    project.edit("specs/modelops.yaml", "kind: Project\n", "kind: Project\n# reviewed\n")  # the whole path
    report = api.review(api.Options(paths=[Path("specs"), Path("teams")]), start)
    assert report.whole and [(m.model, m.details) for m in report.models] == [
        ("copy-2", ["replicas 1..2 -> 1..5"])
    ]


def test_blobs_are_read_as_git_stores_them(project: Project, tmp_path: Path) -> None:
    odd = project.root / "specs" / "odd name é.yaml"
    odd.write_bytes(b"\x00binary\nand text\n")
    (project.root / "specs" / "link.yaml").symlink_to("odd name é.yaml")
    (project.root / "generated").mkdir()
    (project.root / "generated" / MANIFEST).write_text("{}\n")
    commit = project.commit("odd files")
    found = commit_at(project.root / "specs", "HEAD")
    assert found == (project.root.resolve(), commit)
    assert commit_at(project.root, "no-such-ref") is None
    blobs = blobs_under(project.root, commit, ["specs", "no-such-dir"])
    on_disk = {
        p.relative_to(project.root).as_posix(): p.read_bytes()
        for p in (project.root / "specs").rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    assert {path: content for path, (mode, content) in blobs.items() if mode in REGULAR_MODES} == on_disk
    assert blobs["specs/link.yaml"] == ("120000", b"odd name \xc3\xa9.yaml")
    with snapshot(project.root / "specs", commit, extra=(f"generated/{MANIFEST}",)) as snap:
        assert (snap.root / "specs" / "odd name é.yaml").read_bytes() == odd.read_bytes()
        assert (snap.root / "generated" / MANIFEST).read_text() == "{}\n"
        assert not (snap.root / "generated" / "staging").exists()


def test_a_link_among_the_specs_at_the_base_is_judged_by_the_whole_path(project: Project) -> None:
    (project.root / "library").mkdir()
    shutil.move(project.root / "specs" / "copy-0.yaml", project.root / "library" / "copy-0.yaml")
    (project.root / "specs" / "copy-0.yaml").symlink_to("../library/copy-0.yaml")
    base = project.commit("a spec linked from elsewhere in the project")
    (project.root / "specs" / "copy-0.yaml").unlink()
    shutil.copy(project.root / "library" / "copy-0.yaml", project.root / "specs" / "copy-0.yaml")
    with pytest.raises(api.SideFailed) as failed:  # as before the quick path
        reviewed(base)
    errors = [d.file for d in failed.value.diagnostics if d.is_error]  # Git holds the link's text
    assert errors == [f"{base}:specs/copy-0.yaml"]

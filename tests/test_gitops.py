"""Git-aware compile, diff --base, history and the breaking-change check, on throw-away repos."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import git
import pytest
import yaml

from compiler.bundle.writer import read_tree
from tests.conftest import REPO, Result
from tests.git_workspace import GitWorkspace

ALICE = git.Actor("Alice Example", "alice@example.com")
BOB = git.Actor("Bob Example", "bob@example.com")


class History(GitWorkspace):
    """A repository whose commits tell a model's story; tags name each step."""

    def commit(self, tag: str, message: str, author: git.Actor = ALICE) -> str:
        sha = self.save(message, author)
        self.repo.create_tag(tag)
        return sha


# The story's steps that edit one spec: (tag, commit message, spec, text, replacement).
EDITS = [
    ("replicas", "More production replicas", "credit-default.yaml", "{min: 3, max: 20}", "{min: 4, max: 20}"),
    (
        "labels",
        "Route loan alerts",
        "loan-risk-score.yaml",
        "    alerts:\n",
        "    alerts:\n      labels: {pager: loans}\n",
    ),
    ("port", "Serve on 8081", "credit-default.yaml", "    port: 8080\n", "    port: 8081\n"),
    (
        "nodrift",
        "Stop drift alerts\n\nModelops-Allow-Breaking: yes",
        "credit-default.yaml",
        "    drift:\n      psi: {warning: 0.1, critical: 0.25}\n",
        "",
    ),
    ("broken", "Typo", "credit-default.yaml", "task: classification", "task: clasification"),
    ("fixed", "Fix typo", "credit-default.yaml", "task: clasification", "task: classification"),
]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("story")
    for name in ("specs", "models", "data", "evaluations"):
        shutil.copytree(REPO / name, root / name)
    (root / "specs" / "loan-risk-score.yaml").unlink()
    h = History(root)
    h.commit("added", "Add credit-default")
    shutil.copy(REPO / "specs" / "loan-risk-score.yaml", root / "specs")
    h.commit("second", "Add loan-risk-score", BOB)
    h.edit("specs/credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    h.commit("unevaluated", "credit-default 1.5.0, not evaluated yet")
    record = root / "evaluations" / "credit-default"
    (record / "1.5.0.json").write_text((record / "1.4.0.json").read_text().replace('"1.4.0"', '"1.5.0"'))
    h.commit("bumped", "Evaluate credit-default 1.5.0")
    for tag, message, path, old, new in EDITS:
        h.edit(f"specs/{path}", old, new)
        h.commit(tag, message)
    (root / "specs" / "loan-risk-score.yaml").unlink()
    h.commit("removed", "Retire loan-risk-score")
    return h


@pytest.fixture
def in_story(story: History, monkeypatch: pytest.MonkeyPatch) -> History:
    monkeypatch.chdir(story.root)
    return story


def _dirs(tree: dict[str, bytes]) -> set[str]:
    return {"/".join(p.split("/")[:3]) for p in tree if p.endswith("/deployment.yaml")}


def test_compile_at_each_ref(cli: Callable[..., Result], in_story: History, tmp_path: Path) -> None:
    status_before = in_story.repo.git.status("--porcelain")
    assert cli("compile", "--ref", "added", "--out", tmp_path / "a").code == 0
    assert _dirs(read_tree(tmp_path / "a")) == {
        "staging/ml-staging/credit-default",
        "production/ml-production/credit-default",
    }
    assert cli("compile", "--ref", "second", "--out", tmp_path / "b").code == 0
    assert len(_dirs(read_tree(tmp_path / "b"))) == 4
    deployment = yaml.safe_load(
        (tmp_path / "b/production/ml-production/credit-default/deployment.yaml").read_text()
    )
    assert (
        deployment["metadata"]["annotations"]["modelops.dev/commit"] == in_story.repo.commit("second").hexsha
    )
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.4.0"
    assert cli("compile", "--ref", "bumped", "--out", tmp_path / "c", "--no-stamp").code == 0
    deployment = yaml.safe_load(
        (tmp_path / "c/production/ml-production/credit-default/deployment.yaml").read_text()
    )
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.5.0"
    assert "modelops.dev/commit" not in deployment["metadata"]["annotations"]
    # the same as compiling a checkout of that commit, and the working tree was never touched
    assert in_story.repo.git.status("--porcelain") == status_before
    assert (in_story.root / "specs/credit-default.yaml").read_text().count("1.5.0") == 1


def test_compile_at_a_broken_ref_names_the_ref(
    cli: Callable[..., Result], in_story: History, tmp_path: Path
) -> None:
    result = cli("compile", "--ref", "broken", "--out", tmp_path / "x")
    assert result.code == 1
    assert "broken:specs/credit-default.yaml:12:11: error: spec.model.task" in result.out
    assert not (tmp_path / "x").exists()


def test_ref_errors(
    cli: Callable[..., Result], in_story: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("compile", "--ref", "no-such-tag", "--out", tmp_path / "x")
    assert result.code == 2 and "unknown Git ref 'no-such-tag'" in result.err
    outside = tmp_path / "plain"
    shutil.copytree(in_story.root / "specs", outside / "specs")
    monkeypatch.chdir(outside)
    result = cli("compile", "--ref", "main")
    assert result.code == 2 and "is not inside a Git repository" in result.err


def diff(cli: Callable[..., Result], *args: str) -> Result:
    return cli("diff", "specs", *args)


def test_diff_summarises_a_version_bump(cli: Callable[..., Result], in_story: History) -> None:
    result = diff(cli, "--base", "second", "--head", "bumped")
    assert result.code == 1
    assert "credit-default/production: changed" in result.out
    assert "  version 1.4.0 -> 1.5.0" in result.out
    assert "loan-risk-score" not in result.out
    assert "breaking" not in result.out


def test_a_version_without_its_evaluation_loses_drift_monitoring(
    cli: Callable[..., Result], in_story: History
) -> None:
    """Drift rules hold the evaluated baseline: without a record for the new version they go,
    and the review says so as a breaking change rather than leaving alerts that cannot fire."""
    result = diff(cli, "--base", "second", "--head", "unevaluated")
    assert "  measured accuracy 0.8333 -> none" in result.out
    assert "alert removed: ModelFeatureDriftCritical" in result.out
    assert "breaking" in result.out


def test_diff_without_changes(cli: Callable[..., Result], in_story: History) -> None:
    result = diff(cli, "--base", "broken~1", "--head", "fixed")
    assert result.code == 0
    assert "no change" in result.out


def test_diff_replicas_models_added_and_removed(cli: Callable[..., Result], in_story: History) -> None:
    result = diff(cli, "--base", "bumped", "--head", "replicas")
    assert "replicas 3..20 -> 4..20" in result.out
    result = diff(cli, "--base", "added", "--head", "second")
    assert "loan-risk-score/production: added" in result.out and result.code == 1
    result = diff(cli, "--base", "fixed", "--head", "removed")
    assert "loan-risk-score/staging: removed" in result.out
    assert "model removed" in result.out


def test_diff_against_the_working_tree(cli: Callable[..., Result], in_story: History) -> None:
    assert diff(cli, "--base", "HEAD").code == 0
    in_story.edit("specs/credit-default.yaml", "{min: 4, max: 20}", "{min: 5, max: 20}")
    try:
        result = diff(cli, "--base", "HEAD")
        assert result.code == 1 and "replicas 4..20 -> 5..20" in result.out
    finally:
        in_story.repo.git.checkout("--", "specs/credit-default.yaml")


def test_breaking_changes_fail_only_when_asked_and_not_accepted(
    cli: Callable[..., Result], in_story: History
) -> None:
    result = diff(cli, "--base", "labels", "--head", "port", "--fail-on-breaking")
    assert result.code == 4
    assert "Service ports changed" in result.out
    assert "label the PR modelops:breaking" in result.err
    assert diff(cli, "--base", "labels", "--head", "port").code == 1  # reported, not fatal
    assert diff(cli, "--base", "labels", "--head", "port", "--fail-on-breaking", "--allow-breaking").code == 1
    # removing the drift section removes alerts: breaking, but the commit carries the trailer
    result = diff(cli, "--base", "port", "--head", "nodrift", "--fail-on-breaking")
    assert "alert ModelFeatureDriftCritical removed or renamed" in result.out
    assert "breaking changes (acknowledged)" in result.out
    assert result.code == 1


def test_diff_formats(cli: Callable[..., Result], in_story: History) -> None:
    payload = json.loads(diff(cli, "--base", "replicas", "--head", "labels", "--format", "json").out)
    assert payload["changed"] is True
    (model,) = [m for m in payload["models"] if m["environment"] == "production"]
    assert model["model"] == "loan-risk-score"
    assert any(
        f["path"].endswith("loan-risk-score/prometheusrule.yaml") and f["fields"] for f in payload["files"]
    )
    markdown = diff(cli, "--base", "replicas", "--head", "labels", "--format", "markdown").out
    assert markdown.startswith("<!-- modelops-diff -->")
    assert "| `loan-risk-score` | production | changed |" in markdown
    assert (
        "<details><summary><code>production/ml-production/loan-risk-score/rules.yaml</code> (changed)</summary>"
        in markdown
    )
    assert "+        pager: loans" in markdown


def test_head_needs_a_base(cli: Callable[..., Result], in_story: History) -> None:
    result = cli("diff", "specs", "--head", "fixed")
    assert result.code == 2 and "--head needs --base REF" in result.err
    result = cli("diff", "specs", "--format", "markdown")
    assert result.code == 2 and "--format markdown is for diff --base" in result.err


def test_history(cli: Callable[..., Result], in_story: History) -> None:
    result = cli("history", "credit-default")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:5] == ["VERSION", "DATE", "COMMIT", "AUTHOR", "GATES"]
    assert lines[1].startswith("1.5.0") and "credit-default 1.5.0" in lines[1]
    assert lines[2].startswith("1.4.0") and "Alice Example" in lines[2]
    assert "accuracy 0.8333 pass" in lines[2]
    payload = json.loads(cli("history", "credit-default", "--format", "json").out)
    assert [v["version"] for v in payload] == ["1.4.0", "1.5.0"]
    assert cli("history", "no-such-model").code == 2


def test_incremental_compile_equals_a_full_compile(cli: Callable[..., Result], project: Path) -> None:
    out = project / "generated"
    assert cli("compile", project / "specs", "--out", out).code == 0
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("{min: 3, max: 20}", "{min: 5, max: 20}"))
    result = cli("compile", project / "specs", "--out", out)
    assert "rendered 1, reused 3 unchanged" in result.out
    assert cli("compile", project / "specs", "--out", project / "full", "--full").code == 0
    assert read_tree(out) == read_tree(project / "full")
    # a change to project defaults reaches every model
    defaults = project / "specs" / "modelops.yaml"
    defaults.write_text(defaults.read_text().replace("modelops-runtime:0.1.0", "modelops-runtime:0.2.0"))
    assert "rendered 4, reused 0" in cli("compile", project / "specs", "--out", out).out
    assert cli("compile", project / "specs", "--out", project / "full", "--full").code == 0
    assert read_tree(out) == read_tree(project / "full")


def test_a_tampered_manifest_cannot_smuggle_stale_files(cli: Callable[..., Result], project: Path) -> None:
    out = project / "generated"
    assert cli("compile", project / "specs", "--out", out).code == 0
    service = out / "production/ml-production/credit-default/service.yaml"
    service.write_text(service.read_text().replace("8080", "1234"))
    # the input hashes still match, so the file is reused, but --check and a full compile see it
    assert cli("compile", project / "specs", "--out", out, "--check").code == 1
    assert cli("compile", project / "specs", "--out", out, "--full").code == 0
    assert "1234" not in service.read_text()


def test_history_outside_git_is_a_usage_error(
    cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    result = cli("history", "credit-default")
    assert result.code == 2 and "is not inside a Git repository" in result.err


def test_history_follows_a_renamed_spec(
    cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = History(project)
    h.commit("first", "Add models")
    (project / "specs" / "risk").mkdir()
    h.repo.git.mv("specs/credit-default.yaml", "specs/risk/credit.yaml")
    h.commit("moved", "Group risk models", BOB)
    h.edit("specs/risk/credit.yaml", "version: 1.4.0", "version: 1.5.0")
    h.commit("bumped", "credit-default 1.5.0")
    monkeypatch.chdir(project)
    payload = json.loads(cli("history", "credit-default", "--format", "json").out)
    assert [(v["version"], v["summary"]) for v in payload] == [
        ("1.4.0", "Add models"),
        ("1.5.0", "credit-default 1.5.0"),
    ]
    assert payload[0]["gates"]["accuracy"].endswith("pass")  # the record committed with 1.4.0


BOMB = "  bomb:\n    a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"    {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("evaluations/credit-default/1.4.0.json", '"accuracy": 0.833333', '"accuracy": "high"'),
        ("evaluations/credit-default/1.4.0.json", '"metrics": {', '"metrics": [1], "was": {'),
        ("specs/credit-default.yaml", "  evaluation:\n", "  evaluation: [1]\n  was:\n"),
        ("specs/credit-default.yaml", "    gates:\n", "    gates: [1]\n    was:\n"),
        ("specs/modelops.yaml", "environments:\n", "environments: 5\nwas:\n"),
        ("specs/credit-default.yaml", "spec:\n", "spec:\n" + BOMB),  # refused by validate too
    ],
)
def test_history_reads_any_commit_a_pull_request_made(
    cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch, path: str, old: str, new: str
) -> None:
    h = History(project)
    h.commit("first", "Add models")
    h.edit(path, old, new)
    h.commit("odd", "An odd commit")
    h.edit(path, new, old)  # put right in the next commit
    h.edit("specs/credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    h.commit("bumped", "credit-default 1.5.0")
    monkeypatch.chdir(project)
    result = cli("history", "credit-default", "--format", "json")
    assert result.code == 0, result.err
    assert [v["version"] for v in json.loads(result.out)][-1] == "1.5.0"


def test_history_in_a_repository_of_the_specs_alone_is_a_usage_error(
    cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    History(project / "specs").commit("first", "Add models")
    monkeypatch.chdir(project)
    result = cli("history", "credit-default")
    assert result.code == 2 and "is not inside the Git repository" in result.err, result.err

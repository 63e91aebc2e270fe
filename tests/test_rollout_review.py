"""`diff --base` and `history` on progressive delivery: a candidate, its strategy, its promotion
and its abort read as words, on a throw-away Git repository whose commits tell the story."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from compiler.bundle.writer import read_tree
from tests.conftest import REPO, Result
from tests.git_workspace import GitWorkspace

SPEC = "specs/credit-default.yaml"
STABLE_PIN = "uri: models/credit-default/1.4.0/model.skops\n    sha256: " + (
    "eafaa753a8507266f0ee1eaf8e3341823da8aa1b80f4c47155041f582567159f"
)
PINS = {"1.5.0": "ab" * 32, "1.6.0": "cd" * 32}  # the candidates' artifacts (never fetched by diff)
MODEL_DIR = "production/ml-production/credit-default/"
CANARY = """\
  rollout:
    strategy: canary
    canary:
      steps: [{weight: 10, pause: 15m}, {weight: 50, pause: 30m}]
"""


def candidate(version: str) -> str:
    return f"  candidate:\n    version: {version}\n    {_pin(version)}\n"


def _pin(version: str) -> str:
    return f"uri: models/credit-default/{version}/model.skops\n    sha256: {PINS[version]}"


class Story(GitWorkspace):
    """A repository whose tagged commits take credit-default through two candidates."""

    def step(self, tag: str, *edits: tuple[str, str]) -> None:
        for old, new in edits:
            self.edit(SPEC, old, new)
        self.save(tag)
        self.repo.create_tag(tag)


def _project(root: Path) -> None:
    for name in ("specs", "models", "data", "evaluations"):
        shutil.copytree(REPO / name, root / name)
    _records(root)


def _records(root: Path) -> None:
    records = root / "evaluations" / "credit-default"
    stable = (records / "1.4.0.json").read_text()
    for version, sha in PINS.items():  # the candidates were evaluated as well as the stable
        record = json.loads(stable)
        record.update(version=version, artifact_sha256=sha)
        (records / f"{version}.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    root = tmp_path_factory.mktemp("rollout-story")
    _project(root)
    s = Story(root)
    s.step("start")
    s.step("canary", ("  evaluation:\n", CANARY + "  evaluation:\n"))
    s.step("steps", ("{weight: 50, pause: 30m}", "{weight: 50, pause: 1h}"))
    s.step("candidate", ("  rollout:\n", candidate("1.5.0") + "  rollout:\n"))
    s.step(
        "promoted",
        (candidate("1.5.0"), ""),
        ("version: 1.4.0", "version: 1.5.0"),
        (STABLE_PIN, _pin("1.5.0")),
    )
    s.step("candidate2", ("  rollout:\n", candidate("1.6.0") + "  rollout:\n"))
    s.step("aborted", (candidate("1.6.0"), ""))
    s.step(
        "shadow",
        ("  rollout:\n    strategy: canary\n", candidate("1.6.0") + "  rollout:\n    strategy: shadow\n"),
    )
    s.step("rolling", ("strategy: shadow", "strategy: rolling"))
    return s


@pytest.fixture
def in_story(story: Story, monkeypatch: pytest.MonkeyPatch) -> Story:
    monkeypatch.chdir(story.root)
    return story


def details(cli: Callable[..., Result], base: str, head: str, environment: str = "production") -> list[str]:
    """The words `diff --base` says about credit-default in one environment."""
    result = cli("diff", "specs", "--base", base, "--head", head, "--format", "json")
    assert result.code == 1, result.err
    (model,) = [
        m
        for m in json.loads(result.out)["models"]
        if m["model"] == "credit-default" and m["environment"] == environment
    ]
    found: list[str] = model["details"]
    return found


def analysis_metrics(cli: Callable[..., Result], ref: str, out: Path) -> list[str]:
    """The metrics of the AnalysisTemplate compile writes at `ref`."""
    assert cli("compile", "specs", "--ref", ref, "--no-stamp", "--out", out).code == 0
    template = yaml.safe_load(read_tree(out)[MODEL_DIR + "analysistemplate.yaml"])
    return [metric["name"] for metric in template["spec"]["metrics"]]


def test_a_candidate_under_canary_reads_as_one_line(
    cli: Callable[..., Result], in_story: Story, tmp_path: Path
) -> None:
    words = details(cli, "steps", "candidate")
    analysis = ", ".join(analysis_metrics(cli, "candidate", tmp_path / "out"))
    assert analysis.startswith("availability, latency, drift")  # from the SLOs and the drift baseline
    assert words[0] == f"canary 1.4.0 → 1.5.0, 10% → 50% → 100%, analysis on {analysis}"
    assert not any(w.startswith(("version ", "warning")) for w in words), words  # the line says it
    text = cli("diff", "specs", "--base", "steps", "--head", "candidate").out
    assert "credit-default/staging: changed\n  canary 1.4.0 → 1.5.0, 10% → 50% → 100%" in text
    markdown = cli("diff", "specs", "--base", "steps", "--head", "candidate", "--format", "markdown").out
    assert "| `credit-default` | production | changed | canary 1.4.0 → 1.5.0" in markdown


def test_switching_to_canary_says_how_the_next_version_goes(
    cli: Callable[..., Result], in_story: Story
) -> None:
    words = details(cli, "start", "canary")
    assert words[0].startswith(
        "strategy rolling → canary (the next version goes 10% → 50% → 100%, analysis on"
    )
    assert not any(w.startswith("warning") for w in words), "the version does not move: nothing is skipped"
    assert details(cli, "canary", "steps") == [
        "canary steps 10% for 15m, 50% for 30m → 10% for 15m, 50% for 1h"
    ]


def test_a_new_rollout_with_its_candidate_warns_that_the_analysis_is_skipped(
    cli: Callable[..., Result], in_story: Story
) -> None:
    for environment in ("staging", "production"):
        words = details(cli, "start", "candidate", environment)
        assert words[0] == "strategy rolling → canary"
        assert words[1].startswith("canary 1.4.0 → 1.5.0, 10% → 50% → 100%")
        assert words[2].startswith("warning: the Rollout is new in this change")
        assert "1.5.0 gets all traffic and the analysis is skipped" in words[2]
        assert words[2].endswith("Switch to canary in one change and add the candidate in the next")


def test_promotion_and_abort_are_ordinary_edits_that_read_as_such(
    cli: Callable[..., Result], in_story: Story
) -> None:
    assert details(cli, "candidate", "promoted")[0] == "promoted 1.5.0 (was the candidate)"
    result = cli("diff", "specs", "--base", "candidate", "--head", "promoted", "--format", "json")
    changed = {f["path"] for f in json.loads(result.out)["files"]}
    assert MODEL_DIR + "rollout.yaml" not in changed, "promoting changes no byte of the workload"
    assert details(cli, "promoted", "candidate2")[0].startswith("canary 1.5.0 → 1.6.0, 10% → 50% → 100%")
    aborted = details(cli, "candidate2", "aborted")
    assert aborted[0] == "candidate 1.6.0 removed: back to 1.5.0"
    assert not any(w.startswith("version ") for w in aborted), aborted


def test_shadow_and_rolling_candidates(cli: Callable[..., Result], in_story: Story) -> None:
    words = details(cli, "aborted", "shadow")
    assert words[:2] == ["strategy canary → shadow", "shadow 1.6.0 beside 1.5.0 (answers from 1.5.0)"]
    assert not any(w.startswith("version ") for w in words), "the stable still answers"
    assert details(cli, "shadow", "rolling")[:2] == [
        "strategy shadow → rolling",
        "rolling update 1.5.0 → 1.6.0 (no analysis)",
    ]


def test_history_shows_candidates(cli: Callable[..., Result], in_story: Story) -> None:
    result = cli("history", "credit-default", "--format", "json")
    assert result.code == 0, result.err
    rows = [(v["version"], v["role"], v["event"], v["strategy"]) for v in json.loads(result.out)]
    assert rows == [
        ("1.4.0", "model", "version", "rolling"),
        ("1.5.0", "candidate", "added", "canary"),
        ("1.5.0", "model", "promoted", "canary"),
        ("1.6.0", "candidate", "added", "canary"),
        ("1.6.0", "candidate", "removed", "canary"),
        ("1.6.0", "candidate", "added", "shadow"),
        ("1.6.0", "candidate", "changed", "rolling"),
    ]
    lines = cli("history", "credit-default").out.splitlines()
    columns = [re.split(r"\s{2,}", line) for line in lines]  # newest first
    assert columns[0][:3] == ["VERSION", "ROLLOUT", "DATE"]
    assert [row[:2] for row in columns[1:]] == [
        ["1.6.0", "candidate, now rolling"],
        ["1.6.0", "candidate, shadow"],
        ["1.6.0", "candidate removed"],
        ["1.6.0", "candidate, canary"],
        ["1.5.0", "promoted"],
        ["1.5.0", "candidate, canary"],
        ["1.4.0", "rolling"],
    ]
    assert "accuracy 0.8333 pass" in lines[5], "the model's evaluation record"
    assert "accuracy 0.8333 pass" in lines[6], "the candidate's own evaluation record"


def test_history_names_the_strategy_of_each_environment(
    cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _records(project)
    s = Story(project)
    s.step("start")
    s.step(
        "candidate",
        ("  evaluation:\n", candidate("1.5.0") + CANARY + "  evaluation:\n"),
        ("    staging:\n", "    staging:\n      rollout: {strategy: rolling}\n"),
    )
    monkeypatch.chdir(project)
    rows = json.loads(cli("history", "credit-default", "--format", "json").out)
    assert rows[-1]["role"] == "candidate"
    assert rows[-1]["strategy"] == "rolling in staging, canary in production"

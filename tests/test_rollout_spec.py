"""Progressive delivery in the spec: `candidate` and `rollout`, their validation at file:line,
environment overlays, the project's `defaults.rollout`, and what the resolver makes of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.pipeline import check
from compiler.resolve.resolved import ResolvedModel
from tests.conftest import Result, spec_text
from tests.spec_edits import located, validate

PIN = "a" * 64
OTHER_PIN = "b" * 64
CANDIDATE = f"  candidate:\n    version: 1.5.0\n    uri: models/demo-model-1.5.0.skops\n    sha256: {PIN}\n"
CANARY = (
    "  rollout:\n"
    "    strategy: canary\n"
    "    canary:\n"
    "      steps:\n"
    "        - {weight: 10, pause: 15m}\n"
    "        - {weight: 50, pause: 30m}\n"
)


def demo(*sections: str, overlays: str = "", base: str | None = None) -> str:
    """The demo spec with sections added under `spec` (before `evaluation`) and overlays."""
    text = (base or spec_text()).replace("  evaluation:\n", "".join(sections) + "  evaluation:\n", 1)
    return text + (f"  environments:\n{overlays}" if overlays else "")


def regression(text: str) -> str:
    return text.replace("task: classification", "task: regression").replace(
        "accuracy: {min: 0.8}", "r2: {min: 0.5}"
    )


def resolved(project: Path, text: str) -> dict[str, ResolvedModel]:
    """The demo model as resolved per environment (the library API's check)."""
    path = project / "specs" / "demo.yaml"
    path.write_text(text)
    checked = check([path])
    assert not [d for d in checked.diagnostics if d.is_error], checked.diagnostics
    return {m.environment: m for m in checked.models if m.name == "demo-model"}


def test_candidate_with_canary_steps_is_valid(cli: Callable[..., Result], project: Path) -> None:
    result = validate(cli, project, demo(CANDIDATE, CANARY))
    assert result.code == 0, result.out
    assert "1 spec file valid" in result.out


def test_resolver_serves_the_candidate_beside_the_stable(project: Path) -> None:
    production = resolved(project, demo(CANDIDATE, CANARY))["production"]
    assert production.model.version.text == "1.5.0"
    assert production.model.sha256 == PIN
    assert production.stable is not None and production.stable.version.text == "1.0.0"
    assert production.model.features == production.stable.features
    assert production.rollout.strategy == "canary"
    assert production.rollout.canary is not None
    assert [(s.weight, s.pause.text) for s in production.rollout.canary.steps] == [(10, "15m"), (50, "30m")]
    assert production.candidate is not None and production.candidate.version.text == "1.5.0"
    assert production.shadow is None


def test_canary_in_production_straight_rollout_in_staging(cli: Callable[..., Result], project: Path) -> None:
    """The base spec says canary; staging's overlay rolls the candidate out at once."""
    text = demo(CANDIDATE, CANARY, overlays="    staging:\n      rollout: {strategy: rolling}\n")
    assert validate(cli, project, text).code == 0
    models = resolved(project, text)
    assert models["production"].rollout.strategy == "canary"
    staging = models["staging"]
    assert staging.rollout.strategy == "rolling"
    assert staging.model.version.text == "1.5.0"  # a candidate under rolling is a straight rollout
    assert staging.stable is not None and staging.stable.version.text == "1.0.0"


def test_overlay_sets_canary_and_candidate_for_production_only(project: Path) -> None:
    overlays = (
        "    production:\n"
        f"      candidate: {{version: 1.5.0, uri: models/demo-model-1.5.0.skops, sha256: {PIN}}}\n"
        "      rollout:\n"
        "        strategy: canary\n"
        "        canary: {steps: [{weight: 25, pause: 10m}]}\n"
    )
    models = resolved(project, demo(overlays=overlays))
    assert models["staging"].candidate is None and models["staging"].model.version.text == "1.0.0"
    assert models["staging"].rollout.strategy == "rolling"
    assert models["production"].model.version.text == "1.5.0"
    assert models["production"].rollout.strategy == "canary"


def test_shadow_keeps_the_model_and_shadows_the_candidate(project: Path) -> None:
    shadow = "  rollout:\n    strategy: shadow\n    shadow: {maxDisagreement: 0.1}\n"
    production = resolved(project, demo(CANDIDATE, shadow))["production"]
    assert production.model.version.text == "1.0.0"
    assert production.shadow is not None and production.shadow.version.text == "1.5.0"
    assert production.shadow.sha256 == PIN
    assert production.stable is None
    assert production.rollout.shadow.maxDisagreement == pytest.approx(0.1)


def test_project_defaults_rollout_is_merged_under_every_spec(
    cli: Callable[..., Result], project: Path
) -> None:
    project_file = project / "specs" / "modelops.yaml"
    project_file.write_text(
        project_file.read_text().replace(
            "  grafana:\n",
            "  rollout:\n"
            "    canary:\n"
            "      steps: [{weight: 20, pause: 5m}, {weight: 60, pause: 10m}]\n"
            "      analysis: {interval: 30s}\n"
            "  grafana:\n",
        )
    )
    only_strategy = demo(CANDIDATE, "  rollout: {strategy: canary}\n")
    assert validate(cli, project, only_strategy).code == 0
    canary = resolved(project, only_strategy)["production"].rollout.canary
    assert canary is not None
    assert [s.weight for s in canary.steps] == [20, 60]
    assert canary.analysis.interval.text == "30s"
    own_steps = demo(
        CANDIDATE,
        "  rollout:\n    strategy: canary\n"
        "    canary: {steps: [{weight: 5, pause: 1m}], analysis: {failureLimit: 2}}\n",
    )
    canary = resolved(project, own_steps)["production"].rollout.canary
    assert canary is not None
    assert [s.weight for s in canary.steps] == [5]  # a list replaces the defaults' list
    assert canary.analysis.interval.text == "30s"  # from the defaults
    assert canary.analysis.failureLimit == 2  # from the spec, merged over them


def test_project_defaults_rollout_errors_point_at_the_project_file(
    cli: Callable[..., Result], project: Path
) -> None:
    project_file = project / "specs" / "modelops.yaml"
    text = project_file.read_text().replace(
        "  grafana:\n", "  rollout:\n    canary:\n      steps: [{weight: 20, pause: 15x}]\n  grafana:\n"
    )
    project_file.write_text(text)
    result = validate(cli, project, demo(CANDIDATE, "  rollout: {strategy: canary}\n"))
    assert result.code == 1
    line, column = located(text, "15x")
    assert (
        f"specs/modelops.yaml:{line}:{column}: error: spec.rollout.canary.steps[0].pause: expected a duration"
        in result.out
    ), result.out


def test_project_defaults_rollout_typo(cli: Callable[..., Result], project: Path) -> None:
    project_file = project / "specs" / "modelops.yaml"
    text = project_file.read_text().replace("  grafana:\n", "  rollout: {stratgy: canary}\n  grafana:\n")
    project_file.write_text(text)
    result = validate(cli, project, demo())
    assert result.code == 1
    line, column = located(text, "stratgy")
    assert f"specs/modelops.yaml:{line}:{column}: error: unknown field 'stratgy'" in result.out, result.out
    assert "did you mean 'strategy'?" in result.out


# name: (spec text, the text the error points at and which occurrence, the message)
def _rules() -> dict[str, tuple[str, str, int, str]]:
    same_version = CANDIDATE.replace("version: 1.5.0", "version: 1.0.0")
    pinned_model = spec_text().replace(
        "    uri: models/demo-model.skops\n", f"    uri: models/demo-model.skops\n    sha256: {PIN}\n"
    )
    steps = "  rollout:\n    strategy: canary\n    canary:\n      steps: [{weight: 30, pause: 5m}, {weight: %s, pause: 5m}]\n"
    shadow = "  rollout: {strategy: shadow}\n"
    return {
        "same-version": (
            demo(same_version),
            "1.0.0",
            1,
            "error: the candidate's version 1.0.0 is the model's own: a candidate is another version",
        ),
        "same-artifact": (
            demo(CANDIDATE, base=pinned_model),
            PIN,
            1,
            "error: the candidate pins the same artifact as spec.model.sha256",
        ),
        "candidate-unpinned": (
            demo(CANDIDATE.replace(f"    sha256: {PIN}\n", "")),
            "version: 1.5.0",
            0,
            "error: spec.candidate: missing required field 'sha256'",
        ),
        "candidate-typo": (
            demo(CANDIDATE.replace("    uri:", "    url:")),
            "url",
            0,
            "error: unknown field 'url' in spec.candidate; did you mean 'uri'?",
        ),
        "candidate-version": (
            demo(CANDIDATE.replace("1.5.0\n", "1.5\n")),
            "1.5\n",
            0,
            "error: spec.candidate.version:",
        ),
        "weights-fall": (
            demo(CANDIDATE, steps % 20),
            "20",
            0,
            "error: canary weights must increase step by step: 20% after 30%",
        ),
        "weights-repeat": (
            demo(CANDIDATE, steps % 30),
            "30",
            1,
            "error: canary weights must increase step by step: 30% after 30%",
        ),
        "pause-under-a-second": (
            demo(CANDIDATE, CANARY.replace("pause: 15m", "pause: 1500ms")),
            "1500ms",
            0,
            "error: 1500ms is not a whole number of seconds; Argo Rollouts counts in seconds",
        ),
        "weight-100": (
            demo(CANDIDATE, steps % 100),
            "100",
            0,
            "error: spec.rollout.canary.steps[1].weight: input should be less than or equal to 99",
        ),
        "pause": (
            demo(CANDIDATE, (steps % 40).replace("pause: 5m}]", "pause: 15x}]")),
            "15x",
            0,
            "error: spec.rollout.canary.steps[1].pause: expected a duration",
        ),
        "canary-without-steps": (
            demo(CANDIDATE, "  rollout:\n    strategy: canary\n"),
            "canary\n",
            0,
            "error: strategy canary needs rollout.canary with its steps",
        ),
        "canary-empty-steps": (
            demo(CANDIDATE, "  rollout:\n    strategy: canary\n    canary: {steps: []}\n"),
            "[]",
            0,
            "error: spec.rollout.canary.steps: list should have at least 1 item",
        ),
        "strategy-typo": (
            demo(CANDIDATE, "  rollout:\n    strategy: canery\n"),
            "canery",
            0,
            "error: spec.rollout.strategy: input should be 'rolling', 'canary' or 'shadow' (got 'canery'); "
            "did you mean 'canary'?",
        ),
        "rollout-typo": (
            demo(CANDIDATE, "  rollout:\n    strategy: canary\n    canaray: {steps: []}\n"),
            "canaray",
            0,
            "error: unknown field 'canaray' in spec.rollout; did you mean 'canary'?",
        ),
        "regression-shadow-tolerance": (
            regression(demo(CANDIDATE, shadow)),
            "shadow}",
            0,
            "error: strategy shadow of a regression model needs rollout.shadow.tolerance",
        ),
        "shadow-share": (
            demo(CANDIDATE, "  rollout:\n    strategy: shadow\n    shadow: {maxDisagreement: 5}\n"),
            "5}",
            0,
            "error: spec.rollout.shadow.maxDisagreement: input should be less than 1",
        ),
        "canary-on-kserve": (
            demo(CANARY).replace("  serving:\n", "  serving:\n    runtime: kserve\n"),
            "canary\n",
            0,
            "error: strategy canary needs serving.runtime: builtin",
        ),
        "shadow-on-kserve": (
            demo(CANDIDATE, shadow).replace("  serving:\n", "  serving:\n    runtime: kserve\n"),
            "shadow}",
            0,
            "error: strategy shadow needs serving.runtime: builtin",
        ),
        "overlay-canary-without-steps": (
            demo(CANDIDATE, overlays="    production:\n      rollout: {strategy: canary}\n"),
            "canary}",
            0,
            "error: strategy canary needs rollout.canary with its steps",
        ),
        "overlay-same-version": (
            demo(CANDIDATE, overlays="    staging:\n      candidate: {version: 1.0.0}\n"),
            "1.0.0}",
            0,
            "error: the candidate's version 1.0.0 is the model's own",
        ),
    }


RULES = _rules()


@pytest.mark.parametrize("case", sorted(RULES))
def test_rules_are_located_errors(cli: Callable[..., Result], project: Path, case: str) -> None:
    text, needle, occurrence, message = RULES[case]
    result = validate(cli, project, text)
    assert result.code == 1, result.out
    line, column = located(text, needle, occurrence)
    assert f"specs/demo.yaml:{line}:{column}: {message}" in result.out, result.out


def test_regression_shadow_with_tolerance_is_valid(cli: Callable[..., Result], project: Path) -> None:
    text = regression(demo(CANDIDATE, "  rollout:\n    strategy: shadow\n    shadow: {tolerance: 2.5}\n"))
    result = validate(cli, project, text)
    assert result.code == 0, result.out


@pytest.mark.parametrize(
    ("text", "needle", "message"),
    [
        (
            demo("  rollout: {strategy: shadow}\n"),
            "shadow}",
            "strategy shadow without a candidate shadows nothing",
        ),
        (
            demo(CANDIDATE, CANARY + "      analysis: {interval: 5m, window: 2m}\n"),
            "2m}",
            "analysis window 2m is shorter than its interval 5m",
        ),
        (
            demo(
                CANDIDATE,
                "  rollout:\n    strategy: canary\n    canary:\n      steps: [{weight: 50, pause: 5m}]\n      analysis: {interval: 5m}\n",
            ),
            "[{weight",
            "the steps pause 5m in all, but the analysis can abort only after 20m",
        ),
    ],
    ids=["shadow-without-candidate", "window-below-interval", "pauses-shorter-than-the-analysis"],
)
def test_doubtful_settings_warn(
    cli: Callable[..., Result], project: Path, text: str, needle: str, message: str
) -> None:
    result = validate(cli, project, text)
    assert result.code == 0, result.out
    line, column = located(text, needle)
    assert f"specs/demo.yaml:{line}:{column}: warning: {message}" in result.out


def test_canary_without_candidate_is_valid(cli: Callable[..., Result], project: Path) -> None:
    """A team switches to canary first and adds the candidate in the next change."""
    result = validate(cli, project, demo(CANARY))
    assert result.code == 0, result.out


def test_every_error_in_json_with_exit_1(cli: Callable[..., Result], project: Path) -> None:
    path = project / "specs" / "demo.yaml"
    path.write_text(demo(CANDIDATE.replace("1.5.0", "1.0.0"), "  rollout: {strategy: canary}\n"))
    result = cli("validate", path, "--format", "json")
    assert result.code == 1
    messages = [d["message"] for d in json.loads(result.out)["diagnostics"]]
    assert any("is the model's own" in m for m in messages)
    assert any("needs rollout.canary" in m for m in messages)


def test_stale_candidate_record_warns_at_its_pin(cli: Callable[..., Result], project: Path) -> None:
    """A record of the candidate's version measured on another artifact is not used."""
    record = json.loads((project / "evaluations/credit-default/1.4.0.json").read_text())
    record.update(model="demo-model", version="1.5.0", artifact_sha256=OTHER_PIN)
    (project / "evaluations/demo-model").mkdir()
    (project / "evaluations/demo-model/1.5.0.json").write_text(json.dumps(record))
    text = demo(CANDIDATE, CANARY)
    result = validate(cli, project, text)
    assert result.code == 0, result.out
    line, column = located(text, PIN)
    assert (
        f"specs/demo.yaml:{line}:{column}: warning: the evaluation record of demo-model 1.5.0 (the candidate) "
        "was made from another artifact" in result.out
    ), result.out
    assert resolved(project, text)["production"].evaluated is None

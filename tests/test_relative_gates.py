"""Relative gates: the candidate against the stable version on the same holdout.

Validation at file:line, then `modelops evaluate` with real scikit-learn candidates trained
here (the bundled stable models stay as committed): tables, exit codes, records, the model card.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from compiler.evaluate.dataset import read_holdout
from compiler.modelio.skops_files import deterministic_bytes
from compiler.pipeline import check
from compiler.spec.model import Evaluation, RelativeGate
from compiler.targets.docs.model_card import model_card
from tests.conftest import REPO, Result, spec_text
from tests.spec_edits import located, validate

CREDIT = "specs/credit-default.yaml"
LOAN = "specs/loan-risk-score.yaml"
CANARY = "  rollout:\n    strategy: canary\n    canary: {steps: [{weight: 10, pause: 15m}, {weight: 50, pause: 30m}]}\n"


def with_relative(relative: str, base: str | None = None) -> str:
    """The demo spec with `relative: <relative>` under its gates."""
    text = base or spec_text()
    return text.replace(
        "      accuracy: {min: 0.8}\n", f"      accuracy: {{min: 0.8}}\n      relative: {relative}\n"
    )


def regression(text: str) -> str:
    return text.replace("task: classification", "task: regression").replace(
        "accuracy: {min: 0.8}", "r2: {min: 0.5}"
    )


VALID = {
    "score-drop": with_relative("{roc_auc: {maxDrop: 0.01}, accuracy: {maxDrop: 0.02}}"),
    "error-increase": regression(with_relative("{mse: {maxIncrease: 5}, r2: {maxDrop: 0.05}}")),
    "no-gates": spec_text().replace("    gates:\n      accuracy: {min: 0.8}\n", "    gates: {}\n"),
    "only-relative": spec_text().replace("accuracy: {min: 0.8}", "relative: {f1: {maxDrop: 0}}"),
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_gates(cli: Callable[..., Result], project: Path, case: str) -> None:
    result = validate(cli, project, VALID[case])
    assert result.code == 0, result.out


# name: (spec text, where the error points, message)
INVALID = {
    "score-with-increase": (
        with_relative("{roc_auc: {maxIncrease: 0.01}}"),
        "{maxIncrease",
        "error: relative gate 'roc_auc' is a score (higher is better): give it a maxDrop, not a maxIncrease",
    ),
    "error-with-drop": (
        regression(with_relative("{mse: {maxDrop: 5}}")),
        "{maxDrop",
        "error: relative gate 'mse' is an error measure (lower is better): give it a maxIncrease, not a maxDrop",
    ),
    "both-bounds": (
        with_relative("{roc_auc: {maxDrop: 0.01, maxIncrease: 0.01}}"),
        "{maxDrop",
        "error: spec.evaluation.gates.relative.roc_auc: a relative gate takes exactly one of maxDrop",
    ),
    "no-bound": (
        with_relative("{roc_auc: {}}"),
        "{}}",
        "error: spec.evaluation.gates.relative.roc_auc: a relative gate takes exactly one of maxDrop",
    ),
    "other-task": (
        with_relative("{r2: {maxDrop: 0.01}}"),
        "r2",
        "error: relative gate 'r2' does not apply to a classification model; use accuracy, precision",
    ),
    "typo": (
        with_relative("{roc_uac: {maxDrop: 0.01}}"),
        "roc_uac",
        "error: spec.evaluation.gates.relative: key 'roc_uac': input should be",
    ),
    "never-fails": (
        with_relative("{accuracy: {maxDrop: 1}}"),
        "{maxDrop",
        "error: relative gate 'accuracy' allows a drop of 1, but accuracy is a fraction between 0 and 1",
    ),
    "negative": (
        with_relative("{accuracy: {maxDrop: -0.1}}"),
        "-0.1",
        "error: spec.evaluation.gates.relative.accuracy.maxDrop: input should be greater than or equal to 0",
    ),
    "unknown-field": (
        with_relative("{accuracy: {maxdrop: 0.1}}"),
        "maxdrop",
        "error: unknown field 'maxdrop' in spec.evaluation.gates.relative.accuracy; did you mean 'maxDrop'?",
    ),
    "absolute-typo": (
        spec_text().replace("accuracy: {min: 0.8}", "acuracy: {min: 0.8}"),
        "acuracy",
        "error: unknown field 'acuracy' in spec.evaluation.gates; did you mean 'accuracy'?",
    ),
    "overlay": (
        spec_text()
        + "  environments:\n    production:\n      evaluation: {gates: {relative: {f1: {maxIncrease: 0.1}}}}\n",
        "{maxIncrease",
        "error: relative gate 'f1' is a score (higher is better): give it a maxDrop",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_gates_are_located(cli: Callable[..., Result], project: Path, case: str) -> None:
    text, needle, message = INVALID[case]
    result = validate(cli, project, text)
    assert result.code == 1, result.out
    line, column = located(text, needle)
    assert f"specs/demo.yaml:{line}:{column}: {message}" in result.out, result.out
    if case == "typo":
        assert "did you mean 'roc_auc'?" in result.out


def test_a_candidate_exactly_at_the_allowance_passes() -> None:
    """The limit is rounded like measured metrics, so float noise does not fail an exact drop."""
    drop = RelativeGate(maxDrop=0.01)
    assert drop.passes(0.9117, 0.9017)
    assert not drop.passes(0.9117, 0.9016)
    assert drop.passes(0.9117, 0.95)  # better is always fine
    increase = RelativeGate(maxIncrease=5)
    assert increase.passes(15.5, 20.5)
    assert not increase.passes(15.5, 20.6)
    assert not drop.passes(None, 0.9) and not drop.passes(0.9, None)


def test_gates_keep_their_written_order_and_shape() -> None:
    """Absolute gates come out as written, and serialize as the mapping they were before
    relative gates existed (so the input hashes of existing specs do not move)."""
    gates = {"roc_auc": {"min": 0.85}, "accuracy": {"min": 0.8}}
    evaluation = Evaluation.model_validate({"dataset": "data/x.csv", "target": "y", "gates": gates})
    assert list(evaluation.gates.absolute()) == ["roc_auc", "accuracy"]
    assert evaluation.model_dump(mode="json")["gates"] == {
        "roc_auc": {"min": 0.85, "max": None},
        "accuracy": {"min": 0.8, "max": None},
    }
    with_relative = {**gates, "relative": {"roc_auc": {"maxDrop": 0.01}}}
    evaluation = Evaluation.model_validate({"dataset": "data/x.csv", "target": "y", "gates": with_relative})
    assert evaluation.model_dump(mode="json")["gates"]["relative"] == {
        "roc_auc": {"maxDrop": 0.01, "maxIncrease": None}
    }


# --- evaluate, with candidates trained here --------------------------------------------------


def _credit_candidate(permuted: int | None) -> Any:
    """A credit-default classifier fitted on the holdout; `permuted`: a feature column shuffled
    first, so the model learns less from it (column 2, credit history: roc_auc drops by ~0.014)."""
    holdout = read_holdout((REPO / "data/credit-default/holdout.csv").read_bytes(), "h", "default", [])
    x = holdout.x.copy()
    if permuted is not None:
        x[:, permuted] = np.random.default_rng(0).permutation(x[:, permuted])
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, holdout.y)


def _loan_candidate() -> Any:
    """A loan-risk-score regressor that never saw income: mse rises by about 7."""
    holdout = read_holdout((REPO / "data/loan-risk-score/holdout.csv").read_bytes(), "h", "risk_score", [])
    x = holdout.x.copy()
    x[:, 2] = np.random.default_rng(0).permutation(x[:, 2])
    return RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(x, holdout.y)


def add_candidate(
    root: Path, spec: str, estimator: Any, *, rollout: str = CANARY, relative: str, version: str = "1.5.0"
) -> str:
    """Commit `estimator` as the candidate of the spec at `spec`, with relative gates; its sha256."""
    data = deterministic_bytes(estimator)
    path = root / spec
    name = path.stem
    artifact = f"models/{name}/{version}/model.skops"
    (root / artifact).parent.mkdir(parents=True, exist_ok=True)
    (root / artifact).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    text = path.read_text()
    candidate = f"  candidate:\n    version: {version}\n    uri: {artifact}\n    sha256: {digest}\n"
    text = text.replace("  evaluation:\n", candidate + rollout + "  evaluation:\n", 1)
    text = re.sub(
        r"(    gates:\n(?:      .*\n)+)", lambda m: m[1] + f"      relative: {relative}\n", text, count=1
    )
    path.write_text(text)
    return digest


def _record(root: Path, model: str, version: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((root / f"evaluations/{model}/{version}.json").read_text())
    return record


def test_a_good_candidate_passes_and_is_recorded(cli: Callable[..., Result], project: Path) -> None:
    digest = add_candidate(
        project,
        CREDIT,
        _credit_candidate(None),
        relative="{roc_auc: {maxDrop: 0.01}, accuracy: {maxDrop: 0.02}}",
    )
    result = cli("evaluate", project / CREDIT)
    assert result.code == 0, result.out
    rows = [line.split() for line in result.out.splitlines() if line.startswith("credit-default")]
    versions = {(r[1], r[2], r[3]) for r in rows if r[1] in ("1.4.0", "1.5.0")}
    assert {("1.4.0", "production", "roc_auc"), ("1.5.0", "production", "roc_auc")} <= versions
    relative = {(r[1], r[2], r[-1]) for r in rows if "1.4.0:" in r and "1.5.0:" in r}
    assert relative == {
        (env, gate, "pass") for env in ("production", "staging") for gate in ("roc_auc", "accuracy")
    }
    assert "2 model versions evaluated: 16 gates passed, 0 failed" in result.out

    record = _record(project, "credit-default", "1.5.0")
    assert record["artifact_sha256"] == digest
    outcome = record["relative"]["1.4.0"]["roc_auc"]
    stable = _record(project, "credit-default", "1.4.0")["metrics"]["roc_auc"]
    assert outcome["stable"] == pytest.approx(stable)
    assert outcome["candidate"] == pytest.approx(record["metrics"]["roc_auc"])
    assert outcome["limit"] == pytest.approx(stable - 0.01, abs=1e-5)
    assert outcome["maxDrop"] == pytest.approx(0.01) and outcome["passed"] is True
    assert "maxIncrease" not in outcome
    # the stable's record is the committed one; both are written the same way again
    committed = (REPO / "evaluations/credit-default/1.4.0.json").read_text()
    assert (project / "evaluations/credit-default/1.4.0.json").read_text() == committed
    first = (project / "evaluations/credit-default/1.5.0.json").read_bytes()
    assert cli("evaluate", project / CREDIT).code == 0
    assert (project / "evaluations/credit-default/1.5.0.json").read_bytes() == first


def test_a_worse_candidate_fails_its_relative_gate(cli: Callable[..., Result], project: Path) -> None:
    """Good enough for every absolute gate, but more than the allowance below the stable."""
    add_candidate(project, CREDIT, _credit_candidate(2), relative="{roc_auc: {maxDrop: 0.005}}")
    result = cli("evaluate", project / CREDIT)
    assert result.code == 1, result.out
    absolute = [line.split() for line in result.out.splitlines() if line.startswith("credit-default  1.5.0")]
    assert absolute and all(r[-1] == "pass" for r in absolute)
    failing = [line for line in result.out.splitlines() if line.startswith("FAIL ")]
    assert len(failing) == 2  # production and staging
    assert failing[0].startswith(
        "FAIL credit-default (production): candidate 1.5.0 fails relative gate roc_auc (drop <= 0.005 from 1.4.0): roc_auc "
    )
    assert "needs at least " in failing[0]
    assert result.out.splitlines()[-1].startswith("2 model versions evaluated: 12 gates passed, 2 failed")
    outcome = _record(project, "credit-default", "1.5.0")["relative"]["1.4.0"]["roc_auc"]
    assert outcome["passed"] is False and outcome["candidate"] < outcome["limit"] < outcome["stable"]


def test_relative_gates_in_json_and_github_formats(cli: Callable[..., Result], project: Path) -> None:
    add_candidate(project, CREDIT, _credit_candidate(2), relative="{roc_auc: {maxDrop: 0.005}}")
    payload = json.loads(cli("evaluate", project / CREDIT, "--format", "json", "--no-write").out)
    assert payload["ok"] is False
    (production,) = [r for r in payload["relative"] if r["environment"] == "production"]
    assert production["stable_version"] == "1.4.0" and production["candidate_version"] == "1.5.0"
    assert production["maxDrop"] == pytest.approx(0.005) and production["passed"] is False
    assert {(g["version"], g["candidate"]) for g in payload["gates"]} == {("1.4.0", False), ("1.5.0", True)}
    record = next(r for r in payload["records"] if r["version"] == "1.5.0")
    assert record["relative"]["1.4.0"]["roc_auc"]["passed"] is False
    assert "relative" not in next(r for r in payload["records"] if r["version"] == "1.4.0")

    result = cli("evaluate", project / CREDIT, "--format", "github", "--no-write", "--env", "production")
    assert result.code == 1
    text = (project / CREDIT).read_text()
    line, column = located(text, "roc_auc: {maxDrop: 0.005}")
    (annotation,) = [row for row in result.out.splitlines() if "relative gate" in row]
    assert annotation.startswith("::error file=")
    assert (
        f"credit-default.yaml,line={line},col={column},title=modelops gate::credit-default (production): "
        in (annotation)
    )


def test_a_regressor_under_shadow_fails_on_increase(cli: Callable[..., Result], project: Path) -> None:
    """Under shadow the pods serve the stable, and the candidate is scored all the same."""
    shadow = "  rollout:\n    strategy: shadow\n    shadow: {tolerance: 2.5}\n"
    add_candidate(
        project, LOAN, _loan_candidate(), rollout=shadow, relative="{mse: {maxIncrease: 5}}", version="2.2.0"
    )
    result = cli("evaluate", project / LOAN, "--no-write")
    assert result.code == 1, result.out
    assert (
        "FAIL loan-risk-score (production): candidate 2.2.0 fails relative gate mse (increase <= 5 from 2.1.0)"
        in (result.out)
    )
    assert "needs at most " in result.out
    absolute = [line.split() for line in result.out.splitlines() if line.startswith("loan-risk-score  2.2.0")]
    assert absolute and all(r[-1] == "pass" for r in absolute)


def test_the_candidate_is_checked_against_its_pin(cli: Callable[..., Result], project: Path) -> None:
    add_candidate(project, CREDIT, _credit_candidate(None), relative="{roc_auc: {maxDrop: 0.01}}")
    (project / "models/credit-default/1.5.0/model.skops").write_bytes(
        deterministic_bytes(_credit_candidate(2))
    )
    result = cli("evaluate", project / CREDIT, "--no-write")
    assert result.code == 1, result.out
    text = (project / CREDIT).read_text()
    line, column = located(text, "models/credit-default/1.5.0/model.skops")
    assert f"credit-default.yaml:{line}:{column}: error: credit-default candidate 1.5.0: " in result.out, (
        result.out
    )
    assert "tampered" in result.out
    # the stable is still judged, and no relative gate is judged without the candidate
    assert any(line.startswith("credit-default  1.4.0") for line in result.out.splitlines())
    assert "RELATIVE GATE" not in result.out
    assert "Traceback" not in result.out + result.err


def _card(project: Path, environment: str, name: str) -> str:
    checked = check([project / "specs"])
    model = next(m for m in checked.models if m.name == name and m.environment == environment)
    return model_card(model, [])


def test_the_model_card_shows_candidate_strategy_and_relative_gates(
    cli: Callable[..., Result], project: Path
) -> None:
    add_candidate(project, CREDIT, _credit_candidate(2), relative="{roc_auc: {maxDrop: 0.005}}")
    before = _card(project, "production", "credit-default")
    assert "Relative gates: not evaluated yet: run `modelops evaluate`" in before
    assert cli("evaluate", project / CREDIT).code == 1
    card = _card(project, "production", "credit-default")
    assert card.startswith("# Model card: credit-default 1.5.0 (production)")
    assert (
        "Strategy: canary: candidate 1.5.0 replaces 1.4.0 in steps of 10% for 15m, 50% for 30m, then 100%"
        in card
    )
    assert "- Stable: 1.4.0, `models/credit-default/1.4.0/model.skops`" in card
    assert "- Candidate: 1.5.0, `models/credit-default/1.5.0/model.skops`" in card
    (row,) = [line for line in card.splitlines() if line.startswith("| roc_auc | drop <= 0.005 |")]
    assert row.endswith("| **FAIL** |")
    assert "## Rollout" not in _card(project, "production", "loan-risk-score")


def test_the_model_card_under_shadow(project: Path) -> None:
    shadow = "  rollout:\n    strategy: shadow\n    shadow: {tolerance: 2.5, maxDisagreement: 0.1}\n"
    add_candidate(
        project, LOAN, _loan_candidate(), rollout=shadow, relative="{mse: {maxIncrease: 5}}", version="2.2.0"
    )
    card = _card(project, "staging", "loan-risk-score")
    assert card.startswith("# Model card: loan-risk-score 2.1.0 (staging)")
    assert (
        "Strategy: shadow: candidate 2.2.0 scores a copy of every request 2.1.0 answers; its answers are "
        "compared, never returned (alert above 10% disagreement)." in card
    )

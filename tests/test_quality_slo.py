"""Quality SLOs from ground truth: spec checks, generated rules and their promtool tests,
dashboard panels; against real promtool, on a copy of the bundled project."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Result

CREDIT = "specs/credit-default.yaml"
LOAN = "specs/loan-risk-score.yaml"
DRIFT = "    drift:\n      psi: {warning: 0.1, critical: 0.25}\n"
CREDIT_QUALITY = (
    "    quality:\n      accuracy: {min: 0.8}\n      recall: {min: 0.7, class: '1'}\n"
    "      window: 7d\n      labelDelay: 2h\n      minFeedback: 50\n"
)
LOAN_QUALITY = "    quality:\n      mae: {max: 4}\n      rmse: {max: 5}\n      window: 28d\n"
OUT = Path("production/ml-production")
BUNDLED_QUALITY = re.compile(r"^    quality:.*\n(?:      .*\n)+", re.MULTILINE)


@pytest.fixture(autouse=True)
def _no_bundled_quality(project: Path) -> None:
    """The bundled specs carry quality SLOs of their own; these tests write theirs in place."""
    for spec in (CREDIT, LOAN):
        path = project / spec
        path.write_text(BUNDLED_QUALITY.sub("", path.read_text()))


def promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool is installed by `make tools` (Debian package prometheus)"
    return subprocess.run([found, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def _edit(project: Path, spec: str, old: str, new: str) -> None:
    path = project / spec
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _with_quality(project: Path) -> None:
    _edit(project, CREDIT, DRIFT, DRIFT + CREDIT_QUALITY)
    _edit(project, LOAN, "    drift:\n", LOAN_QUALITY + "    drift:\n")


def _compile(cli: Callable[..., Result], project: Path, out: Path) -> None:
    result = cli("compile", project / "specs", "--out", out, "--full")
    assert result.code == 0, result.out + result.err


def _alerts(model_dir: Path) -> dict[str, dict[str, Any]]:
    rules = yaml.safe_load((model_dir / "rules.yaml").read_text())
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}


def test_quality_slos_compile_to_rules_whose_tests_pass(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    _with_quality(project)
    _compile(cli, project, tmp_path / "gen")
    credit, loan = tmp_path / "gen" / OUT / "credit-default", tmp_path / "gen" / OUT / "loan-risk-score"
    # a 7d period: the ticket pairs' factors are below 1 (they would fire within the budget)
    assert {"ModelAccuracyBudgetBurnFast", "ModelRecallBudgetBurnFast"} <= set(_alerts(credit))
    assert "ModelAccuracyBudgetBurnSlow" not in _alerts(credit)
    assert {"ModelMaeBudgetBurnFast", "ModelMaeBudgetBurnSlow", "ModelRmseBudgetBurnSlow"} <= set(
        _alerts(loan)
    )
    # labels come 2h late: the 1h page pair cannot see a burn in time
    assert "ratio_rate1h" not in _alerts(credit)["ModelAccuracyBudgetBurnFast"]["expr"]
    recall = [
        r["expr"]
        for g in yaml.safe_load((credit / "rules.yaml").read_text())["groups"]
        for r in g["rules"]
        if r.get("labels", {}).get("slo") == "recall" and "record" in r and "increase(" in r["expr"]
    ]
    assert recall and all('class="1"' in expr for expr in recall)
    for model_dir in (credit, loan):
        assert promtool("check", "rules", "rules.yaml", cwd=model_dir).returncode == 0
        done = promtool("test", "rules", "rules.test.yaml", cwd=model_dir)
        assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load((credit / "rules.test.yaml").read_text())["tests"]
    names = [t["name"] for t in tests if "Accuracy" in t["name"]]
    assert any("burns the budget" in n for n in names) and any("fewer than 50 labels" in n for n in names)


@pytest.mark.parametrize(
    ("alert", "old", "new", "case"),
    [
        ("ModelAccuracyBudgetBurnFast", "> (1.4 * 0.2)", "> (2.8 * 0.2)", "burns the budget"),
        ("ModelAccuracyBudgetBurnFast", ">= 50", ">= 0", "fewer than 50 labels"),
        ("ModelRecallBudgetBurnFast", 'class="1"', 'class="0"', "burns the budget"),
    ],
)
def test_a_broken_quality_rule_fails_its_generated_tests(
    cli: Callable[..., Result], project: Path, tmp_path: Path, alert: str, old: str, new: str, case: str
) -> None:
    _with_quality(project)
    _compile(cli, project, tmp_path / "gen")
    source = tmp_path / "gen" / OUT / "credit-default"
    rules = yaml.safe_load((source / "rules.yaml").read_text())
    changed = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            # the alert itself, or for the class the recall SLI's recording rules
            if rule.get("alert") == alert or (old == 'class="1"' and "record" in rule):
                changed += old in rule["expr"]
                rule["expr"] = rule["expr"].replace(old, new)
    assert changed
    work = tmp_path / "work"
    work.mkdir()
    (work / "rules.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(source / "rules.test.yaml", work)
    done = promtool("test", "rules", "rules.test.yaml", cwd=work)
    assert done.returncode != 0
    assert f"alertname: {alert}" in done.stdout + done.stderr


def test_validate_offers_the_gate_as_a_quality_target(cli: Callable[..., Result], project: Path) -> None:
    result = cli("validate", project / "specs")
    assert result.code == 0, result.out + result.err
    assert "monitoring.quality: {accuracy: {min: 0.8}}" in result.out + result.err
    _with_quality(project)
    again = cli("validate", project / "specs")
    assert "monitoring.quality: {accuracy" not in again.out + again.err


@pytest.mark.parametrize(
    ("quality", "message"),
    [
        ("    quality:\n      mae: {max: 3}\n", "does not apply to a classification model"),
        ("    quality:\n      accuracy: {max: 0.9}\n", "give it a min"),
        ("    quality:\n      accuracy: {min: 0.8, class: '1'}\n", "only precision and recall take one"),
        ("    quality:\n      accuracy: {min: 0.8}\n      labelDelay: 2d\n", "make the ttl longer"),
        (
            "    quality:\n      accuracy: {min: 0.8}\n      window: 1d\n      labelDelay: 7h\n",
            "no burn-rate alert",
        ),
        ("    quality:\n      accuracy: {min: 1.5}\n", "less than 1"),
    ],
)
def test_quality_slos_that_cannot_work_are_errors(
    cli: Callable[..., Result], project: Path, quality: str, message: str
) -> None:
    _edit(project, CREDIT, DRIFT, DRIFT + quality)
    result = cli("validate", project / "specs")
    assert result.code != 0
    assert message in result.out + result.err
    assert "credit-default.yaml:" in result.out + result.err


def _concrete(expr: str) -> str:
    return expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$environment", "ns")


def test_the_dashboard_shows_quality_and_drift_samples(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    _with_quality(project)
    _compile(cli, project, tmp_path / "gen")
    dashboard = json.loads((tmp_path / "gen" / OUT / "credit-default" / "dashboard.json").read_text())
    titles = [p["title"] for p in dashboard["panels"]]
    assert "Quality from feedback labels (7d)" in titles
    assert "Accuracy at least 0.8 over 7d" in titles
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert any(e.startswith("slo:error_budget:remaining{") and 'slo="recall"' in e for e in exprs)
    assert any("modelops:feature_samples:increase" in e for e in exprs)
    rules = [{"record": f"dashboard:check:{i}", "expr": _concrete(e)} for i, e in enumerate(exprs)]
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}))
    done = promtool("check", "rules", "d.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_quality_targets_change_no_deployment_bytes(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    _with_quality(project)
    _compile(cli, project, tmp_path / "a")
    _edit(project, CREDIT, "accuracy: {min: 0.8}", "accuracy: {min: 0.9}")
    _compile(cli, project, tmp_path / "b")
    a, b = tmp_path / "a" / OUT / "credit-default", tmp_path / "b" / OUT / "credit-default"
    assert (a / "rules.yaml").read_bytes() != (b / "rules.yaml").read_bytes()
    for name in ("deployment.yaml", "configmap.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes()

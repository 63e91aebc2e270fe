"""Alert severity per environment: the project's `environments[].alerts` turns staging's pages
into tickets and drops the specs' pager label there, production keeps them; promtool still
passes the relabelled rules, and `diff --base` shows the change."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from compiler.pipeline import check
from compiler.resolve.resolved import ResolvedModel
from compiler.serialize import to_yaml
from compiler.spec.project import EnvironmentAlerts, Project
from compiler.targets.prometheus.rules import AlertRule, RuleGroup, alerts_of, rule_file, rule_groups
from compiler.targets.prometheus.unittests import unit_tests
from tests.conftest import REPO, SPECS, Result

STAGING_ALERTS = "    alerts: {severity: {critical: warning}, dropLabels: [pager]}\n"


def _bundled() -> tuple[list[ResolvedModel], Project]:
    checked = check([SPECS])
    assert checked.catalog is not None
    return checked.models, checked.catalog.project


def _labelling(project: Project, environment: str) -> EnvironmentAlerts:
    config = project.environment(environment)
    assert config is not None
    return config.alerts


def _severities(groups: list[RuleGroup]) -> set[str]:
    return {alert.labels["severity"] for alert in alerts_of(groups)}


def test_the_bundled_project_makes_staging_pages_tickets() -> None:
    models, project = _bundled()
    assert _labelling(project, "staging") == EnvironmentAlerts(
        severity={"critical": "warning"}, dropLabels=["pager"]
    )
    assert _labelling(project, "production") == EnvironmentAlerts()
    credit = [m for m in models if m.name == "credit-default"]
    assert {m.environment for m in credit} == {"staging", "production"}
    for model in credit:
        plain = rule_groups(model)
        relabelled = rule_groups(model, _labelling(project, model.environment))
        assert "critical" in _severities(plain) and all("pager" in a.labels for a in alerts_of(plain))
        if model.environment == "staging":
            assert _severities(relabelled) == {"warning"}
            assert not any("pager" in a.labels for a in alerts_of(relabelled))
        else:
            assert relabelled == plain
        # only the alerts' labels change: same groups, same rules, same expressions
        assert [g.name for g in relabelled] == [g.name for g in plain]
        for before, after in zip(plain, relabelled, strict=True):
            for a, b in zip(before.rules, after.rules, strict=True):
                assert (type(a), a.expr) == (type(b), b.expr)
                if isinstance(a, AlertRule) and isinstance(b, AlertRule):
                    assert {k: v for k, v in a.labels.items() if k not in ("severity", "pager")} == {
                        k: v for k, v in b.labels.items() if k not in ("severity", "pager")
                    }


def test_a_severity_can_become_info_and_warnings_stay_unless_mapped() -> None:
    models, _ = _bundled()
    model = next(m for m in models if m.name == "credit-default" and m.environment == "production")
    groups = rule_groups(model, EnvironmentAlerts(severity={"warning": "info"}))
    assert _severities(groups) == {"critical", "info"}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool is installed by `make tools` (Debian package prometheus)"
    return subprocess.run([found, *args], capture_output=True, text=True, cwd=cwd)


def test_relabelled_rules_pass_their_promtool_tests(tmp_path: Path) -> None:
    """The generated tests expect the relabelled labels: promtool compares them exactly."""
    models, project = _bundled()
    model = next(m for m in models if m.name == "credit-default" and m.environment == "staging")
    groups = rule_groups(model, _labelling(project, "staging"))
    (tmp_path / "rules.yaml").write_bytes(to_yaml(rule_file(groups)))
    tests = unit_tests(model, groups)
    (tmp_path / "rules.test.yaml").write_bytes(to_yaml(tests))
    expected = [e for t in tests["tests"] for c in t["alert_rule_test"] for e in c["exp_alerts"]]
    assert expected and all(e["exp_labels"]["severity"] == "warning" for e in expected)
    result = _promtool("test", "rules", "rules.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _rules(tree: Path, environment: str) -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted((tree / environment).glob("*/*/rules.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_compiled_staging_alerts_page_nobody(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    compiled = subprocess.run(
        [str(REPO / ".venv/bin/modelops"), "compile", str(SPECS), "--out", str(out), "--full"],
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    staging, production = _rules(out, "staging"), _rules(out, "production")
    assert staging and production
    assert {r["labels"]["severity"] for r in staging} == {"warning"}
    assert not any("pager" in r["labels"] for r in staging)
    assert "critical" in {r["labels"]["severity"] for r in production}
    assert any(r["labels"].get("pager") == "risk-oncall" for r in production)
    for path in (out / "staging").glob("*/*/prometheusrule.yaml"):
        assert "severity: critical" not in path.read_text() and "pager:" not in path.read_text()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{dropLabels: [pager, severity]}", "severity is set by modelops on every alert, cannot be dropped"),
        ("{severity: {critical: sev1}}", "input should be 'critical', 'warning' or 'info' (got 'sev1')"),
        ("{severity: {page: ticket}}", "environments[0].alerts.severity.page"),
    ],
)
def test_environment_alert_settings_are_checked_at_their_line(
    cli: Callable[..., Result], project: Path, setting: str, message: str
) -> None:
    path = project / "specs" / "modelops.yaml"
    text = path.read_text()
    assert STAGING_ALERTS in text
    path.write_text(text.replace(STAGING_ALERTS, f"    alerts: {setting}\n"))
    line = text[: text.index(STAGING_ALERTS)].count("\n") + 1
    result = cli("validate", project / "specs")
    assert result.code == 1
    assert f"specs/modelops.yaml:{line}:" in result.out and message in result.out, result.out


def test_diff_base_shows_the_severity_change(
    cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / "specs" / "modelops.yaml"
    text = path.read_text()
    path.write_text(text.replace(STAGING_ALERTS, ""))
    repo = git.Repo.init(project, initial_branch="main")
    repo.config_writer().set_value("user", "name", "Test").release()
    repo.config_writer().set_value("user", "email", "test@example.com").release()
    repo.git.add(A=True)
    repo.index.commit("staging pages")
    path.write_text(text)  # the working tree: staging pages become tickets
    monkeypatch.chdir(project)
    result = cli("diff", "specs", "--base", "HEAD", "--env", "staging", "--format", "markdown")
    assert result.code == 1, result.err
    assert "-      severity: critical" in result.out and "+      severity: warning" in result.out
    assert "-      pager: risk-oncall" in result.out
    words = cli("diff", "specs", "--base", "HEAD", "--env", "staging")
    assert "severity critical -> warning" in words.out and "pager risk-oncall -> none" in words.out, words.out
    production = cli("diff", "specs", "--base", "HEAD", "--env", "production")
    assert production.code == 0, production.out  # production is untouched

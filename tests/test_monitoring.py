"""Rules, their promtool unit tests, dashboards and the metrics contract, against real promtool."""

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
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from jinja2.exceptions import SecurityError

from compiler.bundle.writer import read_tree
from compiler.metrics import contract
from compiler.spec.slo import SLI_WINDOWS, WINDOW_PAIRS
from compiler.spec.types import Duration
from compiler.targets.prometheus.promql import go_template_literal, string_literal
from compiler.templating import sandboxed_templates
from tests.conftest import REPO, Result, spec_text

GENERATED = REPO / "generated"
MODEL_DIRS = sorted(p.parent for p in GENERATED.glob("*/*/*/rules.yaml"))


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is installed by `make tools` (Debian package prometheus)"
    return found


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_every_model_has_rules() -> None:
    assert len(MODEL_DIRS) == 4


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda p: p.relative_to(GENERATED).as_posix())
def test_promtool_checks_and_tests_rules(model_dir: Path) -> None:
    check = run_promtool("check", "rules", "rules.yaml", cwd=model_dir)
    assert check.returncode == 0, check.stdout + check.stderr
    test = run_promtool("test", "rules", "rules.test.yaml", cwd=model_dir)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def _alerts(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_has_firing_and_quiet_tests() -> None:
    for model_dir in MODEL_DIRS:
        rules = yaml.safe_load((model_dir / "rules.yaml").read_text())
        tests = yaml.safe_load((model_dir / "rules.test.yaml").read_text())["tests"]
        for alert in _alerts(rules):
            cases = [
                c["alert_rule_test"][0]
                for c in tests
                if c["alert_rule_test"][0]["alertname"] == alert["alert"]
            ]
            assert any(c["exp_alerts"] for c in cases), f"{model_dir}: {alert['alert']} never fires"
            assert any(not c["exp_alerts"] for c in cases), (
                f"{model_dir}: {alert['alert']} never tested quiet"
            )


def test_every_eval_time_and_for_is_a_step_of_the_evaluation_interval() -> None:
    """promtool evaluates rules once per step; a `for` or eval time between steps would be
    checked late, so the coarse step (it makes the tests five times faster) must divide them."""
    for model_dir in MODEL_DIRS:
        tests = yaml.safe_load((model_dir / "rules.test.yaml").read_text())
        step = Duration.parse(tests["evaluation_interval"]).milliseconds
        times = [case["alert_rule_test"][0]["eval_time"] for case in tests["tests"]]
        times += [
            a["for"] for a in _alerts(yaml.safe_load((model_dir / "rules.yaml").read_text())) if "for" in a
        ]
        assert all(Duration.parse(t).milliseconds % step == 0 for t in times), (model_dir, step, times)


MUTATIONS = [
    ("ModelAvailabilityBudgetBurnFast", "(13.44 * 0.001)", "(26.88 * 0.001)"),
    ("ModelLatencyBudgetBurnSlow", "(0.9333 * 0.01)", "(9.333 * 0.01)"),
    ("ModelInvalidInputRatioHigh", "modelops_invalid_inputs_total", "modelops_invalid_input_total"),
    ("ModelFeatureDriftWarning", "> 0.1", "> 0.3"),
    ("ModelNoTraffic", "== 0", "> 0"),
    ("ModelPredictionCollapse", "> 0.99", "> 1"),
    ("ModelVersionMismatch", "> 1", "> 2"),
]


@pytest.mark.parametrize(("alert", "old", "new"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_expression_fails_the_generated_tests(
    tmp_path: Path, alert: str, old: str, new: str
) -> None:
    source = GENERATED / "production/ml-production/credit-default"
    rules = yaml.safe_load((source / "rules.yaml").read_text())
    (rule,) = [r for r in _alerts(rules) if r["alert"] == alert]
    assert old in rule["expr"]
    rule["expr"] = rule["expr"].replace(old, new)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(source / "rules.test.yaml", tmp_path)
    assert run_promtool("check", "rules", "rules.yaml", cwd=tmp_path).returncode == 0
    result = run_promtool("test", "rules", "rules.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}" in result.stdout + result.stderr


def test_burn_rate_factors_scale_with_the_slo_period() -> None:
    assert [p.factor(Duration.parse("30d")) for p in WINDOW_PAIRS] == [14.4, 6.0, 3.0, 1.0]
    assert [p.factor(Duration.parse("28d")) for p in WINDOW_PAIRS] == [13.44, 5.6, 2.8, 0.9333]
    assert [w.text for w in SLI_WINDOWS] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    rules = yaml.safe_load((GENERATED / "production/ml-production/credit-default/rules.yaml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    assert {f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")} <= recorded
    assert "slo:error_budget:remaining" in recorded


def _selectors(expr: str) -> set[str]:
    return set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _all_dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [
        (p, json.loads(c))
        for p, c in sorted(read_tree(GENERATED).items())
        if p.endswith(".json") and "dashboard" in p
    ]


def test_every_series_used_is_in_the_metrics_contract() -> None:
    windows = tuple(w.text for w in SLI_WINDOWS)
    known = contract.series_names() | contract.recorded_names(windows)
    used: set[str] = set()
    for model_dir in MODEL_DIRS:
        for rule in yaml.safe_load((model_dir / "rules.yaml").read_text())["groups"]:
            for r in rule["rules"]:
                used |= _selectors(r["expr"])
    for _, dashboard in _all_dashboards():
        for expr in _dashboard_exprs(dashboard):
            used |= _selectors(expr)
    assert used, "no selectors found: the extraction is broken"
    assert used <= known, used - known


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    rules = []
    for _, dashboard in _all_dashboards():
        for expr in _dashboard_exprs(dashboard):
            concrete = (
                expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$environment", "ns")
            )
            rules.append({"record": f"dashboard:check:{len(rules)}", "expr": concrete})
    assert len(rules) > 20
    (tmp_path / "dashboards.rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]})
    )
    result = run_promtool("check", "rules", "dashboards.rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_round_trip_through_the_sdk_model() -> None:
    for path, dashboard in _all_dashboards():
        model = Dashboard.from_json(dashboard)
        again = json.loads(json.dumps(model, cls=JSONEncoder, sort_keys=True))
        assert again == dashboard, path


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    for path, dashboard in _all_dashboards():
        positions = [p["gridPos"] for p in dashboard["panels"]]
        for i, a in enumerate(positions):
            assert a["x"] >= 0 and a["x"] + a["w"] <= 24, path
            for b in positions[i + 1 :]:
                assert not _overlaps(a, b), (path, a, b)


def test_dashboard_uids_are_unique_stable_and_valid() -> None:
    uids = [d["uid"] for _, d in _all_dashboards()]
    assert len(uids) == len(set(uids)) == 6  # 4 model dashboards and 2 overviews
    for uid in uids:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid)
    assert "mo_production_credit-default" in uids


def test_long_names_still_give_valid_unique_uids() -> None:
    from compiler.targets.links import model_dashboard_uid, overview_dashboard_uid

    long_env = "e" * 63
    uids = {
        model_dashboard_uid(long_env, "m" * 40),
        model_dashboard_uid(long_env, "m" * 39 + "n"),
        overview_dashboard_uid(long_env),
    }
    assert len(uids) == 3
    assert all(len(u) <= 40 and re.fullmatch(r"[a-zA-Z0-9_-]+", u) for u in uids)


def test_dashboards_have_the_required_rows_and_variables() -> None:
    dashboard = json.loads((GENERATED / "production/ml-production/credit-default/dashboard.json").read_text())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == [
        "Traffic and errors",
        "Latency",
        "SLO compliance and error budget (28d)",
        "Quality from feedback labels (28d)",
        "Input drift",
        "Predictions and replicas",
    ]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["environment"]["current"]["value"] == "ml-production"
    latency = next(p for p in dashboard["panels"] if p["title"] == "Latency quantiles")
    assert [s["value"] for s in latency["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 0.25]
    overview = json.loads((GENERATED / "production/ml-production/overview-dashboard.json").read_text())
    assert overview["title"] == "Model SLOs (production)"


def test_dashboard_config_maps_for_the_sidecar() -> None:
    config_map = yaml.safe_load(
        (GENERATED / "production/ml-production/credit-default/dashboard-configmap.yaml").read_text()
    )
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (key,) = config_map["data"]
    assert key == "mo_production_credit-default.json"
    assert json.loads(config_map["data"][key]) == json.loads(
        (GENERATED / "production/ml-production/credit-default/dashboard.json").read_text()
    )
    kustomization = yaml.safe_load((GENERATED / "production/kustomization.yaml").read_text())
    assert "ml-production/overview-dashboard-configmap.yaml" in kustomization["resources"]


def test_prometheus_rule_object_matches_the_plain_rule_file() -> None:
    for model_dir in MODEL_DIRS:
        rule_object = yaml.safe_load((model_dir / "prometheusrule.yaml").read_text())
        assert rule_object["apiVersion"] == "monitoring.coreos.com/v1"
        assert rule_object["spec"] == yaml.safe_load((model_dir / "rules.yaml").read_text())
        assert (
            "prometheusrule.yaml"
            in yaml.safe_load((model_dir / "kustomization.yaml").read_text())["resources"]
        )
        assert "rules.yaml" not in yaml.safe_load((model_dir / "kustomization.yaml").read_text())["resources"]


def test_alert_labels_and_annotations() -> None:
    rules = yaml.safe_load((GENERATED / "production/ml-production/credit-default/rules.yaml").read_text())
    for alert in _alerts(rules):
        labels = alert["labels"]
        assert labels["team"] == "risk-analytics" and labels["model"] == "credit-default"
        assert labels["environment"] == "production" and labels["pager"] == "risk-oncall"
        assert labels["severity"] in {"critical", "warning"}
        annotations = alert["annotations"]
        assert annotations["runbook_url"] == "https://runbooks.acme.dev/credit-default"
        assert annotations["dashboard_url"] == "https://grafana.acme.dev/d/mo_production_credit-default"
        assert annotations["summary"] and annotations["description"]
    names = {a["alert"] for a in _alerts(rules)}
    assert names == {
        "ModelAvailabilityBudgetBurnFast",
        "ModelAvailabilityBudgetBurnSlow",
        "ModelLatencyBudgetBurnFast",
        "ModelLatencyBudgetBurnSlow",
        "ModelFeatureDriftWarning",
        "ModelFeatureDriftCritical",
        "ModelPredictionDriftWarning",
        "ModelPredictionDriftCritical",
        # accuracy >= 0.8 and precision >= 0.7 over 28d: only tickets can fire (a page would need
        # more than every prediction wrong)
        "ModelAccuracyBudgetBurnSlow",
        "ModelPrecisionBudgetBurnSlow",
        "ModelInvalidInputRatioHigh",
        "ModelNoTraffic",
        "ModelPredictionCollapse",
        "ModelVersionMismatch",
    }
    regression = yaml.safe_load(
        (GENERATED / "production/ml-production/loan-risk-score/rules.yaml").read_text()
    )
    assert "ModelPredictionCollapse" not in {a["alert"] for a in _alerts(regression)}


def test_escaping_helpers() -> None:
    assert string_literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert go_template_literal("x {{ $value }}") == 'x {{ "{{" }} $value }}'


def test_spec_text_cannot_inject_promql_or_templates(cli: Callable[..., Result], project: Path) -> None:
    hostile = 'x"} or vector(1) # {{ $value }}'
    text = (
        spec_text("evil")
        .replace("    alerts:\n", f"    alerts:\n      labels: {{route: {json.dumps(hostile)}}}\n")
        .replace("runbook: https://runbooks.example/evil", "runbook: https://runbooks.example/{{evil}}")
    )
    (project / "specs" / "evil.yaml").write_text(text)
    assert cli("compile", project / "specs", "--out", project / "generated").code == 0, "spec must compile"
    model_dir = project / "generated/production/ml-production/evil"
    rules = yaml.safe_load((model_dir / "rules.yaml").read_text())
    for alert in _alerts(rules):
        assert "vector(1)" not in alert["expr"]
    assert run_promtool("check", "rules", "rules.yaml", cwd=model_dir).returncode == 0
    result = run_promtool("test", "rules", "rules.test.yaml", cwd=model_dir)
    assert result.returncode == 0, result.stdout  # the expected labels are the literal text
    tests = yaml.safe_load((model_dir / "rules.test.yaml").read_text())["tests"]
    fired = next(
        c["alert_rule_test"][0]["exp_alerts"][0] for c in tests if c["alert_rule_test"][0]["exp_alerts"]
    )
    assert fired["exp_labels"]["route"] == hostile
    assert fired["exp_annotations"]["runbook_url"] == "https://runbooks.example/{{evil}}"


def test_reserved_alert_labels_are_rejected(cli: Callable[..., Result], project: Path) -> None:
    text = spec_text("m").replace("    alerts:\n", "    alerts:\n      labels: {severity: low}\n")
    (project / "specs" / "m.yaml").write_text(text)
    result = cli("validate", project / "specs")
    assert result.code == 1
    assert "alert label 'severity' is set by modelops itself" in result.out


def test_the_sandbox_refuses_internals_every_time() -> None:
    """The sandbox remembers its verdict per type and attribute: a refusal stays a refusal,
    and an allowed attribute stays allowed, for every object of the type."""
    templates = sandboxed_templates(
        {"internal": "{{ f.__globals__ }}", "mro": "{{ t.mro() }}", "fine": "{{ s.upper() }}"}
    )
    for _ in range(2):
        with pytest.raises(SecurityError):
            templates["mro"].render(t=str)
        assert templates["internal"].render(f=lambda: None) == ""  # undefined, never the globals
        assert templates["fine"].render(s="ab") == "AB"

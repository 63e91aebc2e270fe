"""Drift from bin counters, computed by Prometheus: real promtool against the rules compiled
from a freshly evaluated copy of the project, and the PSI the evaluator computes in Python.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.metrics.drift import bin_labels, bin_of, psi
from compiler.spec.records import EvaluationRecord
from compiler.targets.prometheus.drift_tests import LOW_TRAFFIC
from compiler.targets.prometheus.promql import matchers
from compiler.targets.prometheus.unittests import expand
from tests.evaluated_project import evaluated_project
from tests.runtime import holdout_rows

CREDIT_DIR = Path("production/ml-production/credit-default")
LABELS = {"model": "credit-default", "namespace": "ml-production", "environment": "production"}


def promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool is installed by `make tools` (Debian package prometheus)"
    return subprocess.run([found, *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    evaluated_project(root)
    return root


def _record(project: Path) -> EvaluationRecord:
    return EvaluationRecord.model_validate_json(
        (project / "evaluations/credit-default/1.4.0.json").read_text()
    )


def _bin_counts(record: EvaluationRecord, rows: list[dict[str, float]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for name, baseline in record.baseline.items():
        labels = bin_labels(baseline.edges, baseline.categories)
        seen = Counter(labels[bin_of(baseline.edges, baseline.categories, row[name])] for row in rows)
        counts[name] = {label: seen.get(label, 0) for label in labels}
    return counts


def _series(counts: dict[str, dict[str, int]], minutes: int) -> list[dict[str, str]]:
    """Counters of two pods sharing the traffic evenly over `minutes`, one sample a minute."""
    series = []
    for pod in ("a", "b"):
        for feature, bins in counts.items():
            for label, count in bins.items():
                labels = {**LABELS, "version": "1.4.0", "pod": pod, "feature": feature, "bin": label}
                del labels["environment"]
                step = count / 2 / minutes
                series.append(
                    {
                        "series": "modelops_feature_bin_total" + matchers(labels),
                        "values": f"0+{step!r}x{minutes + 15}",
                    }
                )
    return series


def _run(project: Path, tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    shutil.copy(project / "generated" / CREDIT_DIR / "rules.yaml", tmp_path)
    (tmp_path / "t.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    return promtool("test", "rules", "t.yaml", cwd=tmp_path)


def _close_to(series: str, feature: str, expected: float) -> dict[str, Any]:
    """1 when the recorded value is within 1% of `expected` (0 when not, nothing when absent)."""
    labels = {**LABELS, "feature": feature}
    return {
        "expr": f"abs({series}{matchers(labels)} - {expected!r}) / {expected!r} < bool 0.01",
        "eval_time": "75m",
        "exp_samples": [{"labels": matchers(labels), "value": 1}],
    }


def _fired(project: Path, alert: str, feature: str) -> dict[str, Any]:
    """The alert as it fires for `feature`: its labels and expanded annotations."""
    rules = yaml.safe_load((project / "generated" / CREDIT_DIR / "rules.yaml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    labels = {**LABELS, "feature": feature, **rule["labels"]}
    return {
        "exp_labels": labels,
        "exp_annotations": {k: expand(v, labels) for k, v in rule["annotations"].items()},
    }


def test_a_real_shift_fires_with_the_psi_the_evaluator_computes(project: Path, tmp_path: Path) -> None:
    record = _record(project)
    rows = holdout_rows("data/credit-default/holdout.csv", 100_000)
    shifted = [{**row, "income": row["income"] * 1.5} for row in rows]
    # five times the holdout: enough samples for a verdict, in the same shares
    counts = {
        name: {b: 5 * n for b, n in bins.items()} for name, bins in _bin_counts(record, shifted).items()
    }
    expected = {
        name: psi(record.baseline[name].proportions, list(bins.values())) for name, bins in counts.items()
    }
    assert expected["income"] > 0.25 and expected["debt_ratio"] < 0.01
    result = _run(
        project,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": _series(counts, 60),
                "alert_rule_test": [
                    {
                        "eval_time": "75m",
                        "alertname": "ModelFeatureDriftCritical",
                        "exp_alerts": [_fired(project, "ModelFeatureDriftCritical", "income")],
                    }
                ],
                "promql_expr_test": [_close_to("modelops:feature_drift:psi", "income", expected["income"])],
            }
        ],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_twenty_requests_from_the_baseline_give_no_verdict(project: Path, tmp_path: Path) -> None:
    record = _record(project)
    rows = holdout_rows("data/credit-default/holdout.csv", 100_000)
    sample = random.Random(3).sample(rows, LOW_TRAFFIC)
    counts = _bin_counts(record, sample)
    noise = {
        name: psi(record.baseline[name].proportions, list(bins.values())) for name, bins in counts.items()
    }
    assert max(noise.values()) > 0.25  # by noise alone: what fired on every quiet model before
    quiet: list[dict[str, Any]] = [
        {"eval_time": "75m", "alertname": name, "exp_alerts": []}
        for name in ("ModelFeatureDriftWarning", "ModelFeatureDriftCritical")
    ]
    result = _run(
        project,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": _series(counts, 60),
                "alert_rule_test": quiet,
                "promql_expr_test": [
                    {"expr": "modelops:feature_drift:psi", "eval_time": "75m", "exp_samples": []},
                    _close_to("modelops:feature_samples:increase", "income", LOW_TRAFFIC),
                ],
            }
        ],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_generated_tests_pass_and_catch_a_missing_guard(project: Path, tmp_path: Path) -> None:
    for rules in sorted((project / "generated").glob("*/*/*/rules.yaml")):
        done = promtool("test", "rules", "rules.test.yaml", cwd=rules.parent)
        assert done.returncode == 0, f"{rules.parent}: {done.stdout}{done.stderr}"
    source = project / "generated" / CREDIT_DIR
    rules = yaml.safe_load((source / "rules.yaml").read_text())
    (psi_rule,) = [
        r for g in rules["groups"] for r in g["rules"] if r.get("record") == "modelops:feature_drift:psi"
    ]
    psi_rule["expr"] = psi_rule["expr"].split("\nand on (feature)\n")[0]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(source / "rules.test.yaml", tmp_path)
    done = promtool("test", "rules", "rules.test.yaml", cwd=tmp_path)
    assert done.returncode != 0
    assert "give no verdict" in done.stdout + done.stderr


def test_thresholds_change_no_deployment_bytes(project: Path) -> None:
    spec = project / "specs" / "credit-default.yaml"
    original = spec.read_text()
    before = {p.name: p.read_bytes() for p in (project / "generated" / CREDIT_DIR).iterdir()}
    spec.write_text(
        original.replace(
            "psi: {warning: 0.1, critical: 0.25}", "psi: {warning: 0.2, critical: 0.3}\n      minSamples: 50"
        )
    )
    try:
        out = project / "again"
        done = subprocess.run(
            [sys.executable, "-m", "compiler", "compile", "specs/", "--out", str(out), "--full"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        after = {p.name: p.read_bytes() for p in (out / CREDIT_DIR).iterdir()}
    finally:
        spec.write_text(original)
    assert after["rules.yaml"] != before["rules.yaml"]
    assert after["deployment.yaml"] == before["deployment.yaml"]
    assert after["configmap.yaml"] == before["configmap.yaml"]


def test_the_record_holds_categorical_and_prediction_baselines(project: Path) -> None:
    """A feature with few values is binned by value (and 'other'); predictions get a baseline."""
    loan = EvaluationRecord.model_validate_json(
        (project / "evaluations/loan-risk-score/2.1.0.json").read_text()
    )
    categorical = [name for name, b in loan.baseline.items() if b.categories is not None]
    assert categorical, "the loan holdout has a feature of few values"
    baseline = loan.baseline[categorical[0]]
    assert baseline.edges == [] and len(baseline.proportions) == len(baseline.categories or []) + 1
    assert loan.predictions is not None and loan.predictions.categories is None
    assert len(loan.predictions.edges) >= 5
    credit = _record(project)
    assert credit.predictions is not None and credit.predictions.categories == [0.0, 1.0]
    assert abs(sum(credit.predictions.proportions) - 1) < 1e-6
    raw = json.loads((project / "evaluations/credit-default/1.4.0.json").read_text())
    assert "categories" not in raw["baseline"]["income"]  # numeric baselines leave the key out

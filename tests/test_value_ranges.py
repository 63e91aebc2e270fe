"""Every SLO, drift and gate value that `validate` accepts compiles into rules whose generated
promtool tests pass; every value it refuses is refused at its line, never with a traceback."""

from __future__ import annotations

import copy
import io
import math
import re
import shutil
import subprocess
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from compiler.cli.main import main
from compiler.spec.model import PSI_MAX
from compiler.spec.types import MAX_PERCENTAGE, Duration, Percentage
from compiler.targets.prometheus.promql import number
from tests.conftest import REPO, SPECS, Result

DAY_MS = 86_400_000
BASE = yaml.safe_load((SPECS / "credit-default.yaml").read_text())
MODEL_DIR = "production/ml-production/credit-default"


def promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool is installed by `make tools` (Debian package prometheus)"
    return subprocess.run([found, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_rules_pass(model_dir: Path) -> None:
    """promtool loads the rules and every generated unit test passes."""
    check = promtool("check", "rules", "rules.yaml", cwd=model_dir)
    assert check.returncode == 0, check.stdout + check.stderr
    test = promtool("test", "rules", "rules.test.yaml", cwd=model_dir)
    assert test.returncode == 0, test.stdout + test.stderr


def modelops(*args: str | Path) -> Result:
    """The CLI in-process (Hypothesis cannot use the function-scoped `cli` fixture)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def spec_with(values: dict[str, Any]) -> str:
    """credit-default.yaml with the SLO, drift and gate values replaced (YAML written by PyYAML,
    so floats such as 1e-05, .nan and .inf are read back as floats)."""
    doc = copy.deepcopy(BASE)
    monitoring = doc["spec"]["monitoring"]
    monitoring["slo"] = {
        "window": values["window"],
        "availability": values["availability"],
        "latency": {"threshold": values["threshold"], "target": values["target"]},
    }
    monitoring["drift"] = {"psi": {"warning": values["warning"], "critical": values["critical"]}}
    doc["spec"]["evaluation"]["gates"] = {"accuracy": {"min": values["accuracy"]}}
    return yaml.safe_dump(doc, sort_keys=False)


def _percent_ok(value: float) -> bool:
    return math.isfinite(value) and value > 0 and Decimal(repr(value)) <= MAX_PERCENTAGE


def _duration_ms(text: str) -> int | None:
    """Milliseconds of a Prometheus duration (units from largest to smallest), else None."""
    units = {"y": 365 * DAY_MS, "w": 7 * DAY_MS, "d": DAY_MS, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
    match = re.fullmatch(
        r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?", text
    )
    if not match or not text:
        return None
    return sum(int(n) * units[u] for n, u in zip(match.groups(), units, strict=True) if n) or None


def expected_to_pass(values: dict[str, Any]) -> bool:
    """The documented limits (README): 0 < objective <= 99.9999999, a 3d to 400d window, a
    positive latency threshold, finite PSI thresholds with 0 < warning < critical <= 10, and
    classification gates in [0, 1]."""
    window = _duration_ms(values["window"]) or 0
    warning, critical, accuracy = values["warning"], values["critical"], values["accuracy"]
    return (
        _duration_ms(values["threshold"]) is not None
        and _percent_ok(values["availability"])
        and _percent_ok(values["target"])
        and 3 * DAY_MS <= window <= 400 * DAY_MS
        and math.isfinite(warning)
        and math.isfinite(critical)
        and 0 < warning < critical <= PSI_MAX
        and math.isfinite(accuracy)
        and 0 <= accuracy <= 1
    )


def _lines_of_values(text: str) -> set[int]:
    """Line numbers of the values this test sets (where a refusal must point)."""
    lines = text.splitlines()
    keys = ("window:", "availability:", "threshold:", "target:", "warning:", "critical:", "psi:")
    found = {n for n, line in enumerate(lines, 1) if line.strip().startswith(keys)}
    accuracy = next(n for n, line in enumerate(lines, 1) if line.strip() == "accuracy:")
    return found | {accuracy, accuracy + 1}


# Half the examples are inside the limits (each runs promtool), half break one field.
VALID = {
    "window": st.one_of(
        st.integers(3 * DAY_MS, 400 * DAY_MS).map(lambda ms: Duration.from_milliseconds(ms).text),
        st.sampled_from(["3d", "400d", "28d", "4w", "30d", "1y", "72h", "3d1ms", "57w1d"]),
    ),
    "availability": st.one_of(
        st.floats(min_value=0, max_value=float(MAX_PERCENTAGE), exclude_min=True),
        st.decimals(min_value="0.0001", max_value="99.9999", places=4).map(float),
        st.integers(1, 9).map(lambda k: float(Decimal(100) - Decimal(10) ** (2 - k))),  # 90 ... nine nines
        st.sampled_from([70.0, 5e-324, 1e-9, 99.9999999]),
    ),
    "threshold": st.one_of(
        st.integers(1, 3_600_000).map(lambda ms: Duration.from_milliseconds(ms).text),
        st.sampled_from(["1ms", "250ms", "1h30m", "100y"]),
    ),
    "psi": st.one_of(
        st.lists(st.floats(min_value=0, max_value=PSI_MAX, exclude_min=True), min_size=2, max_size=2).map(
            sorted
        ),
        st.sampled_from([(5e-324, 1e-300), (0.1, 0.25), (9.999999999999998, 10.0)]),
    ),
    "accuracy": st.floats(min_value=0, max_value=1),
}
VALID["target"] = VALID["availability"]
INVALID = {
    "window": st.sampled_from(["2d23h59m59s999ms", "400d1ms", "1d", "2y", "72h1d"]),
    "availability": st.sampled_from(
        [0.0, 100.0, 99.99999999, 99.99999999999, 150.0, -1.0, math.nan, math.inf]
    ),
    "threshold": st.sampled_from(["0s", "250ms1s", "1.5s"]),
    "psi": st.sampled_from(
        [(0.25, 0.1), (0.1, 0.1), (0.0, 0.1), (0.1, 10.000000000000002), (math.nan, 0.2), (0.1, math.inf)]
    ),
    "accuracy": st.sampled_from([-0.1, 1.5, math.nan, math.inf, -math.inf]),
}
INVALID["target"] = INVALID["availability"]


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    warning, critical = fields.pop("psi")
    return {**fields, "warning": warning, "critical": critical}


VALID_VALUES = st.fixed_dictionaries(VALID)
VALUES = st.one_of(
    VALID_VALUES,
    st.tuples(VALID_VALUES, st.sampled_from(sorted(INVALID))).flatmap(
        lambda drawn: INVALID[drawn[1]].map(lambda bad: {**drawn[0], drawn[1]: bad})
    ),
).map(_values)
ORDINARY = {
    "window": "28d",
    "availability": 99.9,
    "threshold": "250ms",
    "target": 99.0,
    "warning": 0.1,
    "critical": 0.25,
    "accuracy": 0.8,
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with credit-default alone (its artifact and holdout set), shared by the examples."""
    root = tmp_path_factory.mktemp("ranges")
    (root / "specs").mkdir()
    shutil.copy(SPECS / "modelops.yaml", root / "specs")
    for directory in ("models/credit-default", "data/credit-default"):
        shutil.copytree(REPO / directory, root / directory)
    return root


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=VALUES)
@example(values={**ORDINARY, "availability": 70.0})  # wrote `0+-124x60`, which promtool cannot parse
@example(values={**ORDINARY, "availability": 99.99999999999})  # tests failed; now refused: over the limit
@example(values={**ORDINARY, "availability": 99.9999999, "target": 99.9999999, "window": "3d"})  # limit
@example(values={**ORDINARY, "availability": 5e-324, "target": 1e-9, "window": "400d"})  # nothing can page
@example(values={**ORDINARY, "critical": math.inf})  # tests failed; now refused
@example(values={**ORDINARY, "warning": 10.0, "critical": 10.000000000000002})  # above the limit
@example(values={**ORDINARY, "warning": 9.999999999999998, "critical": 10.0})  # a float apart, at the limit
@example(values={**ORDINARY, "warning": 5e-324, "critical": 1e-300, "window": "2d23h59m59s999ms"})
@example(values={**ORDINARY, "accuracy": math.nan})
def test_every_accepted_value_compiles_into_passing_rule_tests(
    workspace: Path, values: dict[str, Any]
) -> None:
    text = spec_with(values)
    spec = workspace / "specs" / "credit-default.yaml"
    spec.write_text(text)
    validated = modelops("validate", workspace / "specs")
    assert "internal error" not in validated.err
    if not expected_to_pass(values):
        event("refused")
        assert validated.code == 1, validated.out + validated.err
        errors = re.findall(r"credit-default\.yaml:(\d+):\d+: error: ", validated.out + validated.err)
        assert errors, validated.out + validated.err
        assert {int(line) for line in errors} <= _lines_of_values(text), validated.out
        return
    event("accepted")
    assert validated.code == 0, validated.out + validated.err
    out = workspace / "out"
    shutil.rmtree(out, ignore_errors=True)
    compiled = modelops("compile", workspace / "specs", "--env", "production", "--out", out)
    assert compiled.code == 0, compiled.out + compiled.err
    model_dir = out / MODEL_DIR
    assert "+-" not in (model_dir / "rules.test.yaml").read_text()
    assert_rules_pass(model_dir)


def test_percentages_keep_the_written_decimal() -> None:
    """The error budget comes from the decimal the author wrote, not from 1 - 0.999."""
    assert Percentage.parse(99.9).budget == 0.001
    assert Percentage.parse(99.9).ratio == 0.999
    assert Percentage.parse(99.9999999).budget == 1e-9
    assert str(Percentage.parse(99.9999999)) == "99.9999999"
    assert str(Percentage.parse(70)) == "70"
    # Rules print thresholds exactly: 15 digits when they read back the same, else all of them.
    assert [number(v) for v in (2.0, 13.44, 1e-9, 0.9999999999999999)] == [
        "2",
        "13.44",
        "1e-09",
        "0.9999999999999999",
    ]


def test_thresholds_a_float_below_1_stay_below_1(cli: Callable[..., Result], project: Path) -> None:
    """Rounded to 15 digits, 0.9999999999999999 was 1: an alert that can never fire, and a test that fails."""
    _edit(project, "    alerts:\n", "    alerts:\n      invalidInputRatio: 0.9999999999999999\n")
    _edit(project, "psi: {warning: 0.1, critical: 0.25}", "psi: {warning: 9.999999999999998, critical: 10}")
    assert cli("compile", project / "specs").code == 0
    model_dir = project / "generated" / MODEL_DIR
    assert "> 0.9999999999999999" in (model_dir / "rules.yaml").read_text()
    assert_rules_pass(model_dir)


# --- Regression tests for the values reported in the issue, through the CLI --------------------


def _edit(project: Path, old: str, new: str, spec: str = "credit-default.yaml") -> int:
    """Replace text in a spec of the project copy; returns the line of the change."""
    path = project / "specs" / spec
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def test_availability_70_compiles_and_its_tests_pass(cli: Callable[..., Result], project: Path) -> None:
    line = _edit(project, "availability: 99.9", "availability: 70")
    validated = cli("validate", project / "specs")
    assert validated.code == 0, validated.out
    assert f"credit-default.yaml:{line}:" in validated.out
    assert "its page burn-rate alert can never fire" in validated.out
    assert "92.56%" in validated.out
    assert cli("compile", project / "specs").code == 0
    model_dir = project / "generated" / MODEL_DIR
    tests = (model_dir / "rules.test.yaml").read_text()
    assert "+-" not in tests
    assert_rules_pass(model_dir)
    cases = yaml.safe_load(tests)["tests"]
    fast = [c for c in cases if c["alert_rule_test"][0]["alertname"] == "ModelAvailabilityBudgetBurnFast"]
    assert fast and not any(c["alert_rule_test"][0]["exp_alerts"] for c in fast)  # it cannot fire


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("availability: 99.9", "availability: 99.99999999999", "above the limit of 99.9999999"),
        ("target: 99}", "target: 99.999999999}", "above the limit of 99.9999999"),
        ("availability: 99.9", "availability: .nan", "expected a percentage such as 99.9, got nan"),
        ("critical: 0.25}", "critical: .inf}", "critical: input should be a finite number"),
        ("warning: 0.1,", "warning: .nan,", "warning: input should be a finite number"),
        ("critical: 0.25}", "critical: 25}", "less than or equal to 10"),
        ("accuracy: {min: 0.80}", "accuracy: {min: .nan}", "min: input should be a finite number"),
        ("window: 28d", "window: 72h1d", "write each unit once, from largest to smallest"),
        ("threshold: 250ms", "threshold: 250ms1s", "write each unit once, from largest to smallest"),
    ],
)
def test_values_that_broke_the_output_are_refused_at_their_line(
    cli: Callable[..., Result], project: Path, old: str, new: str, message: str
) -> None:
    line = _edit(project, old, new)
    result = cli("validate", project / "specs")
    assert result.code == 1, result.out
    assert re.search(rf"credit-default\.yaml:{line}:\d+: error: .*{re.escape(message)}", result.out), (
        result.out
    )
    assert cli("compile", project / "specs").code == 1


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("r2: {min: .nan}", "min: input should be a finite number"),
        ("r2: {min: .inf}", "min: input should be a finite number"),
        ("r2: {min: 1.5}", "gate 'r2' is at most 1 (a perfect fit), so min 1.5 can never pass"),
        ("rmse: {max: .inf}", "max: input should be a finite number"),
    ],
)
def test_regression_gates_that_can_never_pass_are_refused(
    cli: Callable[..., Result], project: Path, gate: str, message: str
) -> None:
    text = (project / "specs/loan-risk-score.yaml").read_text()
    (old,) = re.findall(r"r2: \{min: [^}]*\}", text)
    line = _edit(project, old, gate, spec="loan-risk-score.yaml")
    result = cli("validate", project / "specs")
    assert result.code == 1, result.out
    assert re.search(rf"loan-risk-score\.yaml:{line}:\d+: error: .*{re.escape(message)}", result.out), (
        result.out
    )

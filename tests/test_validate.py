"""`modelops validate`: the bundled specs, semantic rules, policies, formats and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import Result, spec_text


def write(root: Path, name: str, text: str) -> Path:
    path = root / "specs" / name
    path.write_text(text)
    return path


def test_bundled_specs_are_valid(cli: Callable[..., Result]) -> None:
    result = cli("validate", "specs")
    assert result.code == 0, result.out
    assert "2 spec files valid (4 models across 2 environments)" in result.out


def test_default_path_is_specs(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    monkeypatch.chdir(project)
    assert cli("validate").code == 0


def test_missing_path_is_a_usage_error(cli: Callable[..., Result]) -> None:
    result = cli("validate", "no/such/dir")
    assert result.code == 2
    assert "no/such/dir: no such file or directory" in result.err


def test_missing_project_file_is_a_usage_error(cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(spec_text())
    result = cli("validate", tmp_path / "m.yaml")
    assert result.code == 2
    assert "no modelops.yaml found" in result.err


def test_unknown_format_is_a_usage_error(cli: Callable[..., Result]) -> None:
    assert cli("validate", "--format", "xml", "specs").code == 2


def test_unknown_environment_is_a_usage_error(cli: Callable[..., Result]) -> None:
    result = cli("validate", "specs", "--env", "qa")
    assert result.code == 2
    assert "unknown environment qa" in result.err


def test_directory_named_like_a_spec_is_searched(cli: Callable[..., Result], project: Path) -> None:
    target = project / "specs" / "dir.yaml"
    target.mkdir()
    (target / "inner.yaml").write_text(spec_text("inner"))
    result = cli("validate", "--format", "json", project / "specs")
    assert result.code == 0, result.err
    assert "inner" in {model["name"] for model in json.loads(result.out)["models"]}


CASES = {
    "replicas": ("{min: 2, max: 4}", "{min: 4, max: 2}", "replicas.min (4) is greater than replicas.max (2)"),
    "limits": (
        "    replicas: {min: 2, max: 4}\n",
        "    replicas: {min: 2, max: 4}\n    resources:\n      requests: {memory: 2Gi}\n      limits: {memory: 1Gi}\n",
        "memory limit 1Gi is below its request 2Gi",
    ),
    "slo": ("availability: 99.9", "availability: 0", "percentage must be greater than 0"),
    "latency": (
        "      availability: 99.9\n",
        "      availability: 99.9\n      latency: {threshold: 250ms, target: 100}\n",
        "spec.monitoring.slo.latency.target: percentage must be greater than 0 and less than 100",
    ),
    "gate-task": (
        "accuracy: {min: 0.8}",
        "r2: {min: 0.8}",
        "gate 'r2' does not apply to a classification model",
    ),
    "gate-direction": ("accuracy: {min: 0.8}", "accuracy: {max: 0.8}", "give it a min, not a max"),
    "gate-range": ("accuracy: {min: 0.8}", "accuracy: {min: 80}", "a fraction between 0 and 1"),
    "name": ("name: demo-model", "name: demo.model", "not a DNS-1123 label"),
    "ports": (
        "    replicas: {min: 2, max: 4}\n",
        "    replicas: {min: 2, max: 4}\n    metricsPort: 8080\n",
        "metricsPort must differ from port",
    ),
    "window": (
        "      availability: 99.9\n",
        "      availability: 99.9\n      window: 1d\n",
        "SLO window 1d must be between 3d and 400d",
    ),
    "target-feature": ("target: label", "target: income", "also listed as an input feature"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_semantic_rules(cli: Callable[..., Result], project: Path, case: str) -> None:
    old, new, message = CASES[case]
    text = spec_text()
    assert old in text
    path = write(project, "demo.yaml", text.replace(old, new, 1))
    result = cli("validate", path)
    assert result.code == 1, result.out
    assert message in result.out, result.out
    assert "specs/demo.yaml:" in result.out


def test_duplicate_model_names_across_files(cli: Callable[..., Result], project: Path) -> None:
    write(project, "a.yaml", spec_text("twin"))
    write(project, "b.yaml", spec_text("twin"))
    result = cli("validate", project / "specs")
    assert result.code == 1
    assert "b.yaml:4:9: error: model 'twin' is already defined in" in result.out
    assert "a.yaml (line 4); model names must be unique per namespace" in result.out


def test_overlay_names_must_be_declared(cli: Callable[..., Result], project: Path) -> None:
    path = write(
        project, "demo.yaml", spec_text() + "  environments:\n    stagign: {serving: {port: 8081}}\n"
    )
    result = cli("validate", path)
    assert result.code == 1
    assert "demo.yaml:27:5: error: spec.environments: environment 'stagign' is not declared" in result.out
    assert "did you mean 'staging'?" in result.out


def test_overlay_errors_point_at_the_overlay(cli: Callable[..., Result], project: Path) -> None:
    path = write(
        project, "demo.yaml", spec_text() + "  environments:\n    production:\n      serving: {port: http}\n"
    )
    result = cli("validate", path)
    assert result.code == 1
    assert "demo.yaml:28:23: error: spec.serving.port: input should be a valid integer" in result.out


def test_policy_severity_warning_does_not_fail(cli: Callable[..., Result], project: Path) -> None:
    text = spec_text().replace("    alerts:\n      runbook: https://runbooks.example/demo-model\n", "")
    path = write(project, "demo.yaml", text)
    result = cli("validate", path)
    assert result.code == 0, result.out
    assert "warning: policy 'production-runbook' (production): needs a runbook URL" in result.out
    assert cli("validate", "--strict", path).code == 1


def test_policy_only_applies_to_its_environments(cli: Callable[..., Result], project: Path) -> None:
    text = spec_text() + "  environments:\n    staging: {serving: {replicas: {min: 1, max: 1}}}\n"
    assert cli("validate", write(project, "demo.yaml", text)).code == 0
    text = spec_text() + "  environments:\n    production: {serving: {replicas: {min: 1, max: 1}}}\n"
    result = cli("validate", write(project, "demo.yaml", text))
    assert result.code == 1
    assert (
        "policy 'production-high-availability' (production): replicas.min is 1, needs at least 2"
        in result.out
    )


def test_project_file_errors_are_located(cli: Callable[..., Result], project: Path) -> None:
    project_file = project / "specs" / "modelops.yaml"
    text = project_file.read_text().replace(
        "environments: [production]\n    severity: error", "environments: [prod]\n    severity: error"
    )
    project_file.write_text(text)
    result = cli("validate", project / "specs")
    assert result.code == 1
    assert "modelops.yaml:" in result.out
    assert "policy 'production-high-availability' names environment 'prod'" in result.out


@pytest.mark.parametrize(("context", "refused"), [("staging", True), ("qa-cluster", False)])
def test_two_environments_in_one_namespace_of_one_cluster_are_refused(
    cli: Callable[..., Result], project: Path, context: str, refused: bool
) -> None:
    project_file = project / "specs" / "modelops.yaml"
    qa = f"  - name: qa\n    namespace: ml-staging\n    context: {context}\n"
    project_file.write_text(
        project_file.read_text().replace("  - name: production\n", qa + "  - name: production\n")
    )
    result = cli("validate", project / "specs")
    message = (
        "environment 'qa' uses namespace 'ml-staging' in context 'staging', as environment 'staging' does"
    )
    assert (message in result.out) == refused and result.code == (1 if refused else 0), result.out
    if refused:
        line = project_file.read_text().splitlines().index("  - name: qa") + 2  # its namespace
        assert f"modelops.yaml:{line}:" in result.out


def test_json_format(cli: Callable[..., Result], project: Path) -> None:
    path = write(project, "demo.yaml", spec_text().replace("{min: 2, max: 4}", "{min: 4, max: 2}"))
    result = cli("validate", "--format", "json", path)
    assert result.code == 1
    payload = json.loads(result.out)
    assert payload["valid"] is False
    (diag,) = [d for d in payload["diagnostics"] if d["severity"] == "error"]
    assert diag["line"] == 20 and diag["severity"] == "error" and diag["file"].endswith("specs/demo.yaml")


def test_json_format_lists_resolved_models(cli: Callable[..., Result]) -> None:
    payload = json.loads(cli("validate", "--format", "json", "specs").out)
    assert payload["valid"] is True
    assert {(m["name"], m["environment"]) for m in payload["models"]} == {
        ("credit-default", "staging"),
        ("credit-default", "production"),
        ("loan-risk-score", "staging"),
        ("loan-risk-score", "production"),
    }


def test_github_annotations(cli: Callable[..., Result], project: Path) -> None:
    path = write(project, "demo.yaml", spec_text().replace("name: demo-model", "name: Demo"))
    result = cli("validate", "--format", "github", path)
    assert result.code == 1
    line = result.out.splitlines()[0]
    assert line.startswith("::error file=")
    assert (
        "demo.yaml,line=4,col=9,title=modelops invalid::metadata.name: 'Demo' is not a DNS-1123 label" in line
    )


def test_no_color_is_respected(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from compiler.cli.report import use_color

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Tty())
    assert not use_color(io.StringIO())


def test_version(cli: Callable[..., Result]) -> None:
    from compiler import __version__

    assert cli("version").out.strip() == f"modelops {__version__}"


MARKER_KEYS = {
    # where the key goes, the line it lands on, the error
    "top": (spec_text() + "'[key]': 1\n", 26, 1, "unknown field '[key]' at the top level"),
    "metadata": (
        spec_text().replace("  team: risk-analytics\n", "  team: risk-analytics\n  '[key]': 1\n"),
        6,
        3,
        "unknown field '[key]' in metadata",
    ),
    "labels": (
        spec_text().replace("  team: risk-analytics\n", "  team: risk-analytics\n  labels: {'[key]': x}\n"),
        6,
        12,
        "metadata.labels: key '[key]': '[key]' is not a Kubernetes label key",
    ),
    "gates": (
        spec_text().replace("accuracy: {min: 0.8}", "'[key]': {min: 0.8}"),
        18,
        7,
        "unknown field '[key]' in spec.evaluation.gates",
    ),
    "relative-gates": (
        spec_text().replace("accuracy: {min: 0.8}", "relative: {'[key]': {maxDrop: 0.01}}"),
        18,
        18,
        "spec.evaluation.gates.relative: key '[key]': input should be 'accuracy'",
    ),
}


@pytest.mark.parametrize("where", sorted(MARKER_KEYS))
def test_a_key_named_like_pydantics_key_marker_is_reported_at_itself(
    cli: Callable[..., Result], project: Path, where: str
) -> None:
    text, line, column, message = MARKER_KEYS[where]
    result = cli("validate", write(project, "demo.yaml", text))
    assert result.code == 1, result.out + result.err
    assert f"specs/demo.yaml:{line}:{column}: error: {message}" in result.out


def test_a_key_named_like_pydantics_key_marker_in_the_project_file(
    cli: Callable[..., Result], project: Path
) -> None:
    project_file = project / "specs" / "modelops.yaml"
    project_file.write_text(project_file.read_text() + "'[key]': null\n")
    lines = project_file.read_text().count("\n")
    result = cli("validate", project / "specs")
    assert result.code == 1, result.out + result.err
    assert f"modelops.yaml:{lines}:1: error: unknown field '[key]' at the top level" in result.out


def test_team_is_any_label_value(cli: Callable[..., Result], project: Path) -> None:
    """The team is written as a Kubernetes label value and an alert label: any valid one will do."""
    text = spec_text().replace("team: risk-analytics", "team: data.science_team-1")
    write(project, "demo.yaml", text)
    assert cli("validate", project / "specs").code == 0
    assert cli("compile", project / "specs", "--out", project / "generated").code == 0
    model_dir = project / "generated/production/ml-production/demo-model"
    deployment = yaml.safe_load((model_dir / "deployment.yaml").read_text())
    assert deployment["metadata"]["labels"]["modelops.dev/team"] == "data.science_team-1"
    rules = yaml.safe_load((model_dir / "rules.yaml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    assert alerts and all(alert["labels"]["team"] == "data.science_team-1" for alert in alerts)


@pytest.mark.parametrize(
    ("team", "message"),
    [
        ("'data science!'", "'data science!' is not a Kubernetes label value"),
        ("'-risk'", "did you mean 'risk'?"),
        ("''", "string should have at least 1 character"),
        ("t" + "e" * 63, "string should have at most 63 characters"),
    ],
)
def test_team_must_be_a_label_value(
    cli: Callable[..., Result], project: Path, team: str, message: str
) -> None:
    text = spec_text().replace("team: risk-analytics", f"team: {team}")
    result = cli("validate", write(project, "demo.yaml", text))
    assert result.code == 1
    (row,) = [row for row in result.out.splitlines() if "demo.yaml:5:9: error: metadata.team: " in row]
    assert message in row


def _with(metadata_labels: str = "", alert_labels: str = "") -> str:
    text = spec_text()
    if metadata_labels:
        text = text.replace(
            "  team: risk-analytics\n", f"  team: risk-analytics\n  labels: {metadata_labels}\n"
        )
    if alert_labels:
        text = text.replace("    alerts:\n", f"    alerts:\n      labels: {alert_labels}\n")
    return text


def _mapping(count: int, value: str = "v") -> str:
    return "{" + ", ".join(f"l{i}: {value}" for i in range(count)) + "}"


LABEL_BOUNDS = {
    "metadata-count": (_with(metadata_labels=_mapping(65)), "metadata.labels: has 65 labels; at most 64"),
    "alert-count": (
        _with(alert_labels=_mapping(65, "x" * 300)),  # one error for the map, not one per label
        "spec.monitoring.alerts.labels: has 65 labels; at most 64 are allowed\n1 error,",
    ),
    "alert-value-length": (
        _with(alert_labels="{pager: " + "x" * 257 + "}"),
        "spec.monitoring.alerts.labels.pager: string should have at most 256 characters",
    ),
    "alert-value-empty": (
        _with(alert_labels="{pager: ''}"),
        "spec.monitoring.alerts.labels.pager: string should have at least 1 character",
    ),
    "alert-name-length": (
        _with(alert_labels="{" + "p" * 129 + ": x}"),
        "string should have at most 128 characters",
    ),
    "metadata-value-length": (
        _with(metadata_labels="{tier: " + "x" * 64 + "}"),
        "is not a Kubernetes label value",
    ),
    "metadata-key-prefix": (
        _with(metadata_labels="{" + "a" * 254 + "/tier: x}"),
        "the prefix before '/' is 254 characters; a label key prefix (a DNS subdomain) has at most 253",
    ),
}


@pytest.mark.parametrize("case", sorted(LABEL_BOUNDS))
def test_labels_are_bounded(cli: Callable[..., Result], project: Path, case: str) -> None:
    text, message = LABEL_BOUNDS[case]
    result = cli("validate", write(project, "demo.yaml", text))
    assert result.code == 1, result.out
    assert message in result.out, result.out


def test_labels_at_their_limits_compile(cli: Callable[..., Result], project: Path) -> None:
    text = _with(
        metadata_labels="{"
        + ", ".join([f"l{i}: v" for i in range(63)] + ["a" * 253 + "/" + "b" * 63 + ": " + "c" * 63])
        + "}",
        alert_labels="{" + ", ".join([f"l{i}: v" for i in range(63)] + ["p" * 128 + ": " + "x" * 256]) + "}",
    )
    write(project, "demo.yaml", text)
    result = cli("compile", project / "specs", "--out", project / "generated")
    assert result.code == 0, result.out + result.err


def _alias_bomb(value_size: int, aliases: int) -> str:
    labels = f"      labels:\n        pager: &big {'x' * value_size}\n"
    labels += "".join(f"        l{i}: *big\n" for i in range(aliases))
    return spec_text().replace("    alerts:\n", "    alerts:\n" + labels)


@pytest.mark.parametrize(("value_size", "aliases"), [(100_000, 5_000), (10_000, 1_000), (1_000, 1_000)])
@pytest.mark.parametrize("command", ["validate", "compile"])
def test_alias_bombs_through_alert_labels_are_refused(
    cli: Callable[..., Result], project: Path, value_size: int, aliases: int, command: str
) -> None:
    """200 KB and 20 KB files that once expanded to gigabytes of rules: a clear error, quickly."""
    import tracemalloc

    path = write(project, "demo.yaml", _alias_bomb(value_size, aliases))
    assert path.stat().st_size < 210_000
    tracemalloc.start()
    try:
        out = ("--out", project / "generated") if command == "compile" else ()
        result = cli(command, project / "specs", *out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.code == 1, result.out + result.err
    assert not (project / "generated").exists()
    if value_size * aliases > 2 * 1024 * 1024:
        assert "demo.yaml:" in result.out and "holds more than 2 MiB of keys and values" in result.out
    else:  # small enough to expand: the label bounds refuse it
        assert "spec.monitoring.alerts.labels: has 1001 labels; at most 64 are allowed" in result.out
    assert peak < 64 * 1024 * 1024

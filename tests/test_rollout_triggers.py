"""Only what the runtime reads rolls the pods; only what a model directory is rendered from re-renders it.

The Deployment carries a checksum of the runtime configuration, so any byte of that
configuration the runtime ignores (an alert threshold) would restart every pod when edited;
and the manifest's per-model input hash decides which directories compile renders again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result

Cli = Callable[..., Result]


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def compiled(cli: Cli, project: Path) -> dict[str, bytes]:
    result = cli("compile", project / "specs")
    assert result.code == 0, result.err
    return tree(project / "generated")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_a_drift_alert_threshold_change_restarts_no_pod(cli: Cli, project: Path) -> None:
    before = compiled(cli, project)
    edit(
        project / "specs/credit-default.yaml",
        "psi: {warning: 0.1, critical: 0.25}",
        "psi: {warning: 0.15, critical: 0.3}",
    )
    after = compiled(cli, project)

    changed = {path for path in before if before[path] != after.get(path)}
    credit = {p for p in before if "/credit-default/" in p}
    assert {p for p in credit if p.endswith(("/rules.yaml", "/prometheusrule.yaml"))} <= changed
    assert b"> 0.15" in after["production/ml-production/credit-default/rules.yaml"]
    pods = {p for p in before if p.endswith(("/deployment.yaml", "/configmap.yaml"))}
    assert len(pods) == 8  # 4 model environments
    assert not pods & changed, "an alert threshold is not the runtime's: no Deployment may change"


def test_a_kube_context_or_namespace_creation_change_renders_no_model_again(cli: Cli, project: Path) -> None:
    """Neither reaches a model's directory: `apply` picks the cluster, the Namespace object
    lies at the environment's level."""
    before = compiled(cli, project)
    manifest = project / "generated/.modelops-manifest.json"
    inputs = json.loads(manifest.read_text())["inputs"]
    edit(
        project / "specs/modelops.yaml",
        "context: staging\n    createNamespace: true",
        "context: east\n    createNamespace: false",
    )
    edit(project / "specs/modelops.yaml", "context: production\n", "context: production-eu\n")

    result = cli("compile", project / "specs")
    assert result.code == 0, result.err
    assert "rendered 0, reused 4 unchanged" in result.out
    assert json.loads(manifest.read_text())["inputs"] == inputs
    after = tree(project / "generated")
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    # Only the staging Namespace goes; every file in a model's directory keeps its bytes.
    assert changed == {
        ".modelops-manifest.json",
        "staging/kustomization.yaml",
        "staging/ml-staging/namespace.yaml",
    }

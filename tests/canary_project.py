"""Canary specs in a copy of the bundled project (the `project` fixture), for the canary tests.

A candidate needs an artifact and an evaluation record. Compiling only pins the artifact, never
loads it, so a few bytes do; its record is the stable's, under the candidate's version and pin
(the same baselines: the analysis tests then shift traffic away from them on purpose).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from compiler import api
from tests.conftest import REPO, SPECS

STABLE = {"credit-default": "1.4.0", "loan-risk-score": "2.1.0"}
CANDIDATE = {"credit-default": "1.5.0", "loan-risk-score": "2.2.0"}
CANARY = """\
  rollout:
    strategy: canary
    canary:
      steps: [{weight: 10, pause: 15m}, {weight: 50, pause: 1d}]
      analysis: {interval: 1m, failureLimit: 2, minRequests: 50}
"""


def copy_project(root: Path) -> Path:
    """The bundled project under `root` (as the `project` fixture makes it), for module fixtures."""
    shutil.copytree(SPECS, root / "specs")
    for directory in ("models", "data", "evaluations"):
        shutil.copytree(REPO / directory, root / directory)
    return root


def add_candidate(root: Path, model: str, version: str | None = None) -> dict[str, str]:
    """A candidate artifact and its evaluation record; the spec's `candidate` section for it."""
    version = version or CANDIDATE[model]
    uri = f"models/{model}/{version}/model.skops"
    artifact = root / uri
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(f"candidate {model} {version}".encode())
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    record = json.loads((root / "evaluations" / model / f"{STABLE[model]}.json").read_text())
    record.update(version=version, artifact_sha256=sha)
    (root / "evaluations" / model / f"{version}.json").write_text(
        json.dumps(record, indent=2, sort_keys=True)
    )
    return {"version": version, "uri": uri, "sha256": sha}


def edit_spec(
    root: Path, model: str, *, candidate: dict[str, str] | None = None, rollout: str = CANARY
) -> Path:
    """The model's spec with a `candidate` (when given) and the `rollout` lines after its model section."""
    path = root / "specs" / f"{model}.yaml"
    text = path.read_text()
    lines = rollout
    if candidate is not None:
        lines = "  candidate: " + json.dumps(candidate) + "\n" + lines
    path.write_text(text.replace("  evaluation:\n", lines + "  evaluation:\n", 1))
    return path


def promote(root: Path, model: str, candidate: dict[str, str]) -> None:
    """The candidate becomes the model, and the candidate goes (the edit that ends a canary)."""
    path = root / "specs" / f"{model}.yaml"
    text = path.read_text()
    stable = yaml.safe_load(text)["spec"]["model"]
    text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("  candidate:"))
    for key in ("version", "uri", "sha256"):
        text = text.replace(f"    {key}: {stable[key]}\n", f"    {key}: {candidate[key]}\n", 1)
    path.write_text(text)


def model_files(root: Path, env: str = "production") -> dict[str, dict[str, bytes]]:
    """Every rendered file of `env`, by model and file name (through the library API)."""
    project = api.check(api.Options(paths=[root / "specs"], environments=[env]))
    found: dict[str, dict[str, bytes]] = {}
    for path, content in api.render(project).files.items():
        parts = path.split("/")
        if parts[0] == env and len(parts) == 4:
            found.setdefault(parts[2], {})[parts[3]] = content
    return found


def load(content: bytes) -> Any:
    return yaml.safe_load(content)

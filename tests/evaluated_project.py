"""A copy of the bundled project, evaluated and compiled afresh, for tests of what the
evaluation record feeds: drift bins, prediction baselines and the rules built on them.

The committed records and generated/ are refreshed by the lead, not by tests; this copy
shows what the current code makes of the bundled specs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO, SPECS


def evaluated_project(root: Path, edit: Callable[[Path], None] | None = None) -> Path:
    """`root` with specs, artifacts, holdouts; `modelops evaluate` and `compile` run in it,
    after `edit` (given the copied specs folder) has changed what a test needs changed.

    Returns the compiled tree (root / "generated").
    """
    shutil.copytree(SPECS, root / "specs")
    for directory in ("models", "data", "evaluations"):
        shutil.copytree(REPO / directory, root / directory)
    if edit is not None:
        edit(root / "specs")
    for command in (["evaluate", "specs/"], ["compile", "specs/", "--out", "generated", "--full"]):
        done = subprocess.run(
            [sys.executable, "-m", "compiler", *command], cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return root / "generated"


def compiled_config(generated: Path, env: str, namespace: str, model: str) -> dict[str, Any]:
    """The runtime configuration the ConfigMap of one model carries."""
    config_map = yaml.safe_load((generated / env / namespace / model / "configmap.yaml").read_text())
    config: dict[str, Any] = json.loads(config_map["data"]["runtime.json"])
    return config

"""`modelops schema` validates the bundled specs; the CLI stays light to import."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import jsonschema
import yaml

from tests.conftest import REPO, SPECS, Result


def test_schema_validates_bundled_specs(cli: Callable[..., Result]) -> None:
    model_schema = json.loads(cli("schema").out)
    project_schema = json.loads(cli("schema", "--kind", "Project").out)
    jsonschema.Draft202012Validator.check_schema(model_schema)
    for path in SPECS.glob("*.yaml"):
        schema = project_schema if path.name == "modelops.yaml" else model_schema
        jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_schema_rejects_what_validate_rejects(cli: Callable[..., Result]) -> None:
    schema = json.loads(cli("schema").out)
    spec = yaml.safe_load((SPECS / "credit-default.yaml").read_text())
    spec["spec"]["serving"]["replica"] = 3
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(spec))


def test_committed_schema_files_are_fresh(cli: Callable[..., Result]) -> None:
    assert (SPECS / "schema" / "model.json").read_text() == cli("schema").out
    assert (SPECS / "schema" / "project.json").read_text() == cli("schema", "--kind", "Project").out


HEAVY = ("sklearn", "kubernetes", "numpy", "scipy", "jinja2")


def test_validate_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from compiler.cli.main import main\n"
        "assert main(['validate', 'specs']) == 0\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_help_imports_neither_pydantic_nor_yaml() -> None:
    code = (
        "import sys\n"
        "from compiler.cli.main import main\n"
        "try:\n    main(['validate', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml', 'sklearn', 'kubernetes')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_runs() -> None:
    exe = REPO / ".venv" / "bin" / "modelops"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "compiler"]
    out = subprocess.run([*command, "validate", "--help"], capture_output=True, text=True, check=True)
    assert "--format {text,json,github}" in out.stdout

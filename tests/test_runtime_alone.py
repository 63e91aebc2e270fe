"""The runtime ships alone: `modelops serve` imports none of the compiler, and the `runtime`
extra with requirements/runtime.lock (what the image installs) holds everything it imports.

The server runs for real (load a compiled config, fetch and load the model, answer an
inference); Python's own import log (PYTHONPROFILEIMPORTTIME) lists every module it imported,
the lazy ones included.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO, Result
from tests.runtime import columns, holdout_rows, runtime_config, start_runtime
from tests.test_lock import LOCK, read_lock

RUNTIME_LOCK = REPO / "requirements/runtime.lock"
COMPILE_TIME = ("spec", "resolve", "evaluate", "targets", "bundle", "gitops", "reconcile", "review")
# Libraries only the compiler uses: if one is imported, the image (which lacks them) fails.
NOT_IN_THE_IMAGE = ("jinja2", "git", "kubernetes", "grafana_foundation_sdk")
# The s3 and gcs extras, which the image leaves out: without them fetch says which to install.
OPTIONAL_EXTRAS = ("boto3", "google")
CREDIT = ("production", "ml-production", "credit-default")


def imported_by_the_server(cli: Callable[..., Result], project: Path, tmp_path: Path) -> set[str]:
    """Every module a real `modelops serve` imported while loading and answering one request."""
    assert cli("compile", project / "specs").code == 0
    config = runtime_config(*CREDIT, root=project)
    runtime = start_runtime(config, tmp_path, cwd=project)
    try:
        runtime.wait_ready()
        rows = holdout_rows("data/credit-default/holdout.csv", limit=3)
        status, _ = runtime.request(
            "POST", "/v2/models/credit-default/infer", columns(rows, config["model"]["features"])
        )
        assert status == 200
    finally:
        assert runtime.stop() == 0
    log = runtime.log.read_text().splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in log if line.startswith("import time:") and "|" in line}


@pytest.fixture
def server_modules(
    cli: Callable[..., Result], project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> set[str]:
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # the runtime inherits the environment
    return imported_by_the_server(cli, project, tmp_path)


def test_the_server_imports_nothing_of_the_compiler(server_modules: set[str]) -> None:
    assert {
        "compiler.cli.main",
        "compiler.serving.server",
        "compiler.serving.config",
        "sklearn",
    } <= server_modules
    compile_time = sorted(
        name
        for name in server_modules
        if name.split(".")[:2][-1] in COMPILE_TIME and name.startswith("compiler.")
    )
    assert compile_time == []
    assert sorted(name for name in server_modules if name.split(".")[0] in NOT_IN_THE_IMAGE) == []


def imports_of(module: str) -> set[str]:
    """The top-level names a module's source imports, lazily or not (relative imports aside)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    found: set[str] = set()
    for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_runtime_lock_holds_every_library_the_servers_code_imports(server_modules: set[str]) -> None:
    """What the image installs is enough: no import in modelops' own server code can fail there.

    (Libraries import optional ones of their own, such as scikit-learn's pytest helpers;
    those are guarded, so only modelops' modules are read.)
    """
    locked = {pin.name for pin in read_lock(RUNTIME_LOCK.read_text())}
    owners = metadata.packages_distributions()
    ours = sorted(name for name in server_modules if name.startswith("compiler."))
    libraries = set().union(*map(imports_of, ours)) - set(sys.stdlib_module_names) - {"compiler"}
    libraries -= set(OPTIONAL_EXTRAS)
    missing = {(top, d) for top in libraries for d in map(canonicalize_name, owners.get(top, [top]))}
    assert {(top, d) for top, d in missing if d not in locked} == set()
    assert {"sklearn", "skops", "starlette", "uvicorn", "pydantic", "prometheus_client"} <= libraries


def _pyproject() -> dict[str, list[str]]:
    with (REPO / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    return {"dependencies": project["dependencies"], **project["optional-dependencies"]}


def test_the_runtime_extra_repeats_the_projects_ranges_and_leaves_the_compilers_out() -> None:
    declared = _pyproject()
    runtime = {canonicalize_name(r.name): r for r in map(Requirement, declared.pop("runtime"))}
    assert not {"jinja2", "gitpython", "kubernetes", "grafana-foundation-sdk", "modelops"} & runtime.keys()
    for group, texts in declared.items():
        for other in map(Requirement, texts):
            same = runtime.get(canonicalize_name(other.name))
            assert same is None or same.specifier == other.specifier, f"{other} in {group}, {same} in runtime"


def test_the_runtime_lock_is_the_dev_locks_subset_for_the_runtime_extra() -> None:
    """`make lock` writes both: the image runs the versions, and hashes, the tests ran."""
    dev = {(pin.name, str(pin.requirement.marker)): pin for pin in read_lock(LOCK.read_text())}
    pins = read_lock(RUNTIME_LOCK.read_text())
    for pin in pins:
        tested = dev.get((pin.name, str(pin.requirement.marker)))
        assert tested is not None, f"{pin.requirement} is not in {LOCK.name}"
        assert (pin.version, sorted(pin.hashes)) == (tested.version, sorted(tested.hashes)), pin.name
    locked = {pin.name: pin.version for pin in pins}
    for requirement in map(Requirement, _pyproject()["runtime"]):
        version = locked.get(canonicalize_name(requirement.name))
        assert version is not None and requirement.specifier.contains(version), (
            f"{requirement}: run `make lock`"
        )
    assert not {"jinja2", "gitpython", "kubernetes", "grafana-foundation-sdk"} & locked.keys()

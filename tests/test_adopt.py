"""Adopting modelops elsewhere: the wheel, installed outside the checkout, starts a project.

The README's "Getting started in your own repository" copies its commands from here. The
wheel is built once per module (`python -m build`, sdist then a wheel from that sdist, so
both are checked). The new virtual environment gets the wheel's dependencies from
requirements/dev.lock, hash-checked, with uv (its cache makes this seconds after the first
run), then the wheel itself with the user's own `pip install`; nothing of the checkout is on
its path. Building without isolation uses the locked setuptools already installed, so the
test needs no index for the build; `test_isolated_build` checks the isolated build too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from compiler import __version__
from tests.conftest import REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
LOCK = REPO / "requirements" / "dev.lock"
# Only what a user's checkout of their own project would hold: no trace of this one.
FORBIDDEN_TOP = ("tests/", "specs/", "models/", "data/", "generated/", "evaluations/", "bench/")


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


def _run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    built = _run(BIN / "python", "-m", "build", "--no-isolation", "--outdir", out, REPO)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dist(wheel, sdist)


def _locked_closure(extras: set[str]) -> set[str]:
    """Names of every distribution modelops[extras] needs here, from the installed metadata."""
    environment = {"extra": ""}
    wanted, seen = [Requirement(r) for r in metadata.requires("modelops") or []], set()
    queue = [r for r in wanted if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in extras)]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or name == "modelops":
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate(environment):
                queue.append(sub)
    return seen


def _lock_subset(names: set[str], target: Path) -> Path:
    """The entries of requirements/dev.lock for `names`, hashes included, as a requirements file."""
    blocks = re.split(r"\n(?=\S)", LOCK.read_text())
    chosen = [
        b for b in blocks if (m := re.match(r"([A-Za-z0-9_.-]+)==", b)) and canonicalize_name(m[1]) in names
    ]
    found = {canonicalize_name(re.match(r"([A-Za-z0-9_.-]+)==", b)[1]) for b in chosen}  # type: ignore[index]
    assert found == names, f"not in the lock: {sorted(names - found)}"
    target.write_text("\n".join(chosen) + "\n")
    return target


@pytest.fixture(scope="module")
def user_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the checkout with the wheel and the ml extra."""
    home = tmp_path_factory.mktemp("user")
    assert not home.resolve().is_relative_to(REPO)
    env_dir = home / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    requirements = _lock_subset(_locked_closure({"ml"}), home / "requirements.txt")
    installed = _run(
        BIN / "uv", "pip", "install", "--python", python, "--require-hashes", "--only-binary", ":all:",
        "--no-deps", "-r", requirements,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    # What the README tells a user to type (pipx does the same in a venv of its own).
    wheel = _run(python, "-m", "pip", "install", "--no-deps", "--no-index", dist.wheel)
    assert wheel.returncode == 0, wheel.stderr[-3000:]
    checked = _run(python, "-m", "pip", "check")
    assert checked.returncode == 0, checked.stdout
    return env_dir


def test_distributions_pass_twine_check(dist: Dist) -> None:
    result = _run(BIN / "twine", "check", "--strict", dist.wheel, dist.sdist)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_holds_the_package_and_its_data_only(dist: Dist) -> None:
    members = zipfile.ZipFile(dist.wheel).namelist()
    assert not [m for m in members if m.startswith(FORBIDDEN_TOP)]
    assert {m.split("/")[0] for m in members} == {"compiler", f"modelops-{__version__}.dist-info"}
    for needed in (
        "compiler/py.typed",
        "compiler/targets/docs/templates/model-card.md.j2",
        "compiler/review/templates/diff.md.j2",
        "compiler/scaffold/templates/modelops.yaml.j2",
        "compiler/scaffold/templates/gitignore",
        "compiler/spec/schemas/model.json",
        "compiler/spec/schemas/project.json",
    ):
        assert needed in members
    source_templates = {str(p.relative_to(REPO)) for p in (REPO / "compiler").rglob("templates/*.j2")}
    assert source_templates <= set(members)
    assert not [m for m in members if "__pycache__" in m or m.endswith(".pyc")]
    wheel_metadata = zipfile.ZipFile(dist.wheel).read(f"modelops-{__version__}.dist-info/METADATA").decode()
    for extra in ("ml", "runtime", "cluster", "s3", "gcs"):
        assert f"Provides-Extra: {extra}" in wheel_metadata


def test_sdist_builds_the_wheel_and_holds_no_demo_project(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    assert "compiler/spec/schemas/model.json" in names and "pyproject.toml" in names
    assert not [n for n in names if n.startswith(FORBIDDEN_TOP)]


def test_isolated_build_works(tmp_path: Path) -> None:
    """`python -m build` as a user runs it: build dependencies from the index, in isolation."""
    result = _run(BIN / "python", "-m", "build", "--wheel", "--outdir", tmp_path, REPO)
    if result.returncode != 0 and "Could not find a version" in result.stdout + result.stderr:
        pytest.skip("no package index reachable for an isolated build")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture
def user(user_venv: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """An empty directory outside the checkout and the environment a user's shell would have."""
    work = tmp_path / "shop-models"
    work.mkdir()
    env = {
        "PATH": f"{user_venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "NO_COLOR": "1",
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    yield work, env


def _sh(line: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one README command line in the user's shell, in their repository."""
    return subprocess.run(
        ["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_installed_command_comes_from_the_wheel(user: tuple[Path, dict[str, str]]) -> None:
    work, env = user
    where = _sh("python -c 'import compiler; print(compiler.__file__)'", work, env)
    assert where.returncode == 0 and "site-packages" in where.stdout
    assert not Path(where.stdout.strip()).resolve().is_relative_to(REPO)
    version = _sh("modelops --version", work, env)
    assert version.stdout.strip() == f"modelops {__version__}"


# Each line below is quoted verbatim in the README's "Getting started in your own repository".
GETTING_STARTED = [
    ("git init -b main", 0, ""),
    ("git remote add origin https://github.com/acme/shop-models.git", 0, ""),
    ("modelops init", 0, "wrote specs/modelops.yaml"),
    ("modelops validate", 0, "1 spec file valid (2 models across 2 environments)"),
    ("modelops evaluate", 0, "4 gates passed, 0 failed"),
    ("modelops compile", 0, "compiled 2 model environments"),
    ("modelops compile --check", 0, "is up to date"),
    ("git add -A && git commit -q -m 'Start modelops'", 0, ""),
    ("git switch -c more-replicas", 0, ""),
    ("sed -i 's/max: 4}/max: 6}/' specs/example-churn.yaml", 0, ""),
    ("modelops compile --check", 1, "is stale"),
    ("modelops diff --base HEAD", 1, "replicas 2..4 -> 2..6"),
    ("modelops compile", 0, "compiled"),
    ("modelops compile --check", 0, "is up to date"),
    ("git commit -q -am 'example-churn: up to 6 replicas'", 0, ""),
]


def test_getting_started_from_an_empty_repository(user: tuple[Path, dict[str, str]]) -> None:
    work, env = user
    for line, code, expected in GETTING_STARTED:
        result = _sh(line, work, env)
        assert result.returncode == code, (line, result.stdout[-2000:], result.stderr[-2000:])
        assert expected in result.stdout + result.stderr, (line, result.stdout[-2000:], result.stderr[-2000:])
    project = (work / "specs" / "modelops.yaml").read_text()
    assert 'repoURL: "https://github.com/acme/shop-models.git"' in project
    assert 'name: "shop-models"' in project
    assert (work / "evaluations" / "example-churn" / "0.1.0.json").is_file()
    assert _sh("git status --porcelain", work, env).stdout == ""


def test_the_readme_quotes_these_commands() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Getting started in your own repository", 1)[1].split("\n## ", 1)[0]
    for line, _, _ in GETTING_STARTED:
        assert line in section, line


def _hooks_repository(target: Path) -> Path:
    """A Git repository of this working tree's package and hooks (try-repo reads commits only,
    and would leave out files not yet committed here)."""
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--",
                  "compiler", "pyproject.toml", "README.md", "MANIFEST.in", ".pre-commit-hooks.yaml", cwd=REPO)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for step in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "hooks"]):
        assert _run(*step, cwd=target, env=env).returncode == 0
    return target


def test_pre_commit_hooks_with_the_real_pre_commit(tmp_path: Path) -> None:
    """`pre-commit try-repo` installs modelops from the hooks repository into its own venv."""
    hooks = _hooks_repository(tmp_path / "hooks")
    work = tmp_path / "project"
    work.mkdir()
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}
    assert _run("git", "init", "-q", "-b", "main", cwd=work).returncode == 0
    assert _run(BIN / "modelops", "init", cwd=work).returncode == 0
    assert _run(BIN / "modelops", "evaluate", cwd=work).returncode == 0
    assert _run(BIN / "modelops", "compile", cwd=work).returncode == 0
    assert _run("git", "add", "-A", cwd=work).returncode == 0

    def hook(hook_id: str) -> subprocess.CompletedProcess[str]:
        return _run(
            BIN / "pre-commit",
            "try-repo",
            hooks,
            hook_id,
            "--all-files",
            "--color",
            "never",
            cwd=work,
            env=env,
        )

    for hook_id in ("modelops-validate", "modelops-check"):
        good = hook(hook_id)
        assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
        assert "Passed" in good.stdout

    spec = work / "specs" / "example-churn.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("replicas: {min: 2, max: 4}", "replicas: {min: 2, max: 4, maximum: 9}"))
    line = 1 + text[: text.index("replicas: {min: 2, max: 4}")].count("\n")
    assert _run("git", "add", "-A", cwd=work).returncode == 0
    bad = hook("modelops-validate")
    assert bad.returncode == 1 and "Failed" in bad.stdout
    assert re.search(rf"specs/example-churn\.yaml:{line}:\d+", bad.stdout), bad.stdout[-3000:]

    spec.write_text(text.replace("max: 4}", "max: 6}"))  # valid, but generated/ is now stale
    assert _run("git", "add", "-A", cwd=work).returncode == 0
    assert hook("modelops-validate").returncode == 0
    stale = hook("modelops-check")
    assert stale.returncode == 1 and "is stale" in stale.stdout, stale.stdout[-3000:]

"""requirements/dev.lock agrees with pyproject.toml, and `make setup` installed exactly it.

`make setup` installs the lock with `pip --require-hashes` and modelops with `--no-deps`, so a
dependency added to pyproject.toml without `make lock` would never be installed: these tests
say so before an import fails somewhere else.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.conftest import REPO

LOCK = REPO / "requirements/dev.lock"
EXTRA = "dev"  # the extra `make setup` installs: everything the tests and the demo need


@dataclass(frozen=True)
class Pin:
    """One locked package: `name==version ; marker`, with the hashes pip checks."""

    requirement: Requirement
    hashes: list[str]
    line: int

    @property
    def name(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> str | None:
        specifiers = list(self.requirement.specifier)
        return specifiers[0].version if len(specifiers) == 1 and specifiers[0].operator == "==" else None


def read_lock(text: str) -> list[Pin]:
    """The pins of a requirements file as `uv pip compile --generate-hashes` writes it."""
    pins: list[Pin] = []
    logical, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        start = start or number
        logical += " " + line.removesuffix("\\")
        if line.endswith("\\"):
            continue
        requirement, *hashes = (part.strip() for part in logical.split("--hash="))
        pins.append(Pin(Requirement(requirement), hashes, start))
        logical, start = "", 0
    return pins


def declared(pyproject: dict[str, Any]) -> list[Requirement]:
    """What `make setup` must install: the dependencies, the dev extra (with the extras it
    names of modelops itself) and the build backend that builds modelops."""
    project = pyproject["project"]
    me = canonicalize_name(project["name"])
    found = [Requirement(text) for text in project["dependencies"]]
    found += [Requirement(text) for text in pyproject["build-system"]["requires"]]
    pending, seen = [EXTRA], set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in map(Requirement, project["optional-dependencies"][extra]):
            if canonicalize_name(requirement.name) == me:
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def disagreements(pyproject: dict[str, Any], pins: list[Pin]) -> list[str]:
    """Every way the lock fails pyproject.toml or pip's hash-checking mode, in words."""
    problems = [
        f"line {pin.line}: {pin.requirement} is not pinned to one version" for pin in pins if not pin.version
    ]
    problems += [f"line {pin.line}: {pin.requirement} has no hash" for pin in pins if not pin.hashes]
    locked: dict[NormalizedName, list[Pin]] = {}
    for pin in pins:
        locked.setdefault(pin.name, []).append(pin)
    for requirement in declared(pyproject):
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{requirement} is in pyproject.toml but not in the lock: run `make lock`")
            continue
        for pin in locked[name]:
            if pin.version and not requirement.specifier.contains(pin.version, prereleases=True):
                problems.append(f"the lock pins {pin.requirement.name}=={pin.version}, outside {requirement}")
    return problems


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_lock_agrees_with_pyproject() -> None:
    pins = read_lock(LOCK.read_text())
    assert disagreements(_pyproject(), pins) == []
    names = {pin.name for pin in pins}
    assert {"scikit-learn", "skops", "pytest", "hypothesis", "setuptools", "uv"} <= names


def test_a_dependency_added_without_relocking_is_caught() -> None:
    pins = read_lock(LOCK.read_text())
    pyproject = copy.deepcopy(_pyproject())
    pyproject["project"]["dependencies"].append("leftpad>=1")
    ml = pyproject["project"]["optional-dependencies"]["ml"]
    ml[:] = ["numpy>=9" if text.startswith("numpy") else text for text in ml]
    pyproject["project"]["optional-dependencies"]["dev"].append("Some_Linter>=2")
    problems = disagreements(pyproject, pins)
    assert "leftpad>=1 is in pyproject.toml but not in the lock: run `make lock`" in problems
    assert "Some_Linter>=2 is in pyproject.toml but not in the lock: run `make lock`" in problems
    assert any(p.startswith("the lock pins numpy==") and p.endswith("outside numpy>=9") for p in problems)
    assert len(problems) >= 3


def test_an_unpinned_or_unhashed_entry_is_caught() -> None:
    pins = read_lock("pytest>=8 \\\n    --hash=sha256:00\nruff==0.9.0\n# via nothing\n")
    assert [pin.line for pin in pins] == [1, 3]
    problems = disagreements(
        {
            "project": {"name": "x", "dependencies": [], "optional-dependencies": {EXTRA: []}},
            "build-system": {"requires": []},
        },
        pins,
    )
    assert problems == ["line 1: pytest>=8 is not pinned to one version", "line 3: ruff==0.9.0 has no hash"]


def test_the_environment_has_the_locked_versions() -> None:
    """What `make setup` installed is the lock, not what the index served that day."""
    wrong = []
    for pin in read_lock(LOCK.read_text()):
        if pin.requirement.marker is not None and not pin.requirement.marker.evaluate():
            continue  # for another Python or platform
        try:
            installed = metadata.version(pin.requirement.name)
        except metadata.PackageNotFoundError:
            installed = "nothing"
        if installed != pin.version:
            wrong.append(f"{pin.requirement.name}: {installed} installed, {pin.version} locked")
    assert wrong == [], "run `make setup`: " + "; ".join(wrong)

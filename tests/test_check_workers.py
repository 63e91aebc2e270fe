"""The full check in worker processes: the same result as the serial check, whatever the project."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from compiler import api, check_workers
from compiler.check_cache import CACHE_DIR, CACHE_FILE
from compiler.check_workers import WORKER_THRESHOLD, check_specs
from compiler.errors import ProjectError
from compiler.review import review
from tests.conftest import many_specs, spec_text
from tests.git_workspace import GitWorkspace


def _options(specs: Path, jobs: int) -> api.Options:
    return api.Options(paths=[specs], stamp=False, jobs=jobs)


def test_a_project_checked_in_workers_is_the_one_checked_in_this_process(tmp_path: Path) -> None:
    specs = many_specs(tmp_path, WORKER_THRESHOLD)
    serial = api.check(_options(specs, 1), api.Mode.FULL).inputs
    parallel = api.check(_options(specs, 2), api.Mode.FULL).inputs
    assert all(isinstance(entry.model, bytes) for entry in parallel.entries)  # the workers checked them
    assert [(e.key, e.model_hash) for e in parallel.entries] == [
        (e.key, e.model_hash) for e in serial.entries
    ]
    assert [e.resolved for e in parallel.entries] == [e.resolved for e in serial.entries]
    assert parallel.diagnostics == serial.diagnostics and parallel.diagnostics  # the policy's warnings
    assert (parallel.checked, parallel.project_file, parallel.root) == (
        serial.checked,
        serial.project_file,
        serial.root,
    )


def _field_error(specs: Path) -> None:
    (specs / "m010.yaml").write_text(spec_text("m010").replace("min: 2, max: 4", "min: two, max: 4"))


def _duplicate(specs: Path) -> None:
    (specs / "m020.yaml").write_text(spec_text("m003"))


def _unparsable(specs: Path) -> None:
    (specs / "m030.yaml").write_text(spec_text("m030") + "  : [\n")


def _undeclared_environment(specs: Path) -> None:
    (specs / "m040.yaml").write_text(spec_text("m040") + "  environments:\n    prod: {}\n")


def _error_in_one_environment(specs: Path) -> None:
    overlay = "  environments:\n    production:\n      serving:\n        replicas: {min: 5, max: 4}\n"
    (specs / "m050.yaml").write_text(spec_text("m050") + overlay)


@pytest.mark.parametrize(
    "breakage", [_field_error, _duplicate, _unparsable, _undeclared_environment, _error_in_one_environment]
)
def test_an_error_among_many_specs_is_reported_as_the_serial_check_reports_it(
    tmp_path: Path, breakage: Callable[[Path], None]
) -> None:
    specs = many_specs(tmp_path, WORKER_THRESHOLD)
    breakage(specs)
    reported = []
    for jobs in (1, 2):
        with pytest.raises(api.CheckFailed) as failed:
            api.check(_options(specs, jobs), api.Mode.FULL)
        reported.append(failed.value.diagnostics)
    assert any(d.is_error for d in reported[0])
    assert reported[0] == reported[1]


def test_the_check_cache_written_from_workers_serves_the_next_compile(tmp_path: Path) -> None:
    specs = many_specs(tmp_path, WORKER_THRESHOLD)
    cache = tmp_path / CACHE_DIR / CACHE_FILE
    api.write(api.check(_options(specs, 1), api.Mode.UPDATE), api.Mode.UPDATE)
    serial = cache.read_bytes()
    shutil.rmtree(tmp_path / CACHE_DIR)
    shutil.rmtree(tmp_path / "generated")
    api.write(api.check(_options(specs, 2), api.Mode.UPDATE), api.Mode.UPDATE)
    assert cache.read_bytes() == serial
    (specs / "m005.yaml").write_text(spec_text("m005").replace("min: 2, max: 4", "min: 3, max: 4"))
    project = api.check(_options(specs, 2), api.Mode.UPDATE)
    assert (project.inputs.checked, project.inputs.cached) == (1, WORKER_THRESHOLD - 1)
    assert api.write(project, api.Mode.UPDATE).rendered == 2


def test_a_review_checks_a_large_side_in_workers_and_says_what_one_process_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`diff --base` with a cold check cache checks the specs both sides share in workers: the
    same models, the same report, still only the changed spec's models rendered."""
    root = tmp_path / "repo"
    many_specs(root, WORKER_THRESHOLD + 1)
    monkeypatch.chdir(root)
    api.write(api.check(_options(Path("specs"), 2), api.Mode.UPDATE), api.Mode.UPDATE)
    workspace = GitWorkspace(root)
    workspace.save("specs and generated/")
    shutil.rmtree(root / CACHE_DIR)  # cold: nothing known of any spec
    workspace.edit("specs/m012.yaml", "min: 2, max: 4", "min: 2, max: 5")
    reports = {}
    for jobs in (1, 2):
        monkeypatch.setattr(review, "default_jobs", lambda jobs=jobs: jobs)
        checked: list[tuple[int, bool]] = []  # per call: specs asked for, whether workers checked them

        def counted(*args: Any, checked: list[tuple[int, bool]] = checked) -> Any:
            result = check_specs(*args)
            checked.append((len(args[2]), result is not None))
            return result

        monkeypatch.setattr(review, "check_specs", counted)
        report = api.review(api.Options(paths=[Path("specs")]), "HEAD")
        assert not report.whole and report.rendered == 4  # m012 in two environments, on each side
        assert checked[0] == (WORKER_THRESHOLD, jobs == 2)  # the shared specs, checked once
        reports[jobs] = report
    assert [(m.model, m.environment, m.status) for m in reports[2].models] == [
        ("m012", "production", "changed"),
        ("m012", "staging", "changed"),
    ]
    assert [(c.path, c.kind, c.diff) for c in reports[2].files] == [
        (c.path, c.kind, c.diff) for c in reports[1].files
    ]


def test_chosen_environments_are_checked_in_workers_as_in_this_process(tmp_path: Path) -> None:
    specs = many_specs(tmp_path, WORKER_THRESHOLD)
    serial, parallel = (
        api.check(replace(_options(specs, jobs), environments=["staging"])).inputs.entries for jobs in (1, 2)
    )
    assert all(isinstance(entry.model, bytes) for entry in parallel)
    assert [(e.key, e.model_hash) for e in parallel] == [(e.key, e.model_hash) for e in serial]
    assert {entry.environment for entry in parallel} == {"staging"}
    for jobs in (1, 2):
        with pytest.raises(
            ProjectError, match="unknown environment prod; the project declares staging, production"
        ):
            api.check(replace(_options(specs, jobs), environments=["prod"]))


def _killed(specs: list[Any]) -> list[Any]:
    os._exit(137)  # as the kernel's OOM killer would end a worker


def test_a_worker_killed_while_checking_leaves_the_check_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = many_specs(tmp_path, WORKER_THRESHOLD)
    serial = api.check(_options(specs, 1), api.Mode.FULL).inputs
    monkeypatch.setattr(check_workers, "_check_chunk", _killed)
    checked = api.check(_options(specs, 2), api.Mode.FULL).inputs
    assert not any(isinstance(entry.model, bytes) for entry in checked.entries)  # checked here
    assert [(e.key, e.model_hash) for e in checked.entries] == [(e.key, e.model_hash) for e in serial.entries]
    assert checked.diagnostics == serial.diagnostics

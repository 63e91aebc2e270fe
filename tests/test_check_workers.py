"""The full check in worker processes: the same result as the serial check, whatever the project."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import api
from compiler.check_cache import CACHE_DIR, CACHE_FILE
from compiler.check_workers import WORKER_THRESHOLD
from tests.conftest import many_specs, spec_text


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

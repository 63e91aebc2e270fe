"""The library API (`compiler.api`): check, render, write in-process, as a program embedding modelops would."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import api
from compiler.bundle.writer import read_tree
from compiler.errors import ModelopsError, OutputError
from tests.conftest import REPO, SPECS, Result, spec_text


def test_write_gives_the_committed_tree(tmp_path: Path) -> None:
    """check -> write through the API yields the bytes of generated/ in the repository."""
    out = tmp_path / "generated"
    project = api.check(api.Options(paths=[SPECS], out=out))
    written = api.write(project, api.Mode.UPDATE)
    assert read_tree(out) == read_tree(REPO / "generated")
    assert written.changes.changed == [] and written.changes.removed == []
    assert written.models == 4 and written.files == len(read_tree(out))


def test_render_is_the_written_tree_in_memory(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    project = api.check(api.Options(paths=[SPECS], out=out))
    files = api.render(project).files
    assert not out.exists()  # rendering writes nothing
    api.write(project)
    assert files == read_tree(out)


def test_write_in_the_cli_equals_the_api(cli: Callable[..., Result], project: Path, tmp_path: Path) -> None:
    assert cli("compile", project / "specs", "--out", project / "generated").code == 0
    out = tmp_path / "api-out"
    api.write(api.check(api.Options(paths=[project / "specs"], out=out)))
    assert read_tree(out) == read_tree(project / "generated")


def test_check_mode_reports_stale_and_writes_nothing(project: Path) -> None:
    options = api.Options(paths=[project / "specs"])
    api.write(api.check(options), api.Mode.UPDATE)
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("version: 1.4.0", "version: 1.5.0"))
    before = read_tree(project / "generated")
    written = api.write(api.check(options, api.Mode.CHECK), api.Mode.CHECK)
    assert written.stale
    assert any(
        path.startswith("production/ml-production/credit-default/") for path in written.changes.changed
    )
    assert read_tree(project / "generated") == before
    assert api.write(api.check(options), api.Mode.UPDATE).stale
    assert not api.write(api.check(options, api.Mode.CHECK), api.Mode.CHECK).stale


def test_update_mode_reuses_unchanged_models(project: Path) -> None:
    options = api.Options(paths=[project / "specs"])
    api.write(api.check(options, api.Mode.UPDATE), api.Mode.UPDATE)
    again = api.write(api.check(options, api.Mode.UPDATE), api.Mode.UPDATE)
    assert again.rendered == 0 and again.reused == 4
    assert not again.changes.any


def test_spec_errors_are_a_typed_error_with_diagnostics(project: Path) -> None:
    (project / "specs" / "broken.yaml").write_text(
        spec_text("broken").replace("{min: 2, max: 4}", "{min: 5, max: 4}")
    )
    with pytest.raises(api.CheckFailed) as failed:
        api.check(api.Options(paths=[project / "specs"]))
    assert any(
        "replicas.min (5) is greater than replicas.max (4)" in d.message for d in failed.value.diagnostics
    )
    assert not (project / "generated").exists()


def test_an_out_that_is_a_file_is_a_typed_error(project: Path) -> None:
    out = project / "generated"
    out.write_text("not a directory\n")
    project_ = api.check(api.Options(paths=[project / "specs"], out=out))
    with pytest.raises(OutputError, match="exists and is not a directory"):
        api.write(project_)
    assert out.read_text() == "not a directory\n"


def test_an_unknown_environment_is_a_modelops_error(project: Path) -> None:
    with pytest.raises(ModelopsError, match="unknown environment nowhere"):
        api.check(api.Options(paths=[project / "specs"], environments=["nowhere"]))


def test_options_are_a_frozen_dataclass_with_defaults() -> None:
    options = api.Options()
    assert options.paths == (Path("specs"),) and options.stamp is None and options.out is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.out = Path("elsewhere")  # type: ignore[misc]

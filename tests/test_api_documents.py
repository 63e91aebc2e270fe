"""`api.documents` and `api.serialise`: what the compile benchmark's floor serialises is what compile writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import api
from tests.conftest import SPECS


def test_documents_serialised_are_the_rendered_model_files() -> None:
    project = api.check(api.Options(paths=[SPECS], stamp=False))
    files = api.render(project).files
    names = {(e.environment, e.name) for e in project.inputs.entries}
    serialised = [
        (filename, api.serialise(filename, document)) for filename, document in api.documents(project)
    ]
    model_files = {
        path: content
        for path, content in files.items()
        if path.count("/") == 3
        and (path.split("/")[0], path.split("/")[2]) in names
        and not path.endswith("/kustomization.yaml")
    }
    assert sorted(content for _, content in serialised) == sorted(model_files.values())
    assert {filename for filename, _ in serialised} == {path.rsplit("/", 1)[1] for path in model_files}


def test_documents_of_a_cached_check_are_refused(project: Path) -> None:
    """An UPDATE-mode check serves unchanged models from the cache, unresolved: no documents."""
    options = api.Options(paths=[project / "specs"], stamp=False)
    api.write(api.check(options, api.Mode.UPDATE), api.Mode.UPDATE)  # fills the check cache
    cached = api.check(options, api.Mode.UPDATE)
    assert any(entry.resolved is None for entry in cached.inputs.entries)
    with pytest.raises(ValueError, match=r"Mode\.FULL"):
        list(api.documents(cached))

"""Incremental compile: the check cache, kept model directories and the journaled write.

Every test compares the incremental result with a full compile (`--full`, which trusts
neither the cache nor the manifest) of the same specs, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from compiler import api
from compiler.bundle.layout import MANIFEST, _kustomization, manifest_json
from compiler.bundle.writer import TXN, digest, locked, read_tree, stage
from compiler.check_cache import CACHE_DIR
from compiler.check_workers import WORKER_THRESHOLD
from compiler.serialize import to_yaml
from tests.conftest import Result, many_specs, spec_text


def compile_into(cli: Callable[..., Result], root: Path, out: str = "generated", *extra: str) -> Result:
    return cli("compile", root / "specs", "--out", root / out, *extra)


def assert_equals_full(cli: Callable[..., Result], root: Path) -> None:
    assert compile_into(cli, root, "full", "--full").code == 0
    assert read_tree(root / "generated") == read_tree(root / "full")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_unchanged_specs_come_from_the_cache(cli: Callable[..., Result], project: Path) -> None:
    first = compile_into(cli, project)
    assert first.code == 0 and "(checked 2 spec files)" in first.out
    assert (project / CACHE_DIR / ".gitignore").read_text().endswith("*\n")
    edit(project / "specs" / "credit-default.yaml", "{min: 3, max: 20}", "{min: 4, max: 20}")
    second = compile_into(cli, project)
    assert second.code == 0
    assert "rendered 1, reused 3 unchanged (checked 1 spec file, 1 unchanged from the cache)" in second.out
    assert_equals_full(cli, project)


def test_added_and_removed_specs(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    (project / "specs" / "fraud-score.yaml").write_text(spec_text("fraud-score"))
    (project / "specs" / "loan-risk-score.yaml").unlink()
    result = compile_into(cli, project)
    assert result.code == 0
    assert "rendered 2, reused 2 unchanged (checked 1 spec file, 1 unchanged from the cache)" in result.out
    files = read_tree(project / "generated")
    assert not [p for p in files if "loan-risk-score" in p]
    assert "production/ml-production/fraud-score/deployment.yaml" in files
    assert not (project / "generated" / "production" / "ml-production" / "loan-risk-score").exists()
    assert_equals_full(cli, project)


def test_warnings_of_cached_specs_are_reported_again(cli: Callable[..., Result], project: Path) -> None:
    no_runbook = spec_text("quiet-model").replace(
        "    alerts:\n      runbook: https://runbooks.example/quiet-model\n", ""
    )
    (project / "specs" / "quiet-model.yaml").write_text(no_runbook)
    warning = "warning: policy 'production-runbook' (production): needs a runbook URL"
    assert warning in compile_into(cli, project).out
    edit(project / "specs" / "credit-default.yaml", "{min: 3, max: 20}", "{min: 4, max: 20}")
    again = compile_into(cli, project)
    assert "unchanged from the cache" in again.out
    assert warning in again.out and "quiet-model.yaml:" in again.out


def _inherits_a_warning(specs: Path) -> None:
    """A spec whose autoscaling comes from the project's defaults and has no room: warned about
    in the project file, where the value is written."""
    edit(specs / "modelops.yaml", "  serving:\n", "  serving:\n    autoscaling: {cpu: 60}\n")
    (specs / "steady-model.yaml").write_text(
        spec_text("steady-model").replace("min: 2, max: 4", "min: 2, max: 2")
    )


def _warnings(
    specs: Path, mode: api.Mode, environments: list[str] | None, jobs: int
) -> tuple[int, list[str]]:
    options = api.Options(paths=[specs], environments=environments, stamp=False, jobs=jobs)
    inputs = api.check(options, mode).inputs
    return inputs.cached, [f"{d.file}:{d.line}: {d.message}" for d in inputs.diagnostics]


@pytest.mark.parametrize("environments", [None, ["staging"], ["production"]])
@pytest.mark.parametrize("size", ["bundled", "checked in workers"])
def test_a_check_from_the_cache_warns_as_a_full_check(
    project: Path, tmp_path: Path, size: str, environments: list[str] | None
) -> None:
    specs = project / "specs" if size == "bundled" else many_specs(tmp_path / "many", WORKER_THRESHOLD)
    _inherits_a_warning(specs)
    _, full = _warnings(specs, api.Mode.FULL, environments, 1)
    inherited = [w for w in full if "modelops.yaml:" in w and "autoscaling has no room" in w]
    assert inherited and all("steady-model" not in w for w in inherited)
    production_only = [w for w in full if "(production)" in w]
    assert bool(production_only) == (environments != ["staging"])
    _warnings(specs, api.Mode.UPDATE, None, 2)  # the cache filled, in workers for the large project
    cached, again = _warnings(specs, api.Mode.UPDATE, environments, 1)
    assert cached > 0 and again == full


def test_an_unknown_environment_is_refused_with_the_cache_warm(
    cli: Callable[..., Result], project: Path
) -> None:
    assert compile_into(cli, project).code == 0  # the check cache filled
    before = read_tree(project / "generated")
    result = compile_into(cli, project, "generated", "--env", "nosuch")
    assert result.code == 2 and "unknown environment nosuch" in result.err
    assert read_tree(project / "generated") == before  # no environment made up


@pytest.mark.parametrize("damage", ["a dangling link", "a directory"])
def test_an_unreadable_evaluation_record_is_skipped_as_a_full_compile_skips_it(
    cli: Callable[..., Result], project: Path, damage: str
) -> None:
    assert compile_into(cli, project).code == 0
    unreadable = project / "evaluations" / "credit-default" / "9.9.9.json"
    if damage == "a dangling link":
        unreadable.symlink_to(project / "nowhere.json")
    else:
        unreadable.mkdir()
    result = compile_into(cli, project)
    assert result.code == 0, result.err
    assert_equals_full(cli, project)


@pytest.mark.parametrize(("first", "then"), [("NaN", "Infinity"), ("Infinity", "-Infinity")])
def test_a_measured_value_that_is_no_number_still_tells_models_apart(
    cli: Callable[..., Result], project: Path, first: str, then: str
) -> None:
    record = project / "evaluations" / "credit-default" / "1.4.0.json"
    measured = '"roc_auc": 0.911686'
    text = record.read_text()
    assert measured in text
    record.write_text(text.replace(measured, f'"roc_auc": {first}'))
    assert compile_into(cli, project).code == 0
    record.write_text(text.replace(measured, f'"roc_auc": {then}'))
    result = compile_into(cli, project)
    assert result.code == 0 and "rendered 2, reused 2" in result.out  # credit-default, both environments
    assert_equals_full(cli, project)


def test_errors_read_as_in_a_cold_run(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    before = read_tree(project / "generated")
    edit(project / "specs" / "credit-default.yaml", "{min: 3, max: 20}", "{min: 30, max: 20}")
    cold = cli("validate", project / "specs")
    result = compile_into(cli, project)
    assert result.code == 1
    assert "replicas.min (30) is greater than replicas.max (20)" in result.out
    assert [line for line in result.out.splitlines() if ": error: " in line] == [
        line for line in cold.out.splitlines() if ": error: " in line
    ]
    assert read_tree(project / "generated") == before


def test_a_new_spec_may_not_reuse_a_cached_model_name(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    (project / "specs" / "zz-copy.yaml").write_text(spec_text("credit-default"))
    result = compile_into(cli, project)
    assert result.code == 1
    assert "zz-copy.yaml" in result.out and "model 'credit-default' is already defined in" in result.out


def test_project_and_evaluation_changes_invalidate_the_cache(
    cli: Callable[..., Result], project: Path
) -> None:
    assert compile_into(cli, project).code == 0
    edit(project / "specs" / "modelops.yaml", "modelops-runtime:0.1.0", "modelops-runtime:0.2.0")
    result = compile_into(cli, project)
    assert "rendered 4, reused 0 unchanged (checked 2 spec files)" in result.out
    assert_equals_full(cli, project)
    record = next((project / "evaluations" / "credit-default").glob("*.json"))
    data = json.loads(record.read_text())
    data["metrics"]["accuracy"] = 0.5
    record.write_text(json.dumps(data))
    result = compile_into(cli, project)
    assert "(checked 2 spec files)" in result.out
    assert "0.5" in (project / "generated/production/ml-production/credit-default/model-card.md").read_text()
    assert_equals_full(cli, project)


def test_a_damaged_cache_is_rebuilt(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    (project / CACHE_DIR / "check.json").write_text('{"format": 1, "context": 7, "specs": [')
    edit(project / "specs" / "credit-default.yaml", "{min: 3, max: 20}", "{min: 4, max: 20}")
    assert "(checked 2 spec files)" in compile_into(cli, project).out
    assert_equals_full(cli, project)
    assert "unchanged from the cache" in compile_into(cli, project).out


def test_cached_models_into_an_empty_directory_are_rendered(
    cli: Callable[..., Result], project: Path
) -> None:
    assert compile_into(cli, project).code == 0
    result = compile_into(cli, project, "elsewhere")
    assert result.code == 0 and "rendered 4, reused 0" in result.out
    assert read_tree(project / "elsewhere") == read_tree(project / "generated")


def test_compile_trusts_the_manifest_and_check_does_not(cli: Callable[..., Result], project: Path) -> None:
    """A file deleted by hand stays deleted for an incremental compile, which reads only the
    manifest; --check reads the tree and flags it, --full puts it back."""
    assert compile_into(cli, project).code == 0
    service = project / "generated/production/ml-production/credit-default/service.yaml"
    service.unlink()
    assert compile_into(cli, project).code == 0
    assert not service.exists()
    check = compile_into(cli, project, "generated", "--check")
    assert (
        check.code == 1
        and "would be added: generated/production/ml-production/credit-default/service.yaml" in check.out
    )
    assert compile_into(cli, project, "generated", "--full").code == 0
    assert service.exists()
    assert compile_into(cli, project, "generated", "--check").code == 0


def _new_tree(cli: Callable[..., Result], project: Path) -> dict[str, bytes]:
    assert compile_into(cli, project, "expected", "--full").code == 0
    return read_tree(project / "expected")


def test_a_committed_journal_is_replayed_by_the_next_compile(
    cli: Callable[..., Result], project: Path
) -> None:
    """Stop a compile right after its commit point: the tree is still the old one, and the
    next modelops compile finishes the update before anything else."""
    out = project / "generated"
    assert compile_into(cli, project).code == 0
    old = read_tree(out)
    edit(project / "specs" / "credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    new = _new_tree(cli, project)
    writes = {p: c for p, c in new.items() if old.get(p) != c}
    removes = [p for p in old if p not in new]
    assert writes
    with locked(out) as tree:
        stage(tree, writes, removes, {p: digest(c) for p, c in old.items()})
    txn = out / TXN
    assert (txn / "journal.json").is_file()
    assert read_tree(out) == old  # staged, not applied
    check = compile_into(cli, project, "generated", "--check")
    assert check.code == 2 and "stopped half-way through writing; run `modelops compile`" in check.err
    # the next compile replays the journal first, then finds nothing left to do
    result = compile_into(cli, project)
    assert result.code == 0 and "(0 added, 0 changed, 0 removed)" in result.out
    assert read_tree(out) == new
    assert not txn.exists()


def test_an_uncommitted_transaction_is_discarded(cli: Callable[..., Result], project: Path) -> None:
    out = project / "generated"
    assert compile_into(cli, project).code == 0
    old = read_tree(out)
    staged = out / TXN / "files"
    staged.mkdir(parents=True)
    (staged / "0").write_text("half written")
    assert compile_into(cli, project).code == 0
    assert not (out / TXN).exists()
    assert read_tree(out) == old


def test_a_journal_cannot_write_outside_the_tree(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    txn = project / "generated" / TXN
    (txn / "files").mkdir(parents=True)
    (txn / "files" / "0").write_text("owned")
    (txn / "journal.json").write_text(json.dumps({"writes": [["../specs/evil.yaml", "0"]], "removes": []}))
    result = compile_into(cli, project)
    assert result.code == 2 and "refusing a journal entry outside" in result.err
    assert not (project / "specs" / "evil.yaml").exists()


def test_the_manifest_is_json_dumps_byte_for_byte() -> None:
    cases: list[tuple[dict[str, str], dict[str, str]]] = [
        ({}, {}),
        ({"staging/kustomization.yaml": "ab" * 32}, {}),
        ({'odd "name"\\': "caf\u00e9", "tab\tbed": "\x01"}, {"staging/ml/model": "k"}),
    ]
    for listing, inputs in cases:
        expected = json.dumps(
            {"generator": "modelops", "files": listing, "inputs": inputs}, indent=2, sort_keys=True
        )
        assert manifest_json(listing, inputs) == (expected + "\n").encode()


@given(
    st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=8),
    st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4),
)
def test_the_manifest_matches_json_for_any_text(listing: dict[str, str], inputs: dict[str, str]) -> None:
    expected = json.dumps(
        {"generator": "modelops", "files": listing, "inputs": inputs}, indent=2, sort_keys=True
    )
    assert manifest_json(listing, inputs) == (expected + "\n").encode()


_LABEL = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,8}", fullmatch=True)


@given(st.lists(st.lists(_LABEL, min_size=2, max_size=4).map("/".join), min_size=1, max_size=6))
def test_kustomization_shortcut_writes_what_the_yaml_dumper_does(resources: list[str]) -> None:
    slow = to_yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(resources),
        }
    )
    assert _kustomization(resources) == slow
    assert yaml.safe_load(slow)["resources"] == sorted(resources)


def test_manifest_lists_every_file(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    edit(project / "specs" / "credit-default.yaml", "{min: 3, max: 20}", "{min: 4, max: 20}")
    assert compile_into(cli, project).code == 0
    files = read_tree(project / "generated")
    listed = json.loads(files[MANIFEST])["files"]
    assert sorted(listed) == sorted(p for p in files if p != MANIFEST)


def test_diff_head_reuses_the_base_and_gets_the_same_bytes(project: Path) -> None:
    from compiler.compile import render_beside, render_models
    from compiler.pipeline import check
    from compiler.stamp import Stamp

    base = check([project / "specs"])
    assert base.catalog is not None
    base_files = render_models(base.models, base.catalog.project, Stamp(None))
    edit(project / "specs" / "credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    (project / "specs" / "fraud-score.yaml").write_text(spec_text("fraud-score"))
    head = check([project / "specs"])
    assert head.catalog is not None
    full = render_models(head.models, head.catalog.project, Stamp(None))
    beside = render_beside(head.models, head.catalog.project, Stamp(None), base_files)
    assert beside == full
    unchanged = "production/ml-production/loan-risk-score/deployment.yaml"
    assert beside[unchanged] is base_files[unchanged]  # taken from the base, not rendered again


def test_a_damaged_manifest_falls_back_to_reading_the_tree(cli: Callable[..., Result], project: Path) -> None:
    """A merge conflict in the manifest, say: compile reads the tree instead, so the files of a
    model removed meanwhile still go."""
    assert compile_into(cli, project).code == 0
    (project / "generated" / MANIFEST).write_text("<<<<<<< HEAD\n{}\n=======\n")
    (project / "specs" / "loan-risk-score.yaml").unlink()
    assert compile_into(cli, project).code == 0
    assert not [p for p in read_tree(project / "generated") if "loan-risk-score" in p]
    assert_equals_full(cli, project)


def test_a_damaged_journal_is_a_clear_error(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    txn = project / "generated" / TXN
    txn.mkdir()
    (txn / "journal.json").write_text('{"writes": [["a"]]')
    result = compile_into(cli, project)
    assert result.code == 2
    assert "is damaged" in result.err and "run `modelops compile --full`" in result.err

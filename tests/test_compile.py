"""`modelops compile`: layout, determinism, --check, atomicity, stamps and the CI guard."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import git
import pytest
import yaml

from compiler.bundle.writer import TXN, read_tree
from tests.conftest import REPO, SPECS, Result, spec_text


def compile_into(cli: Callable[..., Result], root: Path, *extra: str) -> Result:
    return cli("compile", root / "specs", "--out", root / "generated", *extra)


def test_committed_generated_tree_is_fresh(cli: Callable[..., Result]) -> None:
    """The CI guard: generated/ in the repository is the output of specs/."""
    result = cli("compile", SPECS, "--check")
    assert result.code == 0, result.out
    assert "is up to date" in result.out


def test_layout(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    files = read_tree(project / "generated")
    model_dir = "production/ml-production/credit-default"
    assert {p.rsplit("/", 1)[1] for p in files if p.startswith(model_dir + "/")} == {
        "configmap.yaml",
        "model-card.md",
        "dashboard.json",
        "dashboard-configmap.yaml",
        "prometheusrule.yaml",
        "rules.yaml",
        "rules.test.yaml",
        "deployment.yaml",
        "hpa.yaml",
        "kustomization.yaml",
        "networkpolicy.yaml",
        "pdb.yaml",
        "service.yaml",
        "serviceaccount.yaml",
        "servicemonitor.yaml",
    }
    for env in ("staging", "production"):
        assert f"{env}/kustomization.yaml" in files
        assert f"argocd/applicationset-{env}.yaml" in files
        assert f"flux/kustomization-{env}.yaml" in files
    # one object per file, and the environment kustomization lists every object file
    env_kustomization = yaml.safe_load(files["production/kustomization.yaml"])
    objects = {
        p.removeprefix("production/")
        for p in files
        if p.startswith("production/")
        and p.endswith(".yaml")
        and not p.endswith(("kustomization.yaml", "rules.yaml", "rules.test.yaml"))
    }
    assert set(env_kustomization["resources"]) == objects
    for path in objects:
        assert len(list(yaml.safe_load_all(files[f"production/{path}"]))) == 1


def test_compile_is_deterministic_across_runs_and_directories(
    cli: Callable[..., Result], project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("compile", project / "specs", "--out", tmp_path / "one").code == 0
    monkeypatch.chdir(project / "specs")
    assert cli("compile", ".", "--out", tmp_path / "two").code == 0
    monkeypatch.chdir(tmp_path)
    assert cli("compile", project / "specs", "--out", "three").code == 0
    one = read_tree(tmp_path / "one")
    assert one == read_tree(tmp_path / "two") == read_tree(tmp_path / "three")
    assert one == read_tree(REPO / "generated")  # and the same bytes as the committed tree


def test_check_reports_and_writes_nothing(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    before = read_tree(project / "generated")
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("version: 1.4.0", "version: 1.5.0"))
    (project / "specs" / "loan-risk-score.yaml").unlink()
    (project / "specs" / "new-model.yaml").write_text(spec_text("new-model"))
    result = compile_into(cli, project, "--check")
    assert result.code == 1
    assert "would be changed: generated/production/ml-production/credit-default/deployment.yaml" in result.out
    assert "would be removed: generated/staging/ml-staging/loan-risk-score/service.yaml" in result.out
    assert "would be added: generated/staging/ml-staging/new-model/deployment.yaml" in result.out
    assert "is stale" in result.out
    assert read_tree(project / "generated") == before


def test_check_github_format_annotates(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    (project / "generated" / "staging" / "kustomization.yaml").write_text("edited by hand\n")
    result = compile_into(cli, project, "--check", "--format", "github")
    assert result.code == 1
    assert "::error file=generated/staging/kustomization.yaml,title=modelops stale::" in result.out


def test_removed_models_disappear(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    (project / "specs" / "loan-risk-score.yaml").unlink()
    assert compile_into(cli, project).code == 0
    files = read_tree(project / "generated")
    assert not [p for p in files if "loan-risk-score" in p]
    assert "loan-risk-score" not in files["production/kustomization.yaml"].decode()
    assert not (project / "generated" / "production" / "ml-production" / "loan-risk-score").exists()


def test_invalid_spec_stops_before_anything_is_written(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    before = read_tree(project / "generated")
    (project / "specs" / "broken.yaml").write_text(
        spec_text("broken").replace("{min: 2, max: 4}", "{min: 5, max: 4}")
    )
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("version: 1.4.0", "version: 1.5.0"))
    result = compile_into(cli, project)
    assert result.code == 1
    assert "broken.yaml:20:21: error: replicas.min (5) is greater than replicas.max (4)" in result.out
    assert "nothing was written" in result.err
    assert read_tree(project / "generated") == before


def test_refuses_to_replace_a_directory_it_did_not_write(cli: Callable[..., Result], project: Path) -> None:
    foreign = project / "generated"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("not ours")
    result = compile_into(cli, project)
    assert result.code == 2
    assert "refusing to replace" in result.err
    assert (foreign / "precious.txt").read_text() == "not ours"


def test_single_environment_compile_keeps_the_others(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    full = read_tree(project / "generated")
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("{min: 1, max: 2}", "{min: 1, max: 3}"))
    assert compile_into(cli, project, "--env", "staging").code == 0
    partial = read_tree(project / "generated")
    assert {p: c for p, c in partial.items() if p.startswith("production/")} == {
        p: c for p, c in full.items() if p.startswith("production/")
    }
    assert (
        partial["staging/ml-staging/credit-default/hpa.yaml"]
        != full["staging/ml-staging/credit-default/hpa.yaml"]
    )
    # and the result equals a full compile of the new specs
    assert compile_into(cli, project, "--check").code == 0


def _small_files_only() -> None:
    """In the child: the kernel refuses to grow any file past 4 KiB (EFBIG, as a full disk would
    refuse with ENOSPC), and the signal it sends for that is ignored."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_full_disk_leaves_the_old_tree_whole(project: Path) -> None:
    """A write that fails half-way through staging leaves the old tree whole and no staging."""
    command = [sys.executable, "-m", "compiler", "compile", str(project / "specs"), "--full"]
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    before = read_tree(project / "generated")
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("version: 1.4.0", "version: 1.5.0"))
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, preexec_fn=_small_files_only, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "cannot write" in result.stderr and "File too large; the previous tree was left" in result.stderr
    assert read_tree(project / "generated") == before
    assert not (project / "generated" / TXN).exists(), "the half-written staging area is cleaned up"


def test_kill_9_mid_write_is_finished_by_the_next_compile(project: Path) -> None:
    """SIGKILL a compile of many specs while it writes: before its journal is committed the
    tree is wholly old; after, the journal holds the rest and the next compile replays it."""
    for i in range(300):
        (project / "specs" / f"bulk-{i:03d}.yaml").write_text(spec_text(f"bulk-{i:03d}"))
    command = [sys.executable, "-m", "compiler", "compile", str(project / "specs")]
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    old = read_tree(project / "generated")
    for i in range(300):
        spec = project / "specs" / f"bulk-{i:03d}.yaml"
        spec.write_text(spec.read_text().replace("version: 1.0.0", "version: 2.0.0"))
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    txn = project / "generated" / TXN
    deadline = time.monotonic() + 60
    while not txn.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    after = read_tree(project / "generated")
    committed = (txn / "journal.json").is_file()
    new_versions = {
        b"2.0.0" in c for p, c in after.items() if p.endswith("/deployment.yaml") and "bulk-" in p
    }
    assert after == old or committed or new_versions == {True}
    # the next compile replays or discards whatever the killed one left, and converges
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    assert not txn.exists()
    check = subprocess.run([*command, "--check"], capture_output=True, cwd=REPO)
    assert check.returncode == 0


def _annotations(root: Path) -> dict[str, str]:
    text = (root / "generated/production/ml-production/credit-default/deployment.yaml").read_text()
    annotations: dict[str, str] = yaml.safe_load(text)["metadata"]["annotations"]
    return annotations


def test_stamp_carries_the_commit(cli: Callable[..., Result], project: Path) -> None:
    repo = git.Repo.init(project)
    repo.index.add([str(p.relative_to(project)) for p in (project / "specs").rglob("*") if p.is_file()])
    commit = repo.index.commit(
        "specs", author=git.Actor("t", "t@example.com"), committer=git.Actor("t", "t@example.com")
    )
    assert compile_into(cli, project, "--stamp").code == 0
    annotations = _annotations(project)
    assert annotations["modelops.dev/commit"] == commit.hexsha
    assert annotations["modelops.dev/source"] == "specs/credit-default.yaml"
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text() + "\n")
    assert compile_into(cli, project, "--stamp").code == 0
    assert _annotations(project)["modelops.dev/commit"] == f"{commit.hexsha}-dirty"
    assert compile_into(cli, project, "--no-stamp").code == 0
    assert "modelops.dev/commit" not in _annotations(project)


def test_stamp_outside_git_is_left_out(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project, "--stamp").code == 0
    assert "modelops.dev/commit" not in _annotations(project)


def test_kserve_runtime_is_a_clear_error(cli: Callable[..., Result], project: Path) -> None:
    (project / "specs" / "k.yaml").write_text(
        spec_text("k").replace("  serving:\n", "  serving:\n    runtime: kserve\n")
    )
    result = compile_into(cli, project)
    assert result.code == 1
    assert "runtime 'kserve' cannot be compiled yet" in result.out


def test_out_must_be_a_directory(cli: Callable[..., Result], project: Path) -> None:
    target = project / "not-a-dir"
    target.write_text("x")
    result = cli("compile", project / "specs", "--out", target)
    assert result.code == 2
    assert "exists and is not a directory" in result.err

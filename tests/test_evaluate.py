"""`modelops evaluate`: real scikit-learn models and holdouts, gates, and refused artifacts."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from compiler.evaluate.dataset import read_holdout
from compiler.modelio.skops_files import ArtifactError, deterministic_bytes, load_model
from tests.conftest import REPO, Result


@pytest.fixture
def repo(project: Path) -> Path:
    """The bundled specs with their artifacts, holdouts and records, in a temporary root."""
    return project


def _train_check(root: Path) -> subprocess.CompletedProcess[str]:
    """`specs/train.py --check` on the project at `root` (a copy, or the repository)."""
    return subprocess.run(
        [sys.executable, str(root / "specs/train.py"), "--check"], cwd=root, capture_output=True, text=True
    )


def _repin(repo: Path, content: bytes) -> None:
    """Commit `content` as the credit-default artifact, with its sha256 in the spec."""
    (repo / "models/credit-default/1.4.0/model.skops").write_bytes(content)
    spec = repo / "specs/credit-default.yaml"
    digest = hashlib.sha256(content).hexdigest()
    spec.write_text(re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {digest}", spec.read_text()))


def test_training_is_reproducible() -> None:
    """The committed artifacts behave like a fresh training run, on any CPU, and match their pins."""
    result = _train_check(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "models/credit-default/1.4.0/model.skops: " in result.stdout
    assert "models/loan-risk-score/2.1.0/model.skops: " in result.stdout
    for path in (REPO / "models").rglob("*.skops"):
        assert path.stat().st_size < 1024 * 1024


def test_training_check_tolerates_float_noise(repo: Path) -> None:
    """Another BLAS rounds the last bits differently: other bytes, other pin, the same model."""
    model = load_model((repo / "models/credit-default/1.4.0/model.skops").read_bytes())
    model[-1].coef_ = model[-1].coef_ * (1 + 1e-12)
    _repin(repo, deterministic_bytes(model))
    result = _train_check(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "models/credit-default/1.4.0/model.skops: matches a fresh training run within tolerance" in (
        result.stdout
    )


def test_training_check_names_the_model_that_differs_and_by_how_much(repo: Path) -> None:
    model = load_model((repo / "models/credit-default/1.4.0/model.skops").read_bytes())
    model[-1].coef_ = model[-1].coef_ * 1.5  # another model, pinned correctly
    _repin(repo, deterministic_bytes(model))
    loan = repo / "specs/loan-risk-score.yaml"
    loan.write_text(re.sub(r"sha256: [0-9a-f]{64}", "sha256: " + "0" * 64, loan.read_text()))
    result = _train_check(repo)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    moved = next(line for line in lines if "holdout probabilities differ" in line)
    assert moved.startswith("differs: models/credit-default/1.4.0/model.skops:")
    assert float(re.search(r"by up to (\S+) ", moved)[1]) > 1e-3  # type: ignore[index]
    assert "(tolerance 0.001)" in moved
    # the loan-risk model is the same, but its spec pins other bytes
    pin = next(line for line in lines if "loan-risk-score" in line)
    assert "specs/loan-risk-score.yaml pins " + "0" * 64 in pin
    assert "Traceback" not in result.stderr


def test_bundled_models_pass_their_gates(cli: Callable[..., Result], repo: Path) -> None:
    result = cli("evaluate", repo / "specs")
    assert result.code == 0, result.out
    rows = [
        line.split()
        for line in result.out.splitlines()
        if line.startswith(("credit-default", "loan-risk-score"))
    ]
    assert {(r[0], r[1], r[2], r[3]) for r in rows} >= {
        ("credit-default", "1.4.0", "production", "accuracy"),
        ("credit-default", "1.4.0", "staging", "roc_auc"),
        ("loan-risk-score", "2.1.0", "production", "mse"),
        ("loan-risk-score", "2.1.0", "staging", "r2"),
    }
    assert all(r[-1] == "pass" for r in rows)
    assert "2 model versions evaluated: 10 gates passed, 0 failed" in result.out
    # the records written are the committed ones: evaluate is deterministic
    for path in (REPO / "evaluations").rglob("*.json"):
        assert (repo / path.relative_to(REPO)).read_text() == path.read_text()


def test_measured_accuracy_matches_scikit_learn(cli: Callable[..., Result], repo: Path) -> None:
    payload = json.loads(cli("evaluate", repo / "specs", "--format", "json", "--no-write").out)
    record = next(r for r in payload["records"] if r["model"] == "credit-default")
    model = load_model((REPO / "models/credit-default/1.4.0/model.skops").read_bytes())
    holdout = read_holdout((REPO / "data/credit-default/holdout.csv").read_bytes(), "holdout", "default", [])
    expected = accuracy_score(holdout.y, model.predict(holdout.x))
    assert record["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert set(record["metrics"]) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    baseline = record["baseline"]["income"]
    assert len(baseline["proportions"]) == len(baseline["edges"]) + 1
    assert sum(baseline["proportions"]) == pytest.approx(1.0, abs=1e-3)


def _replace_artifact(repo: Path, content: bytes, *, unpin: bool = True) -> None:
    (repo / "models/credit-default/1.4.0/model.skops").write_bytes(content)
    spec = repo / "specs/credit-default.yaml"
    text = spec.read_text()
    if unpin:
        text = "\n".join(line for line in text.splitlines() if "sha256:" not in line) + "\n"
    spec.write_text(text)


def _bad_classifier() -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    return LogisticRegression().fit(x, rng.integers(0, 2, size=400))  # labels are noise


def test_a_bad_model_fails_its_gates_with_a_table(cli: Callable[..., Result], repo: Path) -> None:
    _replace_artifact(repo, deterministic_bytes(_bad_classifier()))
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    failing = [line.split() for line in result.out.splitlines() if line.endswith("FAIL")]
    assert {(r[0], r[3]) for r in failing} >= {("credit-default", "accuracy"), ("credit-default", "roc_auc")}
    measured = float(next(r for r in failing if r[3] == "roc_auc")[-2])
    assert measured < 0.85
    assert "failed" in result.out.splitlines()[-1]


def test_failing_gates_as_github_annotations(cli: Callable[..., Result], repo: Path) -> None:
    _replace_artifact(repo, deterministic_bytes(_bad_classifier()))
    result = cli("evaluate", repo / "specs", "--no-write", "--format", "github", "--env", "production")
    assert result.code == 1
    lines = [line for line in result.out.splitlines() if "gate roc_auc" in line]
    assert lines and lines[0].startswith("::error file=")
    assert (
        "credit-default.yaml,line=26,col=7,title=modelops gate::credit-default (production): gate roc_auc needs >= 0.85"
        in lines[0]
    )


def test_pickle_files_are_refused(cli: Callable[..., Result], repo: Path) -> None:
    _replace_artifact(repo, pickle.dumps(_bad_classifier()))
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert "credit-default: the artifact is a pickle file. modelops never unpickles" in result.out


def test_joblib_files_are_refused(cli: Callable[..., Result], repo: Path, tmp_path: Path) -> None:
    joblib.dump(_bad_classifier(), tmp_path / "m.joblib", compress=3)
    _replace_artifact(repo, (tmp_path / "m.joblib").read_bytes())
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert "joblib" in result.out and "never unpickles" in result.out


def test_tampered_artifacts_are_refused(cli: Callable[..., Result], repo: Path) -> None:
    artifact = repo / "models/credit-default/1.4.0/model.skops"
    original = artifact.read_bytes()
    _replace_artifact(repo, deterministic_bytes(_bad_classifier()), unpin=False)
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert f"but the spec pins {hashlib.sha256(original).hexdigest()}" in result.out
    assert "tampered" in result.out


def test_untrusted_types_are_refused(cli: Callable[..., Result], repo: Path) -> None:
    dummy = DummyClassifier().fit(np.zeros((4, 4)), [0, 1, 0, 1])
    _replace_artifact(repo, deterministic_bytes(dummy))
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert "not on the trusted list: sklearn.dummy.DummyClassifier" in result.out


def test_artifact_must_match_the_task(cli: Callable[..., Result], repo: Path) -> None:
    regressor = (repo / "models/loan-risk-score/2.1.0/model.skops").read_bytes()
    _replace_artifact(repo, regressor)
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert "the spec says classification, but the artifact is a RandomForestRegressor" in result.out


def test_artifact_must_take_the_spec_features(cli: Callable[..., Result], repo: Path) -> None:
    rng = np.random.default_rng(1)
    three = LogisticRegression().fit(rng.normal(size=(50, 3)), rng.integers(0, 2, size=50))
    _replace_artifact(repo, deterministic_bytes(three))
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert "the artifact takes 3 features, but the spec lists 4" in result.out


def test_missing_holdout_column(cli: Callable[..., Result], repo: Path) -> None:
    csv = repo / "data/credit-default/holdout.csv"
    csv.write_text(csv.read_text().replace("open_accounts", "accounts", 1))
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert "missing feature column(s) open_accounts" in result.out


def test_skops_loader_rejects_garbage() -> None:
    with pytest.raises(ArtifactError, match="not a skops file"):
        load_model(b"hello")
    with pytest.raises(ArtifactError, match="cannot be read"):
        load_model(b"PK\x03\x04garbage")


def test_compile_uses_the_evaluation_record(repo: Path, cli: Callable[..., Result]) -> None:
    assert cli("compile", repo / "specs", "--out", repo / "generated").code == 0
    card = (repo / "generated/production/ml-production/credit-default/model-card.md").read_text()
    assert "| roc_auc | >= 0.85 | 0.9117 | pass |" in card
    shutil.rmtree(repo / "evaluations")
    assert cli("compile", repo / "specs", "--out", repo / "generated").code == 0
    card = (repo / "generated/production/ml-production/credit-default/model-card.md").read_text()
    assert "Not evaluated yet: run `modelops evaluate`" in card
    config = (repo / "generated/production/ml-production/credit-default/configmap.yaml").read_text()
    assert "baseline" not in config


@pytest.mark.parametrize("link", ["the record", "the model's directory"])
def test_evaluate_never_writes_a_record_through_a_link(
    cli: Callable[..., Result], repo: Path, tmp_path: Path, link: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("not modelops's\n")
    records = repo / "evaluations" / "credit-default"
    if link == "the record":
        (records / "1.4.0.json").unlink()
        (records / "1.4.0.json").symlink_to(victim)
    else:
        shutil.rmtree(records)
        records.symlink_to(outside, target_is_directory=True)
    result = cli("evaluate", repo / "specs")
    assert victim.read_text() == "not modelops's\n" and sorted(p.name for p in outside.iterdir()) == [
        "victim.txt"
    ]
    if link == "the record":  # a link in the file's place is replaced by the record itself
        assert result.code == 0, result.err
        assert not (records / "1.4.0.json").is_symlink()
    else:
        assert result.code == 2 and "cannot write evaluations/credit-default/1.4.0.json" in result.err
        assert "Traceback" not in result.err


@pytest.mark.parametrize("target", ["/dev/zero", "outside record", "directory"])
def test_a_record_that_is_not_a_plain_file_is_never_read(
    cli: Callable[..., Result], repo: Path, tmp_path: Path, target: str
) -> None:
    record = repo / "evaluations" / "credit-default" / "1.4.0.json"
    if target == "outside record":  # a valid record, but outside the project: not an input
        outside = tmp_path / "1.4.0.json"
        outside.write_bytes(record.read_bytes())
        record.unlink()
        record.symlink_to(outside)
    elif target == "directory":
        record.unlink()
        record.mkdir()
    else:
        record.unlink()
        record.symlink_to(target)
    assert cli("validate", repo / "specs").code == 0
    assert cli("compile", repo / "specs", "--out", repo / "generated").code == 0
    card = (repo / "generated/production/ml-production/credit-default/model-card.md").read_text()
    assert "Not evaluated yet: run `modelops evaluate`" in card


def _crafted_tree(damage: str) -> bytes:
    """A decision tree over the spec's four features whose saved arrays were edited: its nodes
    pointing past the end of the tree (scikit-learn crashes) or back to the root (it loops)."""
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, (x[:, 0] > 0).astype(int))
    state = tree.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**6 if damage == "past the end" else 0
    nodes["right_child"][0] = 10**6 if damage == "past the end" else 0
    state["nodes"] = nodes
    tree.tree_.__setstate__(state)
    return deterministic_bytes(tree)


@pytest.mark.parametrize("damage", ["past the end", "a loop"])
def test_a_crafted_tree_is_an_error_not_a_crash_or_a_hang(
    cli: Callable[..., Result], repo: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from compiler.evaluate import isolated

    monkeypatch.setattr(isolated, "SECONDS_PER_VERSION", 20.0)
    _replace_artifact(repo, _crafted_tree(damage))
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1, result.out + result.err
    said = "crashed the process evaluating it" if damage == "past the end" else "took more than 20 s"
    assert said in result.out, result.out
    assert "loan-risk-score" in result.out  # the other model is still evaluated


def _set_targets(repo: Path, value: str) -> None:
    """The holdout's target set to `value` in every row."""
    path = repo / "data/credit-default/holdout.csv"
    lines = path.read_text().splitlines()
    column = lines[0].split(",").index("default")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[column] = value
    path.write_text("\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n")


def test_a_metric_the_holdout_cannot_measure_is_an_error_in_valid_json(
    cli: Callable[..., Result], repo: Path
) -> None:
    _set_targets(repo, "0")  # one class: no ROC AUC
    result = cli("evaluate", repo / "specs", "--no-write", "--format", "json")
    assert result.code == 1
    payload = json.loads(result.out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert any(
        "roc_auc cannot be measured on data/credit-default/holdout.csv" in p["message"]
        for p in payload["problems"]
    )


def test_a_scoring_error_does_not_quote_the_holdout(cli: Callable[..., Result], repo: Path) -> None:
    """Only rows the model predicts as 0, every target 31337: scikit-learn's refusal lists the
    labels it met (`pos_label=1 is not a valid label. It should be one of [0. 31337.]`)."""
    path = repo / "data/credit-default/holdout.csv"
    features = ["income", "debt_ratio", "credit_history_years", "open_accounts"]
    holdout = read_holdout(path.read_bytes(), "holdout.csv", "default", features)
    model = load_model((repo / "models/credit-default/1.4.0/model.skops").read_bytes())
    zeros = model.predict(holdout.x) == 0
    lines = path.read_text().splitlines()
    path.write_text(
        "\n".join([lines[0], *(line for line, zero in zip(lines[1:], zeros, strict=True) if zero)]) + "\n"
    )
    _set_targets(repo, "31337")
    result = cli("evaluate", repo / "specs", "--no-write")
    assert result.code == 1
    assert "scoring data/credit-default/holdout.csv failed" in result.out
    assert "31337" not in result.out + result.err

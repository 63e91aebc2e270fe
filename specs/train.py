"""Train the two demo models on synthetic data and save them as skops files with holdouts.

Fixed seeds and deterministic skops bytes: on one machine, running it again gives the same
files. Across CPUs the BLAS kernels round differently, so the bytes (and the sha256 pins) of a
retrained model may differ by the last bits of a float. The committed files are therefore the
source of truth, and `--check` compares behaviour, not bytes. scikit-learn only; nothing is
downloaded.

    python specs/train.py            # (re)write models/ and data/, print the sha256 pins
    python specs/train.py --check    # retrain in memory; exit 1 unless the committed files
                                     # match their pins and behave like the fresh models
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.evaluate.dataset import Holdout, read_holdout  # noqa: E402
from compiler.evaluate.scoring import score  # noqa: E402
from compiler.modelio.fits import check_fits_spec  # noqa: E402
from compiler.modelio.skops_files import ArtifactError, deterministic_bytes, load_model  # noqa: E402

TRAIN_ROWS, HOLDOUT_ROWS = 4000, 600

# --check tolerances, relative to max(1, the largest committed value): absolute for
# probabilities and for metrics in [0, 1], relative for scores and for mse, rmse and mae.
# Across CPUs the demo models differ by about 1e-15; one L-BFGS iteration more or less
# moves probabilities by about 1e-4; other data, features, seeds or hyperparameters move
# them by 1e-2 or more.
PREDICTION_TOLERANCE = 1e-3  # each holdout prediction (probability of each class, or value)
METRIC_TOLERANCE = 1e-2  # each metric `modelops evaluate` reports (a few flipped labels)
HOLDOUT_TOLERANCE = 1e-5  # each holdout cell, written with 6 significant digits


@dataclass(frozen=True)
class Trained:
    """A freshly trained demo model, its holdout, and where the committed copies live."""

    spec: Path
    artifact: Path
    dataset: Path
    task: str
    target: str
    features: list[str]
    estimator: Any
    holdout: bytes

    def files(self) -> dict[Path, bytes]:
        return {ROOT / self.artifact: deterministic_bytes(self.estimator), ROOT / self.dataset: self.holdout}


def borrowers(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "income": np.round(rng.lognormal(mean=10.8, sigma=0.4, size=n), 2),
        "debt_ratio": np.round(rng.beta(2.0, 5.0, size=n), 4),
        "credit_history_years": np.round(rng.gamma(shape=4.0, scale=2.5, size=n), 2),
        "open_accounts": rng.poisson(4.0, size=n).astype(float),
    }


def credit_default(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    cols = borrowers(rng, n)
    logit = (
        -0.4
        - 1.8 * (np.log(cols["income"]) - 10.8) / 0.4
        + 2.2 * (cols["debt_ratio"] - 0.29) / 0.16
        - 0.9 * (cols["credit_history_years"] - 10.0) / 5.0
        + 0.3 * (cols["open_accounts"] - 4.0) / 2.0
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    names = ["income", "debt_ratio", "credit_history_years", "open_accounts"]
    return np.column_stack([cols[c] for c in names]), label, names


def loan_risk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    cols = borrowers(rng, n)
    amount = np.round(rng.uniform(1_000, 50_000, size=n), 2)
    term = rng.choice([12.0, 24.0, 36.0, 48.0, 60.0], size=n)
    score = (
        15
        + 60 * cols["debt_ratio"]
        + 0.0006 * amount
        - 12 * (np.log(cols["income"]) - 10.8)
        + 0.15 * term
        + rng.normal(0, 3.0, size=n)
    )
    names = ["loan_amount", "term_months", "income", "debt_ratio"]
    features = np.column_stack([amount, term, cols["income"], cols["debt_ratio"]])
    return features, np.round(np.clip(score, 0, 100), 3), names


def holdout_csv(names: list[str], target: str, x: np.ndarray, y: np.ndarray) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, target])
    for row, label in zip(x, y, strict=True):
        writer.writerow([*(format(v, ".6g") for v in row), format(label, ".6g")])
    return out.getvalue().encode()


def build() -> list[Trained]:
    rng = np.random.default_rng(20261126)
    x, y, names = credit_default(rng, TRAIN_ROWS + HOLDOUT_ROWS)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    classifier.fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    credit = Trained(
        spec=Path("specs/credit-default.yaml"),
        artifact=Path("models/credit-default/1.4.0/model.skops"),
        dataset=Path("data/credit-default/holdout.csv"),
        task="classification",
        target="default",
        features=names,
        estimator=classifier,
        holdout=holdout_csv(names, "default", x[TRAIN_ROWS:], y[TRAIN_ROWS:]),
    )

    rng = np.random.default_rng(20261127)
    x, y, names = loan_risk(rng, TRAIN_ROWS + HOLDOUT_ROWS)
    regressor = RandomForestRegressor(n_estimators=25, max_depth=8, min_samples_leaf=4, random_state=0)
    regressor.fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    loan = Trained(
        spec=Path("specs/loan-risk-score.yaml"),
        artifact=Path("models/loan-risk-score/2.1.0/model.skops"),
        dataset=Path("data/loan-risk-score/holdout.csv"),
        task="regression",
        target="risk_score",
        features=names,
        estimator=regressor,
        holdout=holdout_csv(names, "risk_score", x[TRAIN_ROWS:], y[TRAIN_ROWS:]),
    )
    return [credit, loan]


def largest_difference(committed: np.ndarray, fresh: np.ndarray) -> float:
    """The largest difference, relative to max(1, the largest committed magnitude)."""
    if committed.shape != fresh.shape:
        return float("inf")
    if committed.size == 0:
        return 0.0
    scale = max(1.0, float(np.max(np.abs(committed))))
    return float(np.max(np.abs(committed - fresh))) / scale


def predictions(estimator: Any, task: str, holdout: Holdout) -> np.ndarray:
    """What a client sees: class probabilities for a classifier, values for a regressor."""
    if task == "classification":
        return np.asarray(estimator.predict_proba(holdout.x), dtype=float)
    return np.asarray(estimator.predict(holdout.x), dtype=float)


def pinned_sha256(spec: Path) -> str | None:
    """spec.model.sha256 of a bundled spec (None when the spec has no readable pin)."""
    try:
        document = yaml.load((ROOT / spec).read_text(), Loader=yaml.BaseLoader)  # scalars as text
    except (OSError, yaml.YAMLError):
        return None
    for key in ("spec", "model", "sha256"):
        document = document.get(key) if isinstance(document, dict) else None
    return str(document) if document is not None else None


def check(trained: Trained) -> tuple[list[str], str]:
    """What is wrong with the committed files of one model, and a summary when nothing is."""
    artifact_path, dataset_path = ROOT / trained.artifact, ROOT / trained.dataset
    missing = [str(p.relative_to(ROOT)) for p in (artifact_path, dataset_path) if not p.is_file()]
    if missing:
        return [f"{name}: missing; run `python specs/train.py`" for name in missing], ""
    artifact, dataset = artifact_path.read_bytes(), dataset_path.read_bytes()
    problems: list[str] = []

    digest, pin = hashlib.sha256(artifact).hexdigest(), pinned_sha256(trained.spec)
    if pin != digest:
        pinned = f"pins {pin}" if pin else "has no spec.model.sha256"
        problems.append(
            f"{trained.artifact}: sha256 {digest}, but {trained.spec} {pinned}; "
            "put the artifact's sha256 in spec.model.sha256"
        )

    try:
        committed_holdout = read_holdout(dataset, str(trained.dataset), trained.target, trained.features)
        fresh_holdout = read_holdout(trained.holdout, "fresh", trained.target, trained.features)
    except ArtifactError as error:
        return [*problems, f"{error}; run `python specs/train.py`"], ""
    try:
        committed_model = load_model(artifact)
        check_fits_spec(committed_model, trained.task, trained.features)
    except ArtifactError as error:
        return [*problems, f"{trained.artifact}: {error}; run `python specs/train.py`"], ""

    cells = max(
        largest_difference(committed_holdout.x, fresh_holdout.x),
        largest_difference(committed_holdout.y, fresh_holdout.y),
    )
    if not cells <= HOLDOUT_TOLERANCE:  # NaN fails too
        problems.append(
            f"{trained.dataset}: differs from a fresh training run by up to {cells:.2g} "
            f"(tolerance {HOLDOUT_TOLERANCE:g})"
        )

    kind = "probabilities" if trained.task == "classification" else "predictions"
    committed = predictions(committed_model, trained.task, committed_holdout)
    measured = score(committed_model, trained.task, committed_holdout)
    fresh = predictions(trained.estimator, trained.task, committed_holdout)
    retrained = score(trained.estimator, trained.task, committed_holdout)
    moved = largest_difference(committed, fresh)
    if not moved <= PREDICTION_TOLERANCE:
        problems.append(
            f"{trained.artifact}: holdout {kind} differ from a fresh training run by up to "
            f"{moved:.2g} (tolerance {PREDICTION_TOLERANCE:g})"
        )
    for name in sorted(measured.keys() | retrained.keys()):
        old, new = measured.get(name, float("nan")), retrained.get(name, float("nan"))
        if not abs(old - new) <= METRIC_TOLERANCE * max(1.0, abs(old)):
            problems.append(
                f"{trained.artifact}: {name} is {old:g}, a fresh training run gives {new:g} "
                f"(tolerance {METRIC_TOLERANCE:g})"
            )
    if artifact == deterministic_bytes(trained.estimator) and dataset == trained.holdout:
        return problems, "identical to a fresh training run"
    return problems, (
        f"matches a fresh training run within tolerance: bytes differ, holdout {kind} by up to "
        f"{moved:.2g} (tolerance {PREDICTION_TOLERANCE:g})"
    )


def main(argv: list[str]) -> int:
    models = build()
    if "--check" in argv:
        failed = False
        for trained in models:
            problems, summary = check(trained)
            for problem in problems:
                print(f"differs: {problem}")
            if not problems:
                print(f"{trained.artifact}: {summary}")
            failed = failed or bool(problems)
        return 1 if failed else 0
    for trained in models:
        for path, content in trained.files().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            size = len(content)
            digest = hashlib.sha256(content).hexdigest()
            print(f"{path.relative_to(ROOT)}  {size:>7} bytes  sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

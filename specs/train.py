"""Train the two demo models on synthetic data and save them as skops files with holdouts.

Fixed seeds and deterministic skops bytes: running it again gives the same files, so the
sha256 pins in the specs stay valid. scikit-learn only; nothing is downloaded.

    python specs/train.py            # (re)write models/ and data/, print the sha256 pins
    python specs/train.py --check    # exit 1 if the committed files differ from a fresh run
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.modelio.skops_files import deterministic_bytes  # noqa: E402

TRAIN_ROWS, HOLDOUT_ROWS = 4000, 600


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


def build() -> dict[Path, bytes]:
    files: dict[Path, bytes] = {}
    rng = np.random.default_rng(20261126)
    x, y, names = credit_default(rng, TRAIN_ROWS + HOLDOUT_ROWS)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    classifier.fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    files[ROOT / "models/credit-default/1.4.0/model.skops"] = deterministic_bytes(classifier)
    files[ROOT / "data/credit-default/holdout.csv"] = holdout_csv(
        names, "default", x[TRAIN_ROWS:], y[TRAIN_ROWS:]
    )

    rng = np.random.default_rng(20261127)
    x, y, names = loan_risk(rng, TRAIN_ROWS + HOLDOUT_ROWS)
    regressor = RandomForestRegressor(n_estimators=25, max_depth=8, min_samples_leaf=4, random_state=0)
    regressor.fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    files[ROOT / "models/loan-risk-score/2.1.0/model.skops"] = deterministic_bytes(regressor)
    files[ROOT / "data/loan-risk-score/holdout.csv"] = holdout_csv(
        names, "risk_score", x[TRAIN_ROWS:], y[TRAIN_ROWS:]
    )
    return files


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        stale = [p for p, content in files.items() if not p.is_file() or p.read_bytes() != content]
        for path in stale:
            print(f"differs from a fresh training run: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        size = len(content)
        print(f"{path.relative_to(ROOT)}  {size:>7} bytes  sha256 {hashlib.sha256(content).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

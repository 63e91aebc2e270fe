"""The example model `modelops init` trains on the spot, so a new project evaluates at once.

Synthetic data from a fixed seed, a scaled logistic regression saved with skops (trusted
types only) as deterministic bytes; the spec pins whatever bytes this machine produced, so
a retrain on another CPU never breaks the pin of a project already written. scikit-learn is
imported here only, when `init` runs without --minimal.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass

from compiler.errors import UsageError

FEATURES = ("tenure_months", "monthly_spend", "support_tickets")
TARGET = "churned"
TRAIN_ROWS, HOLDOUT_ROWS = 1500, 300
SEED = 20260101


@dataclass(frozen=True)
class Example:
    """The artifact and holdout bytes of the example model, and the artifact's sha256 pin."""

    artifact: bytes
    holdout: bytes
    sha256: str


def train() -> Example:
    """Train the example classifier; UsageError when scikit-learn is not installed."""
    try:
        import numpy as np
        import skops.io  # noqa: F401  (deterministic_bytes saves with it)
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from compiler.modelio.skops_files import deterministic_bytes
    except ImportError as err:
        raise UsageError(
            f"modelops init trains an example model with scikit-learn, which is not installed ({err.name}); "
            "install modelops[ml] (pip install 'modelops[ml]'), or run `modelops init --minimal`"
        ) from None
    rng = np.random.default_rng(SEED)
    rows = TRAIN_ROWS + HOLDOUT_ROWS
    tenure = np.round(rng.gamma(shape=2.0, scale=12.0, size=rows), 1)
    spend = np.round(rng.lognormal(mean=3.8, sigma=0.5, size=rows), 2)
    tickets = rng.poisson(1.5, size=rows).astype(float)
    logit = -0.3 - 2.2 * (tenure - 24) / 17 + 0.8 * (spend - 50) / 27 + 1.6 * (tickets - 1.5) / 1.2
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    x = np.column_stack([tenure, spend, tickets])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x[:TRAIN_ROWS], label[:TRAIN_ROWS])

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FEATURES, TARGET])
    for row, value in zip(x[TRAIN_ROWS:], label[TRAIN_ROWS:], strict=True):
        writer.writerow([*(format(v, ".6g") for v in row), str(value)])
    artifact = deterministic_bytes(model)
    return Example(artifact, out.getvalue().encode(), hashlib.sha256(artifact).hexdigest())

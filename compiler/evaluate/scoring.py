"""Score a fitted estimator on a holdout set: every metric a gate may name for its task."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from compiler.evaluate.dataset import Holdout
from compiler.spec.records import FeatureBaseline

BASELINE_BINS = 10


def score(estimator: Any, task: str, holdout: Holdout) -> dict[str, float]:
    from sklearn import metrics

    y, predicted = holdout.y, estimator.predict(holdout.x)
    if task == "regression":
        mse = float(metrics.mean_squared_error(y, predicted))
        return _rounded(
            {
                "mse": mse,
                "rmse": math.sqrt(mse),
                "mae": float(metrics.mean_absolute_error(y, predicted)),
                "r2": float(metrics.r2_score(y, predicted)),
            }
        )
    classes = list(getattr(estimator, "classes_", np.unique(y)))
    binary = len(classes) == 2
    average: Any = "binary" if binary else "macro"
    extra: dict[str, Any] = {"pos_label": classes[1]} if binary else {}
    found = {
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "precision": float(metrics.precision_score(y, predicted, average=average, zero_division=0, **extra)),
        "recall": float(metrics.recall_score(y, predicted, average=average, zero_division=0, **extra)),
        "f1": float(metrics.f1_score(y, predicted, average=average, zero_division=0, **extra)),
    }
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(holdout.x)
        try:
            if binary:
                found["roc_auc"] = float(metrics.roc_auc_score(y, proba[:, 1]))
            else:
                found["roc_auc"] = float(metrics.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
        except ValueError:
            pass  # a holdout with one class only has no ROC curve; a roc_auc gate then fails as unmeasured
    return _rounded(found)


def _rounded(values: dict[str, float]) -> dict[str, float]:
    """Six significant digits: enough for gates, stable across BLAS builds."""
    return {name: float(f"{value:.6g}") for name, value in values.items()}


def drift_baseline(holdout: Holdout, bins: int = BASELINE_BINS) -> dict[str, FeatureBaseline]:
    """Per feature: the bins of its holdout values and the share of rows in each."""
    return {name: value_baseline(holdout.x[:, column], bins) for column, name in enumerate(holdout.features)}


def prediction_baseline(predicted: Any, task: str, bins: int = BASELINE_BINS) -> FeatureBaseline:
    """The holdout's predictions: a classifier's by class, a regressor's in quantile bins."""
    return value_baseline(np.asarray(predicted, dtype=float), bins, categorical=task == "classification")


def value_baseline(values: Any, bins: int, *, categorical: bool = False) -> FeatureBaseline:
    """Categories when asked or when there are at most `bins` distinct values (quantile edges
    of such data would leave bins empty), else inner edges at quantiles."""
    from compiler.metrics.drift import bin_of

    distinct = np.unique(values)
    categories: list[float] | None = None
    edges: list[float] = []
    if categorical or len(distinct) <= bins:
        categories = [float(v) for v in distinct]
    else:
        quantiles = np.quantile(values, [i / bins for i in range(1, bins)])
        edges = sorted({float(f"{q:.6g}") for q in quantiles})
    counts = [0] * ((len(categories) if categories is not None else len(edges)) + 1)
    for value in values:
        counts[bin_of(edges, categories, float(value))] += 1
    proportions = [float(f"{c / len(values):.6g}") for c in counts]
    return FeatureBaseline(edges=edges, proportions=proportions, categories=categories)

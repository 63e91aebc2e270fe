"""A loaded artifact must be the model its spec declares: the evaluator and the runtime both check it."""

from __future__ import annotations

from typing import Any

from compiler.modelio.skops_files import ArtifactError


def check_fits_spec(estimator: Any, task: str, features: list[str]) -> None:
    """The artifact must be the kind of model the spec says, taking the spec's features."""
    from sklearn.base import is_classifier, is_regressor

    if task == "classification" and not is_classifier(estimator):
        kind = type(estimator).__name__
        raise ArtifactError(f"the spec says classification, but the artifact is a {kind}, not a classifier")
    if task == "regression" and not is_regressor(estimator):
        raise ArtifactError(
            f"the spec says regression, but the artifact is a {type(estimator).__name__}, not a regressor"
        )
    expected = getattr(estimator, "n_features_in_", None)
    if features and expected is not None and expected != len(features):
        raise ArtifactError(f"the artifact takes {expected} features, but the spec lists {len(features)}")
    names = getattr(estimator, "feature_names_in_", None)
    if features and names is not None and list(names) != features:
        trained = ", ".join(map(str, names))
        raise ArtifactError(
            f"the artifact was trained on features {trained}, but the spec lists {', '.join(features)}"
        )

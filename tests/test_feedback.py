"""Prediction ids, ground-truth feedback and the drift bin counters, on a real runtime.

The runtime runs the configuration compiled from a freshly evaluated copy of the project
(tests/evaluated_project.py), so the prediction baseline and categorical bins are there.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from compiler.metrics.drift import bin_labels, bin_of
from compiler.serving.config import RuntimeConfig
from compiler.serving.feedback import PendingPredictions
from tests.evaluated_project import compiled_config, evaluated_project
from tests.runtime import Runtime, columns, holdout_rows, running, sample

CREDIT = ("production", "ml-production", "credit-default")
LOAN = ("production", "ml-production", "loan-risk-score")
CREDIT_DATA = "data/credit-default/holdout.csv"
LOAN_DATA = "data/loan-risk-score/holdout.csv"
INFER = "/v2/models/{}/infer"
FEEDBACK = "/v2/models/{}/feedback"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return evaluated_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def credit(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running(compiled_config(generated, *CREDIT), tmp_path_factory.mktemp("credit")) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def loan(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running(compiled_config(generated, *LOAN), tmp_path_factory.mktemp("loan")) as runtime:
        yield runtime


def _features(config: dict[str, Any]) -> list[dict[str, str]]:
    features: list[dict[str, str]] = config["model"]["features"]
    return features


def _infer(runtime: Runtime, model: str, rows: list[dict[str, float]], features: Any, **extra: Any) -> Any:
    status, body = runtime.request("POST", INFER.format(model), {**columns(rows, features), **extra})
    assert status == 200, body
    return body


def _metric(runtime: Runtime, name: str, **labels: str) -> float:
    return sample(name, runtime.metrics(), **labels)


def test_every_prediction_carries_an_id(credit: Runtime, generated: Path) -> None:
    features = _features(compiled_config(generated, *CREDIT))
    rows = holdout_rows(CREDIT_DATA, 3)
    assert _infer(credit, "credit-default", rows, features, id="mine-1")["id"] == "mine-1"
    first = _infer(credit, "credit-default", rows, features)["id"]
    second = _infer(credit, "credit-default", rows, features)["id"]
    assert isinstance(first, str) and len(first) == 32 and first != second


@pytest.mark.parametrize("bad", [123, "", "x" * 129, ["a"]])
def test_a_bad_request_id_is_a_400(credit: Runtime, generated: Path, bad: Any) -> None:
    body = {
        **columns(holdout_rows(CREDIT_DATA, 1), _features(compiled_config(generated, *CREDIT))),
        "id": bad,
    }
    before = _metric(credit, "modelops_invalid_inputs_total", reason="schema")
    status, answer = credit.request("POST", INFER.format("credit-default"), body)
    assert status == 400 and "'id'" in answer["error"]
    assert _metric(credit, "modelops_invalid_inputs_total", reason="schema") == before + 1


def test_inputs_and_predictions_are_counted_in_the_baseline_bins(generated: Path, tmp_path: Path) -> None:
    config = compiled_config(generated, *CREDIT)
    rows = holdout_rows(CREDIT_DATA, 300)
    with running(config, tmp_path) as runtime:
        predicted = _infer(runtime, "credit-default", rows, _features(config))["outputs"][0]["data"]
        text = runtime.metrics()
    for name, baseline in config["drift"]["baseline"].items():
        labels = bin_labels(baseline["edges"], baseline.get("categories"))
        expected = Counter(
            labels[bin_of(baseline["edges"], baseline.get("categories"), r[name])] for r in rows
        )
        for label in labels:  # every bin exists, the empty ones as 0
            got = sample("modelops_feature_bin_total", text, feature=name, bin=label)
            assert got == expected.get(label, 0), (name, label)
    predictions = config["drift"]["predictions"]
    assert predictions["categories"] == [0.0, 1.0]
    assert sample("modelops_prediction_bin_total", text, bin="other") == 0
    for cls in (0, 1):
        assert sample("modelops_prediction_bin_total", text, bin=str(cls)) == predicted.count(cls)


def test_classifier_feedback_gives_correct_and_total_per_class(credit: Runtime, generated: Path) -> None:
    features = _features(compiled_config(generated, *CREDIT))
    rows = holdout_rows(CREDIT_DATA, 120)
    counters = (
        "modelops_feedback_labels_total",
        "modelops_feedback_correct_total",
        "modelops_feedback_predicted_total",
    )
    before = {(c, k): _metric(credit, c, **{"class": k}) for c in counters for k in ("0", "1", "other")}
    judged: list[tuple[float, int]] = []
    feedback = []
    for start in range(0, 120, 4):
        chunk = rows[start : start + 4]
        answer = _infer(credit, "credit-default", chunk, features, id=f"acc-{start}")
        if start % 8 == 0:  # labels come back for half of the requests
            labels = [r["default"] for r in chunk]
            feedback.append({"id": answer["id"], "labels": labels})
            judged += zip(labels, answer["outputs"][0]["data"], strict=True)
    status, outcome = credit.request("POST", FEEDBACK.format("credit-default"), {"feedback": feedback})
    assert status == 200, outcome
    assert outcome == {"accepted": len(feedback), "unknown": 0, "expired": 0}
    text = credit.metrics()

    def grew(counter: str, cls: str) -> float:
        return sample(counter, text, **{"class": cls}) - before[(counter, cls)]

    for cls in (0, 1):
        assert grew("modelops_feedback_labels_total", str(cls)) == sum(1 for t, _ in judged if t == cls)
        assert grew("modelops_feedback_predicted_total", str(cls)) == sum(1 for _, p in judged if p == cls)
        assert grew("modelops_feedback_correct_total", str(cls)) == sum(1 for t, p in judged if t == p == cls)
    # each prediction is judged once: the same feedback again finds nothing
    status, again = credit.request("POST", FEEDBACK.format("credit-default"), {"feedback": feedback[:2]})
    assert status == 200 and again == {"accepted": 0, "unknown": 2, "expired": 0}


def test_a_label_the_model_does_not_know_counts_as_other(credit: Runtime, generated: Path) -> None:
    features = _features(compiled_config(generated, *CREDIT))
    answer = _infer(credit, "credit-default", holdout_rows(CREDIT_DATA, 1), features)
    before = _metric(credit, "modelops_feedback_labels_total", **{"class": "other"})
    body = {"feedback": [{"id": answer["id"], "labels": [7]}]}
    assert credit.request("POST", FEEDBACK.format("credit-default"), body)[0] == 200
    assert _metric(credit, "modelops_feedback_labels_total", **{"class": "other"}) == before + 1


def test_regressor_feedback_sums_absolute_and_squared_errors(loan: Runtime, generated: Path) -> None:
    features = _features(compiled_config(generated, *LOAN))
    rows = holdout_rows(LOAN_DATA, 30)
    answer = _infer(loan, "loan-risk-score", rows, features)
    truth = [r["risk_score"] for r in rows]
    errors = [p - t for p, t in zip(answer["outputs"][0]["data"], truth, strict=True)]
    status, outcome = loan.request(
        "POST", FEEDBACK.format("loan-risk-score"), {"feedback": [{"id": answer["id"], "labels": truth}]}
    )
    assert status == 200 and outcome["accepted"] == 1
    text = loan.metrics()
    assert sample("modelops_feedback_scored_total", text) == 30
    assert math.isclose(
        sample("modelops_feedback_absolute_error_total", text), sum(map(abs, errors)), rel_tol=1e-9
    )
    assert math.isclose(
        sample("modelops_feedback_squared_error_total", text), sum(e * e for e in errors), rel_tol=1e-9
    )


def test_unknown_and_expired_ids_are_counted_not_refused(generated: Path, tmp_path: Path) -> None:
    config = compiled_config(generated, *CREDIT)
    config["feedback"] = {"maxEntries": 100, "ttlSeconds": 0.2}
    with running(config, tmp_path) as runtime:
        answer = _infer(runtime, "credit-default", holdout_rows(CREDIT_DATA, 1), _features(config))
        time.sleep(0.5)  # past the time to live
        body = {"feedback": [{"id": answer["id"], "labels": [0]}, {"id": "never-sent", "labels": [1]}]}
        status, outcome = runtime.request("POST", FEEDBACK.format("credit-default"), body)
        text = runtime.metrics()
    assert status == 200 and outcome == {"accepted": 0, "unknown": 1, "expired": 1}
    assert sample("modelops_feedback_unmatched_total", text, reason="expired") == 1
    assert sample("modelops_feedback_unmatched_total", text, reason="unknown") == 1
    assert sample("modelops_feedback_requests_total", text, code="200") == 1


BAD_FEEDBACK = {
    "not-json": (b"{feedback", "JSON"),
    "no-feedback": (b'{"ids": []}', "'feedback'"),
    "empty": (b'{"feedback": []}', "'feedback'"),
    "no-id": (b'{"feedback": [{"labels": [1]}]}', "'id'"),
    "null-id": (b'{"feedback": [{"id": null, "labels": [1]}]}', "'id'"),
    "string-label": (b'{"feedback": [{"id": "a", "labels": ["1"]}]}', "number"),
    "nan-label": (b'{"feedback": [{"id": "a", "labels": [NaN]}]}', "JSON"),
    "huge-label": (b'{"feedback": [{"id": "a", "labels": [1e999]}]}', "finite"),
    "too-many": (json.dumps({"feedback": [{"id": "a", "labels": [0] * 10_001}]}).encode(), "maxRows"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEEDBACK))
def test_bad_feedback_is_a_400(credit: Runtime, case: str) -> None:
    raw, message = BAD_FEEDBACK[case]
    before = _metric(credit, "modelops_feedback_requests_total", code="400")
    status, body = credit.request("POST", FEEDBACK.format("credit-default"), raw=raw)
    assert status == 400 and message in body["error"], body
    assert _metric(credit, "modelops_feedback_requests_total", code="400") == before + 1
    assert _metric(credit, "modelops_requests_total", code="500") == 0


def test_a_wrong_label_count_is_a_400_and_applies_nothing(credit: Runtime, generated: Path) -> None:
    features = _features(compiled_config(generated, *CREDIT))
    answer = _infer(credit, "credit-default", holdout_rows(CREDIT_DATA, 2), features)
    wrong = {"feedback": [{"id": answer["id"], "labels": [0, 1, 1]}]}
    status, body = credit.request("POST", FEEDBACK.format("credit-default"), wrong)
    assert status == 400 and "2 rows" in body["error"]
    right = {"feedback": [{"id": answer["id"], "labels": [0, 1]}]}
    assert credit.request("POST", FEEDBACK.format("credit-default"), right) == (
        200,
        {"accepted": 1, "unknown": 0, "expired": 0},
    )


def test_a_label_whose_error_overflows_is_a_400(loan: Runtime, generated: Path) -> None:
    features = _features(compiled_config(generated, *LOAN))
    answer = _infer(loan, "loan-risk-score", holdout_rows(LOAN_DATA, 1), features)
    body = {"feedback": [{"id": answer["id"], "labels": [1e308]}]}
    status, error = loan.request("POST", FEEDBACK.format("loan-risk-score"), body)
    assert status == 400 and "too far" in error["error"]
    assert math.isfinite(_metric(loan, "modelops_feedback_squared_error_total"))


def test_labels_whose_errors_overflow_together_are_a_400(loan: Runtime, generated: Path) -> None:
    """Each squared error is finite (1e308), their sum is not: the counter would stay infinite."""
    features = _features(compiled_config(generated, *LOAN))
    answer = _infer(loan, "loan-risk-score", holdout_rows(LOAN_DATA, 2), features)
    body = {"feedback": [{"id": answer["id"], "labels": [1e154, 1e154]}]}
    status, error = loan.request("POST", FEEDBACK.format("loan-risk-score"), body)
    assert status == 400 and "too far" in error["error"]
    assert math.isfinite(_metric(loan, "modelops_feedback_squared_error_total"))
    assert math.isfinite(_metric(loan, "modelops_feedback_absolute_error_total"))


def test_feedback_for_another_model_is_a_404(credit: Runtime) -> None:
    body = {"feedback": [{"id": "a", "labels": [1]}]}
    assert credit.request("POST", FEEDBACK.format("other"), body)[0] == 404


def test_memory_stays_bounded_when_ids_are_never_answered(generated: Path, tmp_path: Path) -> None:
    config = compiled_config(generated, *CREDIT)
    config["feedback"] = {"maxEntries": 500, "ttlSeconds": 3600}
    rows = holdout_rows(CREDIT_DATA, 10)
    with running(config, tmp_path) as runtime:
        for _ in range(200):  # 2000 predictions, none ever answered
            _infer(runtime, "credit-default", rows, _features(config))
        text = runtime.metrics()
    assert sample("modelops_feedback_pending", text) == 500
    assert sample("modelops_feedback_dropped_total", text) == 1500


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_store_counts_only_unexpired_entries_as_dropped() -> None:
    clock = Clock()
    store = PendingPredictions(max_entries=4, ttl_seconds=10, clock=clock)
    assert store.add("a", [1, 2]) == 0
    assert store.add("b", [3, 4]) == 0
    assert store.add("c", [5]) == 2  # "a" was alive: dropped
    clock.now = 11  # "b" and "c" expire
    assert store.add("d", [6, 7, 8]) == 0  # expired entries make room without being counted
    assert store.held == 4  # "c" expired but stays until its room is needed
    assert store.take("b") == "unknown" and store.take("c") == "expired"
    assert store.take("d") == (6, 7, 8)


def test_the_store_tells_expired_from_unknown_and_replaces_a_reused_id() -> None:
    clock = Clock()
    store = PendingPredictions(max_entries=10, ttl_seconds=5, clock=clock)
    store.add("a", [1])
    store.add("a", [2, 3])  # a client reusing its id: the newer prediction counts
    assert store.held == 2
    clock.now = 6
    assert store.take("a") == "expired" and store.take("a") == "unknown"
    assert store.held == 0
    assert store.add("big", list(range(11))) == 11  # larger than the store: dropped at once
    assert store.held == 0


def test_a_config_compiled_before_drift_moved_to_prometheus_still_loads(generated: Path) -> None:
    """A new runtime image may meet an old ConfigMap: its `drift.windowSize` is read and ignored."""
    config = compiled_config(generated, *CREDIT)
    config["drift"]["windowSize"] = 1000
    del config["feedback"]
    loaded = RuntimeConfig.model_validate(config)
    assert loaded.feedback.maxEntries == 100_000 and loaded.drift is not None

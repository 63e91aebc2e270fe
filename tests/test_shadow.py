"""Shadow rollouts: `modelops serve` answers with the stable model and scores a candidate off the
response path, counting agreement; the compiler puts the candidate into the runtime config.

Candidates are real skops artifacts trained here on the holdouts, shaped to agree, disagree,
differ by known amounts or fail; the runtimes are real processes, except where a candidate has
to be held still (a full queue), which runs the same app in-process under uvicorn.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry

from compiler import api
from compiler.modelio.skops_files import ArtifactError, deterministic_bytes, load_model
from compiler.serving.config import RuntimeConfig
from tests.conftest import Result
from tests.runtime import (
    CREDIT,
    LOAN,
    REPO,
    Runtime,
    columns,
    free_port,
    holdout_rows,
    running,
    runtime_config,
    sample,
    start_runtime,
)

CANDIDATE = "1.5.0"
CREDIT_DATA = "data/credit-default/holdout.csv"
LOAN_DATA = "data/loan-risk-score/holdout.csv"
ROWS = 40
HOLDOUT = 600  # every row of each bundled holdout
TOLERANCE = 2.5
NEAR, FAR = 1.0, 4.0  # a regressor candidate's offsets: within the tolerance, and beyond it


def features(model: tuple[str, str, str]) -> list[dict[str, str]]:
    declared: list[dict[str, str]] = runtime_config(*model)["model"]["features"]
    return declared


def matrix(rows: list[dict[str, float]], model: tuple[str, str, str]) -> Any:
    return np.array([[row[f["name"]] for f in features(model)] for row in rows], dtype=float)


def stable_model(model: tuple[str, str, str]) -> Any:
    return load_model((REPO / runtime_config(*model)["model"]["uri"]).read_bytes())


def save(estimator: Any, path: Path) -> tuple[str, str]:
    """The artifact written to `path`: its uri (absolute, as fetch takes it) and sha256."""
    data = deterministic_bytes(estimator)
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest()


def with_shadow(model: tuple[str, str, str], uri: str, sha256: str, **extra: Any) -> dict[str, Any]:
    config = runtime_config(*model)
    config["shadow"] = {"version": CANDIDATE, "uri": uri, "sha256": sha256, **extra}
    return config


def infer(base: str, model: tuple[str, str, str], rows: list[dict[str, float]]) -> list[Any]:
    """The predictions a 200 answer carries (urllib raises on any other status)."""
    status, body, _ = raw_infer(base, f"/v2/models/{model[2]}/infer", columns(rows, features(model)))
    assert status == 200
    data: list[Any] = json.loads(body)["outputs"][0]["data"]
    return data


def comparisons(text: str, outcome: str) -> float:
    return sample("modelops_shadow_comparisons_total", text, outcome=outcome, candidate=CANDIDATE)


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for the shadow worker, which runs behind the answers (a bound, not a timing check)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def assert_every_row_compared(text: str, *, disagreeing: int) -> None:
    """Every holdout row was shadowed (none dropped, none failed), `disagreeing` of them differ."""
    assert sample("modelops_shadow_dropped_total", text, candidate=CANDIDATE) == 0
    assert comparisons(text, "agree") == HOLDOUT - disagreeing
    assert comparisons(text, "disagree") == disagreeing
    assert comparisons(text, "error") == 0


def settled(runtime: Runtime, rows: int) -> str:
    """The scrape once the worker has compared `rows` rows."""
    eventually(
        lambda: sum(comparisons(runtime.metrics(), o) for o in ("agree", "disagree", "error")) >= rows,
        f"the shadow compared fewer than {rows} rows",
    )
    return runtime.metrics()


def regularised_candidate() -> Any:
    """credit-default's pipeline retrained on its holdout with a hundred times its regularisation
    (C=0.01): a real other classifier that agrees with the stable on most holdout rows, not all."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = holdout_rows(CREDIT_DATA, HOLDOUT)
    labels = [int(row["default"]) for row in rows]
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.01)).fit(matrix(rows, CREDIT), labels)


def raw_infer(base: str, path: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read(), response.headers["content-type"]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """credit-default shadowed by a candidate that is the same model, from its own file."""
    workdir = tmp_path_factory.mktemp("twin")
    uri, sha256 = save(stable_model(CREDIT), workdir / "candidate.skops")
    with running(with_shadow(CREDIT, uri, sha256), workdir) as runtime:
        yield runtime


def test_a_candidate_that_is_the_same_model_always_agrees(twin: Runtime) -> None:
    rows = holdout_rows(CREDIT_DATA, ROWS)
    for start in range(0, ROWS, 10):
        infer(twin.base, CREDIT, rows[start : start + 10])
    text = settled(twin, ROWS)
    labels = {"model": "credit-default", "version": "1.4.0", "candidate": CANDIDATE}
    assert sample("modelops_shadow_comparisons_total", text, outcome="agree", **labels) == ROWS
    assert comparisons(text, "disagree") == comparisons(text, "error") == 0
    assert sample("modelops_shadow_dropped_total", text, **labels) == 0
    assert "modelops_shadow_difference" not in text  # a classifier has no difference histogram
    # the candidate's answers are not the users': the stable's prediction counts hold each row once
    predicted = sum(sample("modelops_predictions_total", text, **{"class": c}) for c in ("0", "1"))
    assert predicted == ROWS


def test_answers_are_byte_identical_with_and_without_a_shadow(twin: Runtime, credit: Runtime) -> None:
    body = {"id": "same-request", **columns(holdout_rows(CREDIT_DATA, 25), features(CREDIT))}
    path = "/v2/models/credit-default/infer"
    assert raw_infer(twin.base, path, body) == raw_infer(credit.base, path, body)
    assert twin.request("GET", "/v2/models/credit-default") == credit.request(
        "GET", "/v2/models/credit-default"
    )


def test_without_a_shadow_no_shadow_series_are_exported(credit: Runtime) -> None:
    assert "shadow" not in credit.metrics()


def test_a_candidate_that_predicts_the_other_class_always_disagrees(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    rows = holdout_rows(CREDIT_DATA, ROWS)
    stable = stable_model(CREDIT).predict(matrix(rows, CREDIT))
    contrary = DecisionTreeClassifier(random_state=0).fit(matrix(rows, CREDIT), 1 - stable)
    runtime = start_runtime(with_shadow(CREDIT, *save(contrary, tmp_path / "contrary.skops")), tmp_path)
    try:
        runtime.wait_ready()
        answered = infer(runtime.base, CREDIT, rows)
        text = settled(runtime, ROWS)
    finally:
        assert runtime.stop() == 0  # the worker stops with the server
    assert answered == stable.tolist()  # the stable model answered
    assert comparisons(text, "disagree") == ROWS
    assert comparisons(text, "agree") == comparisons(text, "error") == 0


def test_a_regressor_candidate_fills_the_difference_histogram(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeRegressor

    rows = holdout_rows(LOAN_DATA, ROWS)
    stable = stable_model(LOAN).predict(matrix(rows, LOAN))
    offsets = np.array([NEAR if i % 4 else -FAR for i in range(ROWS)])  # one row in four is far
    shifted = DecisionTreeRegressor(random_state=0).fit(matrix(rows, LOAN), stable + offsets)
    config = with_shadow(LOAN, *save(shifted, tmp_path / "shifted.skops"), tolerance=TOLERANCE)
    with running(config, tmp_path) as runtime:
        answered = infer(runtime.base, LOAN, rows)
        text = settled(runtime, ROWS)
    assert answered == pytest.approx(stable.tolist())
    far = ROWS // 4
    assert comparisons(text, "agree") == ROWS - far
    assert comparisons(text, "disagree") == far
    assert comparisons(text, "error") == 0

    def bucket(le: str) -> float:
        return sample("modelops_shadow_difference_bucket", text, le=le, candidate=CANDIDATE)

    assert bucket(str(TOLERANCE)) == ROWS - far  # the tolerance is a bucket: agreement read off it
    assert bucket("0.625") == 0 and bucket("5.0") == bucket("+Inf") == ROWS
    total = sample("modelops_shadow_difference_sum", text, candidate=CANDIDATE)
    assert total == pytest.approx((ROWS - far) * NEAR + far * FAR)


def test_a_failing_candidate_counts_errors_and_changes_no_answer(tmp_path: Path) -> None:
    """A scaler with a zero scale divides by zero on every row: the candidate raises."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = holdout_rows(CREDIT_DATA, ROWS)
    stable = stable_model(CREDIT).predict(matrix(rows, CREDIT))
    broken = make_pipeline(StandardScaler(), LogisticRegression()).fit(matrix(rows, CREDIT), stable)
    broken[0].scale_ = np.zeros_like(broken[0].scale_)
    with running(with_shadow(CREDIT, *save(broken, tmp_path / "broken.skops")), tmp_path) as runtime:
        answers = [infer(runtime.base, CREDIT, rows[start : start + 10]) for start in range(0, ROWS, 10)]
        text = settled(runtime, ROWS)
    assert [p for answer in answers for p in answer] == stable.tolist()
    assert comparisons(text, "error") == ROWS
    assert comparisons(text, "agree") == comparisons(text, "disagree") == 0
    assert sample("modelops_requests_total", text, code="200") == len(answers)
    log = runtime.log.read_text()
    assert log.count(f"the shadow candidate {CANDIDATE} failed to predict") == 1  # logged once
    assert "Traceback" not in log


def send_in_chunks(runtime: Runtime, model: tuple[str, str, str], rows: list[dict[str, float]]) -> None:
    for start in range(0, len(rows), 100):
        infer(runtime.base, model, rows[start : start + 100])


def test_classifier_agreement_counts_match_a_direct_comparison_on_the_holdout(tmp_path: Path) -> None:
    """Exact counts are robust: every holdout probability of both models is far further from 0.5
    than the float noise of another batch size could move it, so no class can flip in the server."""
    rows = holdout_rows(CREDIT_DATA, HOLDOUT)
    x = matrix(rows, CREDIT)
    stable, candidate = stable_model(CREDIT), regularised_candidate()
    for model in (stable, candidate):
        assert np.abs(model.predict_proba(x)[:, 1] - 0.5).min() > 1e-6
    differ = int((stable.predict(x) != candidate.predict(x)).sum())
    assert 5 <= differ <= HOLDOUT // 5  # agrees on most rows, not all
    with running(with_shadow(CREDIT, *save(candidate, tmp_path / "c.skops")), tmp_path) as runtime:
        send_in_chunks(runtime, CREDIT, rows)
        text = settled(runtime, HOLDOUT)
    assert_every_row_compared(text, disagreeing=differ)


def test_regressor_agreement_counts_match_a_direct_comparison_on_the_holdout(tmp_path: Path) -> None:
    """A ridge regression beside the stable forest; no difference lies within 1e-6 of the
    tolerance, so float noise cannot move a row across it."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = holdout_rows(LOAN_DATA, HOLDOUT)
    x = matrix(rows, LOAN)
    ridge = make_pipeline(StandardScaler(), Ridge()).fit(x, [row["risk_score"] for row in rows])
    differences = np.abs(ridge.predict(x) - stable_model(LOAN).predict(x))
    assert np.abs(differences - TOLERANCE).min() > 1e-6
    beyond = int((differences > TOLERANCE).sum())
    assert 0 < beyond < HOLDOUT
    config = with_shadow(LOAN, *save(ridge, tmp_path / "ridge.skops"), tolerance=TOLERANCE)
    with running(config, tmp_path) as runtime:
        send_in_chunks(runtime, LOAN, rows)
        text = settled(runtime, HOLDOUT)
    assert_every_row_compared(text, disagreeing=beyond)
    total = sample("modelops_shadow_difference_sum", text, candidate=CANDIDATE)
    assert total == pytest.approx(differences.sum())


def _fewer_features() -> Any:
    from sklearn.linear_model import LogisticRegression

    rows = holdout_rows(CREDIT_DATA, ROWS)
    return LogisticRegression().fit(matrix(rows, CREDIT)[:, :3], [i % 2 for i in range(ROWS)])


def test_a_bad_shadow_pin_refuses_to_start(tmp_path: Path) -> None:
    uri, _ = save(stable_model(CREDIT), tmp_path / "candidate.skops")
    runtime = start_runtime(with_shadow(CREDIT, uri, "0" * 64), tmp_path)
    assert runtime.process.wait(timeout=60) == 1
    log = runtime.log.read_text()
    assert f"cannot serve credit-default: the shadow candidate {CANDIDATE}: artifact {uri} has sha256 " in log
    assert "but the spec pins " + "0" * 64 in log and "update spec.candidate.sha256" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("features", "the artifact takes 3 features, but the spec lists 4"),
        ("task", "the spec says classification, but the artifact is a DecisionTreeRegressor"),
        ("missing", "not found"),
    ],
)
def test_a_shadow_artifact_that_does_not_fit_the_spec_is_refused(
    tmp_path: Path, case: str, message: str
) -> None:
    """Checked as the stable model is (in-process: the same load the server runs at start-up)."""
    from sklearn.tree import DecisionTreeRegressor

    from compiler.serving.metrics import RuntimeMetrics
    from compiler.serving.model import ServedModel

    rows = holdout_rows(CREDIT_DATA, ROWS)
    wrong: dict[str, Callable[[], Any]] = {
        "features": _fewer_features,
        "task": lambda: DecisionTreeRegressor().fit(matrix(rows, CREDIT), range(ROWS)),
    }
    if case in wrong:
        uri, sha256 = save(wrong[case](), tmp_path / "candidate.skops")
    else:
        uri, sha256 = str(tmp_path / "absent.skops"), "0" * 64
    config = RuntimeConfig.model_validate(with_shadow(CREDIT, uri, sha256))
    served = ServedModel(config, REPO, RuntimeMetrics(config, CollectorRegistry()))
    with pytest.raises(ArtifactError, match=f"^the shadow candidate {CANDIDATE}: ") as refused:
        served.load()
    assert message in str(refused.value)
    assert not served.ready.is_set()


def test_a_regressor_shadow_without_a_tolerance_is_a_usage_error(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    config = with_shadow(LOAN, "candidate.skops", "0" * 64)
    path = tmp_path / "runtime.json"
    path.write_text(json.dumps(config))
    result = cli("serve", "--config", path)
    assert result.code == 2
    assert "shadow.tolerance is required for a regressor" in result.err


class Held:
    """A candidate that waits for the test before predicting: the worker is busy while it waits."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, features: Any) -> Any:
        self.entered.set()
        assert self.release.wait(60), "the test never released the candidate"
        return self.estimator.predict(features)


def test_a_full_queue_drops_shadow_work_and_answers_every_request(tmp_path: Path) -> None:
    import uvicorn

    from compiler.serving.app import create_app
    from compiler.serving.metrics import RuntimeMetrics
    from compiler.serving.model import ServedModel

    uri, sha256 = save(stable_model(CREDIT), tmp_path / "candidate.skops")
    config = RuntimeConfig.model_validate(with_shadow(CREDIT, uri, sha256, queueSize=1))
    registry = CollectorRegistry()
    served = ServedModel(config, REPO, RuntimeMetrics(config, registry))
    served.load()
    assert served.shadow is not None
    held = Held(served.shadow.estimator)
    served.shadow.estimator = held
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(served), host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    rows = holdout_rows(CREDIT_DATA, 5)
    stable = stable_model(CREDIT).predict(matrix(rows, CREDIT)).tolist()
    labels = {"model": "credit-default", "version": "1.4.0", "candidate": CANDIDATE}

    def count(name: str, **extra: str) -> float | None:
        return registry.get_sample_value(name, {**labels, **extra})

    try:
        eventually(lambda: server.started, "uvicorn did not start")
        assert infer(base, CREDIT, rows) == stable  # the worker takes it and is held
        assert held.entered.wait(30)
        assert infer(base, CREDIT, rows) == stable  # waits in the queue, which is now full
        for _ in range(4):
            assert infer(base, CREDIT, rows) == stable  # dropped, still answered
        assert count("modelops_shadow_dropped_total") == 4
        answered = {"model": "credit-default", "version": "1.4.0", "code": "200"}
        assert registry.get_sample_value("modelops_requests_total", answered) == 6
        held.release.set()  # the held request and the queued one are compared, nothing else
        eventually(
            lambda: count("modelops_shadow_comparisons_total", outcome="agree") == 2 * len(rows),
            "the queued request was not compared",
        )
        assert count("modelops_shadow_comparisons_total", outcome="disagree") == 0
    finally:
        held.release.set()
        server.should_exit = True
        thread.join(30)
        served.close()
    assert not thread.is_alive()


# The compile side: the spec's candidate and shadow settings reach the runtime config.

SHADOWED = """\
  candidate:
    version: {version}
    uri: {uri}
    sha256: {sha256}
  rollout:
    strategy: shadow
    shadow: {shadow}
"""


def _add_candidate(project: Path, spec: str, model: tuple[str, str, str], estimator: Any, shadow: str) -> str:
    """Put a candidate artifact into the project and the spec; its sha256."""
    name = model[2]
    artifact = project / "models" / name / CANDIDATE / "model.skops"
    artifact.parent.mkdir(parents=True)
    _, sha256 = save(estimator, artifact)
    path = project / "specs" / spec
    text = path.read_text()
    block = SHADOWED.format(
        version=CANDIDATE, uri=f"models/{name}/{CANDIDATE}/model.skops", sha256=sha256, shadow=shadow
    )
    path.write_text(text.replace("  evaluation:\n", block + "  evaluation:\n", 1))
    return sha256


def _configs(project: Path) -> dict[str, dict[str, Any]]:
    files = api.render(api.check(api.Options(paths=[project / "specs"]))).files
    configs: dict[str, dict[str, Any]] = {}
    for path, content in files.items():
        if path.endswith("/configmap.yaml"):
            data = yaml.safe_load(content)["data"]["runtime.json"]
            configs[path.rsplit("/", 1)[0]] = json.loads(data)
    return configs


def test_the_compiler_puts_the_shadow_candidate_into_the_runtime_config(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    rows = holdout_rows(CREDIT_DATA, ROWS)
    retrained = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        matrix(rows, CREDIT), stable_model(CREDIT).predict(matrix(rows, CREDIT))
    )
    credit_sha = _add_candidate(
        project, "credit-default.yaml", CREDIT, retrained, "{queueSize: 64, maxDisagreement: 0.1}"
    )
    loan_rows = holdout_rows(LOAN_DATA, ROWS)
    tree = DecisionTreeRegressor(max_depth=3).fit(
        matrix(loan_rows, LOAN), [r["risk_score"] for r in loan_rows]
    )
    loan_sha = _add_candidate(project, "loan-risk-score.yaml", LOAN, tree, f"{{tolerance: {TOLERANCE}}}")
    configs = _configs(project)
    credit = configs["production/ml-production/credit-default"]
    assert credit["model"]["version"] == "1.4.0"  # the stable answers
    assert credit["shadow"] == {
        "version": CANDIDATE,
        "uri": f"models/credit-default/{CANDIDATE}/model.skops",
        "sha256": credit_sha,
        "queueSize": 64,
        "tolerance": None,
        "differenceBuckets": [],
    }
    loan = configs["production/ml-production/loan-risk-score"]["shadow"]
    assert (loan["sha256"], loan["queueSize"], loan["tolerance"]) == (loan_sha, 256, TOLERANCE)
    assert TOLERANCE in loan["differenceBuckets"]
    assert loan["differenceBuckets"] == sorted(loan["differenceBuckets"])
    # the runtime serves that config from the project: both artifacts load, every row is compared
    with running(credit, project, cwd=project) as runtime:
        infer(runtime.base, CREDIT, rows)
        text = settled(runtime, ROWS)
    assert comparisons(text, "agree") + comparisons(text, "disagree") == ROWS


def test_without_a_candidate_the_config_has_no_shadow_key(project: Path) -> None:
    before = _configs(project)
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(
        spec.read_text().replace("  evaluation:\n", "  rollout: {strategy: shadow}\n  evaluation:\n", 1)
    )
    after = _configs(project)
    assert after == before
    assert all("shadow" not in config for config in after.values())

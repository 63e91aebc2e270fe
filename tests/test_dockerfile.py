"""The runtime image recipe matches what the generated Deployment expects of it.

No Docker engine runs here, so the image is not built in the tests; this checks the
contract between the two files instead: user, ports, entrypoint, config path, writable dirs.
"""

from __future__ import annotations

import json
import re

import yaml

from compiler.serving.config import CONFIG_DIR, CONFIG_KEY
from compiler.targets.kubernetes.render import MODEL_CACHE_DIR, RUNTIME_UID
from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instruction(name: str) -> str:
    """The last stage's instruction of that name (Docker uses the last one)."""
    matches = re.findall(rf"^{name} (.+)$", DOCKERFILE, re.M)
    assert matches, name
    return str(matches[-1]).strip()


def test_runs_as_the_deployments_user() -> None:
    assert instruction("USER") == f"{RUNTIME_UID}:{RUNTIME_UID}"
    assert f"--uid {RUNTIME_UID}" in DOCKERFILE


def test_entrypoint_and_default_command_match_the_deployment() -> None:
    deployment = yaml.safe_load(
        (REPO / "generated/production/ml-production/credit-default/deployment.yaml").read_text()
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert json.loads(instruction("ENTRYPOINT")) == ["modelops"]
    assert container["args"][:3] == ["serve", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}"]
    assert json.loads(instruction("CMD"))[:3] == container["args"][:3]
    assert {int(p) for p in instruction("EXPOSE").split()} == {p["containerPort"] for p in container["ports"]}


def test_working_directory_is_a_writable_mount() -> None:
    """The root filesystem is read-only: the image may only write where the pod mounts emptyDirs."""
    assert instruction("WORKDIR") == MODEL_CACHE_DIR
    deployment = yaml.safe_load(
        (REPO / "generated/production/ml-production/credit-default/deployment.yaml").read_text()
    )
    mounts = {m["mountPath"] for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert MODEL_CACHE_DIR in mounts and "/tmp" in mounts
    assert "PYTHONDONTWRITEBYTECODE=1" in DOCKERFILE


def test_installs_the_runtime_alone_from_hashes() -> None:
    """The locked runtime packages with pip's hash check, then modelops without its dependencies
    (the compiler's Jinja2, GitPython, Grafana SDK): nothing is resolved at build time."""
    installs = re.findall(r"pip install ([^\\&\n]+)", DOCKERFILE)
    assert [" ".join(i.split()) for i in installs] == [
        "--no-cache-dir --require-hashes --only-binary :all: -r requirements/runtime.lock",
        "--no-cache-dir --no-deps --no-build-isolation .",
    ]
    assert "COPY requirements/runtime.lock requirements/" in DOCKERFILE

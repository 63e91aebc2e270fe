"""What `modelops init` and `modelops new` write: file name -> bytes, computed without writing.

Templates use `[[ ]]`/`[% %]` delimiters because workflow files are full of GitHub's `${{ }}`.
Values reach them only through the `yaml` filter (a JSON string, which YAML reads back as
the same scalar) after being checked here, so no name or remote can add a key or a line.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from jinja2 import Template

from compiler import __version__
from compiler.errors import UsageError
from compiler.scaffold import DEFAULT_TEAM, TASKS
from compiler.spec.project import REPO_URL_PATTERN, URL_MAX
from compiler.spec.types import DNS_LABEL_PATTERN, LABEL_VALUE_PATTERN, MODEL_NAME_MAX
from compiler.templating import bracket_templates

# The repository that publishes the GitHub Action and the pre-commit hooks of this release.
ACTION_REPOSITORY = "modelops-dev/modelops"
EXAMPLE_MODEL = "example-churn"
EXAMPLE_VERSION = "0.1.0"
PLACEHOLDER_REPO_URL = "https://github.com/example/models.git"
# The namespaces are `<project>-production`: keep them within a DNS label's 63 characters.
PROJECT_NAME_MAX = 40

_TEMPLATES = (
    "modelops.yaml.j2",
    "example.yaml.j2",
    "model.yaml.j2",
    "pr.yml.j2",
    "main.yml.j2",
    "pre-commit-config.yaml.j2",
    "zizmor.yml.j2",
)


@cache
def _templates() -> dict[str, Template]:
    folder = resources.files("compiler.scaffold") / "templates"
    return bracket_templates(
        {name: (folder / name).read_text(encoding="utf-8") for name in _TEMPLATES},
        {"yaml": _yaml_scalar},
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _yaml_scalar(value: object) -> str:
    """A double-quoted YAML scalar: JSON's string syntax is YAML's, escapes included."""
    return json.dumps(str(value))


def _render(template: str, **values: object) -> bytes:
    return _templates()[template].render(**values).encode()


def _package_file(package: str, *parts: str) -> bytes:
    return resources.files(package).joinpath(*parts).read_bytes()


def project_name(root: Path) -> str:
    """A DNS label from the directory name (`My Models` -> `my-models`), `models` if none is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", root.resolve().name.lower())[:PROJECT_NAME_MAX].strip("-")
    return slug or "models"


def origin_url(root: Path) -> str | None:
    """`git remote get-url origin` as Argo CD may clone it, without credentials; None if unusable."""
    try:
        result = subprocess.run(
            ["git", "remote", "get-url", "origin"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or root is not a directory yet
        return None
    url = result.stdout.strip()
    if result.returncode != 0 or not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        if parts.scheme == "ssh" and parts.username:  # ssh://git@host/...: the user is no secret
            netloc = f"{parts.username}@{netloc}"
        url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if len(url) > URL_MAX or re.fullmatch(REPO_URL_PATTERN, url) is None:
        return None
    return url


def _action() -> str:
    return f"{ACTION_REPOSITORY}@v{__version__}"


def init_files(root: Path, *, minimal: bool = False) -> dict[str, bytes]:
    """Every file `modelops init` writes in `root`, by relative path.

    Without `minimal`, trains the example model (needs scikit-learn and skops).
    """
    remote = origin_url(root)
    files = {
        "specs/modelops.yaml": _render(
            "modelops.yaml.j2",
            name=project_name(root),
            image=f"ghcr.io/{ACTION_REPOSITORY.split('/')[0]}/modelops-runtime:{__version__}",
            repo_url=remote or PLACEHOLDER_REPO_URL,
            from_remote=remote is not None,
            revision="main",
        )
    }
    if minimal:
        return files
    from compiler.scaffold.example import FEATURES, TARGET, train

    example = train()
    artifact = f"models/{EXAMPLE_MODEL}/{EXAMPLE_VERSION}/model.skops"
    dataset = f"data/{EXAMPLE_MODEL}/holdout.csv"
    files.update(
        {
            "specs/schema/model.json": _package_file("compiler.spec", "schemas", "model.json"),
            "specs/schema/project.json": _package_file("compiler.spec", "schemas", "project.json"),
            f"specs/{EXAMPLE_MODEL}.yaml": _render(
                "example.yaml.j2",
                model=EXAMPLE_MODEL,
                team=DEFAULT_TEAM,
                version=EXAMPLE_VERSION,
                artifact=artifact,
                sha256=example.sha256,
                features=FEATURES,
                dataset=dataset,
                target=TARGET,
            ),
            artifact: example.artifact,
            dataset: example.holdout,
            ".gitignore": _package_file("compiler.scaffold", "templates", "gitignore"),
            ".github/workflows/modelops-pr.yml": _render("pr.yml.j2", action=_action()),
            ".github/workflows/modelops-main.yml": _render("main.yml.j2", action=_action()),
            ".github/zizmor.yml": _render("zizmor.yml.j2", repository=ACTION_REPOSITORY),
            ".pre-commit-config.yaml": _render(
                "pre-commit-config.yaml.j2",
                hooks_repo=f"https://github.com/{ACTION_REPOSITORY}",
                version=__version__,
            ),
        }
    )
    return files


def new_model_files(
    name: str, task: str, *, team: str = DEFAULT_TEAM, specs: str = "specs"
) -> dict[str, bytes]:
    """The skeleton spec `modelops new` writes: every field listed, valid as it stands."""
    if len(name) > MODEL_NAME_MAX or re.fullmatch(DNS_LABEL_PATTERN, name) is None:
        raise UsageError(
            f"model name {name!r} is not a DNS-1123 label of at most {MODEL_NAME_MAX} characters "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)"
        )
    if not team or len(team) > 63 or re.fullmatch(LABEL_VALUE_PATTERN, team) is None:
        raise UsageError(
            f"team {team!r} is not a Kubernetes label value (at most 63 letters, digits, '-', '_', '.')"
        )
    if task not in TASKS:
        raise UsageError(f"task {task!r} is not one of {', '.join(TASKS)}")
    spec = _render(
        "model.yaml.j2",
        model=name,
        team=team,
        task=task,
        artifact=f"models/{name}/0.1.0/model.skops",
        dataset=f"data/{name}/holdout.csv",
    )
    return {f"{specs.rstrip('/')}/{name}.yaml": spec}

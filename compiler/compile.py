"""The render stage as a whole: resolved models in, every file of generated/ out (no writing).

Incremental: the manifest records, per model directory, a hash of everything its files are
rendered from (the resolved model, the stamp, the environment list, the compiler version).
A model whose hash is unchanged keeps its files from the previous tree instead of being
rendered again; since rendering is a pure function of those inputs, the bytes are the same
as a full compile.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from compiler import __version__
from compiler.bundle.layout import (
    KUSTOMIZATION,
    MANIFEST,
    ModelFile,
    build_bundle,
    environment_paths,
    is_object,
    model_directory,
    with_manifest,
)
from compiler.pipeline import Checked
from compiler.resolve.resolved import ResolvedModel
from compiler.targets.kubernetes.labels import Stamp


@dataclass
class Compiled:
    files: dict[str, bytes]
    rendered: int
    reused: int


def input_key(model: ResolvedModel, stamp: Stamp, environments: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for part in (__version__, str(stamp.commit), json.dumps(environments), model.model_dump_json()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _previous_inputs(existing: dict[str, bytes]) -> dict[str, str]:
    try:
        manifest = json.loads(existing[MANIFEST])
        inputs = manifest.get("inputs", {})
    except (KeyError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in inputs.items() if isinstance(k, str) and isinstance(v, str)}


def compile_checked(
    checked: Checked,
    stamp: Stamp,
    existing: dict[str, bytes],
    environments: list[str] | None = None,
    *,
    incremental: bool = True,
) -> Compiled:
    """Every file of the output tree for a validated project (environments: all when None)."""
    catalog = checked.catalog
    assert catalog is not None and checked.ok, "compile only what validated"
    project = catalog.project
    chosen = environments or [env.name for env in project.environments]
    names = [(env.name, env.namespace) for env in project.environments]
    keys = {model_directory(m): input_key(m, stamp, names) for m in checked.models if m.environment in chosen}
    previous = _previous_inputs(existing) if incremental else {}
    reused = 0

    def reuse(model: ResolvedModel) -> list[ModelFile] | None:
        nonlocal reused
        directory = model_directory(model)
        if previous.get(directory) != keys[directory]:
            return None
        prefix = directory + "/"
        kept = [
            (path.removeprefix(prefix), content, is_object(path.removeprefix(prefix)))
            for path, content in existing.items()
            if path.startswith(prefix) and "/" not in path.removeprefix(prefix)
        ]
        kept = [entry for entry in kept if entry[0] != KUSTOMIZATION]
        if not kept:
            return None
        reused += 1
        return kept

    bundle = build_bundle(checked.models, project, stamp, chosen, reuse)
    files = dict(bundle.files)
    inputs = dict(keys)
    if environments:  # keep what belongs to the environments we are not compiling
        ours = tuple(p for env in chosen for p in environment_paths(env))
        files.update(
            {p: c for p, c in existing.items() if not p.startswith(ours) and p not in files and p != MANIFEST}
        )
        inputs.update({d: k for d, k in previous.items() if not d.startswith(ours)})
    rendered = len(keys) - reused
    return Compiled(with_manifest(files, inputs), rendered, reused)

"""JSON Schema of the spec language, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

import json

from compiler.spec.model import API_VERSION, ModelSpec
from compiler.spec.project import Project

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_for(kind: str) -> dict[str, object]:
    model = ModelSpec if kind == "Model" else Project
    schema = model.model_json_schema(by_alias=True)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://modelops.dev/schemas/{API_VERSION.split('/')[1]}/{kind.lower()}.json",
        **schema,
        "title": f"modelops {kind} ({API_VERSION})",
    }


def schema_json(kind: str) -> str:
    return json.dumps(schema_for(kind), indent=2, sort_keys=True) + "\n"

"""Deep merge of layered YAML data, carrying source positions along.

Semantics follow JSON Merge Patch (RFC 7386), which Kustomize users already know: mappings
merge key by key, anything else (lists, scalars) replaces, and `null` removes a key so the
layer below (or the built-in default) applies again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.spec.yamlsource import PathKey, PositionMap


@dataclass(frozen=True)
class Layer:
    """One layer of data, lowest priority first when passed to `merge_layers`."""

    data: Any
    positions: PositionMap
    source_prefix: PathKey


def merge_layers(layers: list[Layer], target_prefix: PathKey) -> tuple[Any, PositionMap]:
    """Merge layers (later wins) and return the data plus positions rebased at target_prefix."""
    positions = PositionMap()
    present = [(layer, layer.source_prefix, layer.data) for layer in layers if layer.data is not None]
    merged = _merge(present, target_prefix, positions)
    return merged, positions


def _merge(stack: list[tuple[Layer, PathKey, Any]], target: PathKey, out: PositionMap) -> Any:
    # Walk from the top layer down while values are mappings; a non-mapping hides the rest.
    mappings: list[tuple[Layer, PathKey, dict[str, Any]]] = []
    for layer, path, value in reversed(stack):
        if isinstance(value, dict):
            mappings.append((layer, path, value))
            continue
        if not mappings:
            out.copy_subtree(layer.positions, path, target, value)
            return value
        break
    mappings.reverse()
    top_layer, top_path, _ = mappings[-1]
    if (pos := top_layer.positions.values.get(top_path)) is not None:
        out.values[target] = pos
    result: dict[str, Any] = {}
    keys: list[str] = []
    for _, _, mapping in mappings:
        keys.extend(k for k in mapping if k not in keys)
    for key in keys:
        children = [(layer, (*path, key), m[key]) for layer, path, m in mappings if key in m]
        if children[-1][2] is None:
            continue  # null removes the key
        children = _after_last_null(children)
        child_target = (*target, key)
        owner, owner_path, _ = children[-1]
        if (pos := owner.positions.keys.get(owner_path)) is not None:
            out.keys[child_target] = pos
        result[key] = _merge(children, child_target, out)
    return result


def _after_last_null(
    children: list[tuple[Layer, PathKey, Any]],
) -> list[tuple[Layer, PathKey, Any]]:
    for index in range(len(children) - 1, -1, -1):
        if children[index][2] is None:
            return children[index + 1 :]
    return children

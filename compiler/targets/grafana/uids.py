"""Stable dashboard uids: at most 40 characters of [a-zA-Z0-9_-], unique per model and environment.

Model and environment names are DNS labels, which never contain '_', so '_' separates them
unambiguously and the overview uid cannot collide with a model's.
"""

from __future__ import annotations

import hashlib

MAX_UID = 40


def _bounded(readable: str, key: str) -> str:
    if len(readable) <= MAX_UID:
        return readable
    return f"mo_{hashlib.sha256(key.encode()).hexdigest()[: MAX_UID - 3]}"


def model_dashboard_uid(environment: str, model: str) -> str:
    return _bounded(f"mo_{environment}_{model}", f"model/{environment}/{model}")


def overview_dashboard_uid(environment: str) -> str:
    return _bounded(f"mo_{environment}__overview", f"overview/{environment}")

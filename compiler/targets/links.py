"""Where each model's dashboard lives: the uids and URL that dashboards, alerts and model cards share.

Kept below every target so that no target imports another just to link to it. Uids are stable,
at most 40 characters of [a-zA-Z0-9_-], unique per model and environment: model and environment
names are DNS labels, which never contain '_', so '_' separates them unambiguously and the
overview uid cannot collide with a model's.
"""

from __future__ import annotations

import hashlib

from compiler.resolve.resolved import ResolvedModel

MAX_UID = 40


def _bounded(readable: str, key: str) -> str:
    if len(readable) <= MAX_UID:
        return readable
    return f"mo_{hashlib.sha256(key.encode()).hexdigest()[: MAX_UID - 3]}"


def model_dashboard_uid(environment: str, model: str) -> str:
    return _bounded(f"mo_{environment}_{model}", f"model/{environment}/{model}")


def overview_dashboard_uid(environment: str) -> str:
    return _bounded(f"mo_{environment}__overview", f"overview/{environment}")


def dashboard_url(model: ResolvedModel) -> str | None:
    """The model's dashboard in its environment's Grafana, when the project names a Grafana URL."""
    base = model.grafana.url
    if base is None:
        return None
    return f"{base.rstrip('/')}/d/{model_dashboard_uid(model.environment, model.name)}"

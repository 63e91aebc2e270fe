"""Sandboxed Jinja2 environments for human text, their compiled templates kept between runs.

Compiling a template costs far more than rendering one: for an incremental compile that
renders a single model, compiling the alert texts and the model card was a tenth of the run.
Jinja's own bytecode cache keeps the compiled code, keyed by template name and a checksum of
its source, in a private per-user directory that Jinja creates and checks. Our file pattern
keeps sandboxed code apart from any other program's Jinja cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from jinja2 import BytecodeCache, DictLoader, FileSystemBytecodeCache, StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

_PATTERN = "__modelops_sandboxed_%s.cache"


@cache
def _bytecode_cache() -> BytecodeCache | None:
    try:
        return FileSystemBytecodeCache(pattern=_PATTERN)
    except (OSError, RuntimeError):  # no usable temporary directory: compile every time
        return None


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, remembering its verdict per (type, attribute): the sandbox decides from
    those alone (a leading underscore, a function's or frame's internals), and asking again for
    every attribute a model card reads was most of the card's cost."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._verdicts: dict[tuple[type, str], bool] = {}  # as many as the templates read

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = super().is_safe_attribute(obj, attr, value)
        return verdict


def sandboxed_templates(
    sources: dict[str, str], filters: Mapping[str, Callable[..., Any]] | None = None, **options: Any
) -> dict[str, Template]:
    """Every named source compiled (or loaded compiled) in one sandboxed environment; the
    filters are added before compiling, which rejects a template naming an unknown one."""
    environment = _Sandbox(
        loader=DictLoader(sources), bytecode_cache=_bytecode_cache(), autoescape=False, **options
    )
    environment.filters.update(filters or {})
    return {name: environment.get_template(name) for name in sources}


def bracket_templates(
    sources: dict[str, str], filters: Mapping[str, Callable[..., Any]] | None = None, **options: Any
) -> dict[str, Template]:
    """Sandboxed templates written with `[[ ]]`, `[% %]` and `[# #]`, for text whose own syntax
    uses braces (GitHub's `${{ }}`, Prometheus's Go templates); an undefined name is an error."""
    return sandboxed_templates(
        sources,
        filters,
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        undefined=StrictUndefined,
        **options,
    )

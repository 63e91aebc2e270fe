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


def sandboxed_templates(
    sources: dict[str, str], filters: Mapping[str, Callable[..., Any]] | None = None, **options: Any
) -> dict[str, Template]:
    """Every named source compiled (or loaded compiled) in one sandboxed environment; the
    filters are added before compiling, which rejects a template naming an unknown one."""
    environment = SandboxedEnvironment(
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

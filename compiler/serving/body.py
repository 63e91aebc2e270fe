"""Reading and decoding request bodies within the pod's memory.

Five bounds keep a hostile or careless client from taking the pod down:
- one body: `server.maxBodyBytes`; a larger Content-Length gets 413 before any byte of the
  body is read, and a chunked body gets 413 as soon as what arrived passes the limit;
- all bodies at once: at most BODIES_IN_FLIGHT limits' worth are being read together; the
  rest wait (TCP back-pressure) instead of each buffering its own. A chunked body reserves
  the whole limit, whatever Content-Length it also claims;
- time: a body must arrive within `server.bodySeconds`, else 408: a few clients that stall
  mid-body would otherwise hold the budget, and every other request wait, for ever;
- values: parsed JSON takes up to ~40 bytes and ~2 µs per body byte (deeply nested empty
  arrays), so the values are counted before parsing and bounded by what `server.maxRows`
  rows need;
- nesting: pydantic-core's JSON parser (already a dependency) stops at depth 200 with an
  error instead of recursing, where the standard library would raise RecursionError.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic_core import from_json
from starlette.requests import Request

from compiler.serving.inference import InvalidInput

BODIES_IN_FLIGHT = 4


class BodyBudget:
    """Bytes of request bodies being read at once, shared by every request of the process."""

    def __init__(self, total: int) -> None:
        self.free = total
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Reserve `size` bytes while a body is read; wait while other bodies hold the budget."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= size)
            self.free -= size
        try:
            yield
        finally:
            async with self._changed:
                self.free += size
                self._changed.notify_all()


def _too_large(limit: int) -> InvalidInput:
    return InvalidInput(
        "size", f"the body is larger than {limit} bytes, this runtime's limit (server.maxBodyBytes)", 413
    )


async def read_body(request: Request, limit: int, budget: BodyBudget, seconds: float) -> bytearray:
    """The whole body, never more than `limit` bytes of it, arrived within `seconds`;
    InvalidInput past the limit (413) or the time (408).

    A client that goes away mid-body raises starlette's ClientDisconnect.
    """
    declared = request.headers.get("content-length")  # h11 has checked it is a number
    if declared is not None and int(declared) > limit:
        raise _too_large(limit)
    # h11 reads a body that is also chunked as chunked: its Content-Length bounds nothing.
    size = limit if declared is None or "transfer-encoding" in request.headers else int(declared)
    body = bytearray()
    async with budget.hold(size):
        try:
            async with asyncio.timeout(seconds):
                async for chunk in request.stream():
                    if len(body) + len(chunk) > limit:
                        raise _too_large(limit)
                    body += chunk
        except TimeoutError:
            raise InvalidInput(
                "timeout", f"the body did not arrive within {seconds:g} s (server.bodySeconds)", 408
            ) from None
    return body


def max_json_values(max_rows: int, width: int) -> int:
    """The JSON values a well-formed request of `max_rows` rows of `width` features needs at
    most (one input per feature, each value in its own array, or a [rows, width] matrix),
    with room for the other fields of the request."""
    return 2 * (max_rows + 8) * (width + 1) + 1024


def decode_json(body: bytearray, max_values: int) -> Any:
    """The decoded body; InvalidInput for anything but strict JSON (no NaN, depth at most 200).

    Every value but the first of an array or object follows a comma, and `[` and `{` open
    the nested ones: counting those bytes (in strings too, which only overcounts) bounds
    the values before the parser makes them.
    """
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    if values > max_values:
        raise InvalidInput(
            "size", f"the body holds about {values} JSON values; requests to this model may hold {max_values}"
        )
    try:
        return from_json(body, allow_inf_nan=False)
    except ValueError as err:
        raise InvalidInput("json", f"the body is not valid JSON: {err}") from None

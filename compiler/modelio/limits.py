"""How large an artifact may be, on the wire and unpacked: the one place these limits are set.

A skops file is a zip, so a few megabytes can stand for gigabytes (a zip bomb). The loader checks
the zip's central directory against these limits before it inflates a byte. They leave room for
real scikit-learn models (a 200-tree random forest on 20,000 rows is 16 MiB on disk and 86 MiB
unpacked, with 1,000 members and at most 55-fold compression) and keep memory bounded.
"""

from __future__ import annotations

MAX_ARTIFACT_BYTES = 512 * 1024**2
"""An artifact (or holdout) file as fetched: local, pvc://, https://, s3:// or gs://."""

MAX_MEMBER_BYTES = 512 * 1024**2
"""One member of a skops file (an array), inflated."""

MAX_SCHEMA_BYTES = 64 * 1024**2
"""schema.json, inflated: parsing JSON takes several times its size (25 times, built to hurt)."""

MAX_INFLATED_BYTES = 1024**3
"""All members of a skops file together, inflated."""

MAX_COMPRESSION_RATIO = 200
"""Inflated size over compressed size, for a member over RATIO_FLOOR_BYTES inflated."""

RATIO_FLOOR_BYTES = 1024**2
"""Members smaller than this may compress any amount: they cost nothing to inflate."""

MAX_MEMBERS = 100_000
"""Members in a skops file (one per array; a forest of 1,000 trees has about 5,000)."""


def describe_size(size: int) -> str:
    """`size` in the largest binary unit it reaches, to one decimal: 1.5 GiB, 512 MiB, 300 bytes."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"

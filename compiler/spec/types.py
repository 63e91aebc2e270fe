"""Value types of the spec language: parsed and checked, never kept as loose strings.

Each type keeps the text the author wrote (so output shows familiar values) next to the
parsed value that checks and renderers compute with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import total_ordering
from typing import Annotated, Any, ClassVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MODEL_NAME_MAX = 40

ModelName = Annotated[
    str, StringConstraints(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=MODEL_NAME_MAX)
]
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
# Kubernetes label keys: optional DNS-subdomain prefix and a name of at most 63 characters.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN, max_length=317)]
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)]
PROMETHEUS_LABEL_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
PrometheusLabelName = Annotated[str, StringConstraints(pattern=PROMETHEUS_LABEL_PATTERN)]
FeatureName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", min_length=1, max_length=128)
]
SHA256_PATTERN = r"^[0-9a-f]{64}$"
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]


class _ParsedString:
    """Base for types written as one string in YAML and parsed into a value."""

    json_pattern: ClassVar[str]
    json_description: ClassVar[str]
    text: str

    @classmethod
    def parse(cls, value: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.text),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": cls.json_pattern, "description": cls.json_description}

    def __str__(self) -> str:
        return self.text


_DURATION_UNITS_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "y": 365 * 86_400_000,
}
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_FULL = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")


@total_ordering
@dataclass(frozen=True)
class Duration(_ParsedString):
    """A Prometheus-style duration: `250ms`, `5m`, `28d`, `1h30m`."""

    text: str
    milliseconds: int

    json_pattern: ClassVar[str] = _DURATION_FULL.pattern
    json_description: ClassVar[str] = "A duration such as 250ms, 30s, 5m, 1h30m or 28d"

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if not isinstance(value, str) or not _DURATION_FULL.match(value):
            raise PydanticCustomError(
                "duration",
                "expected a duration such as 250ms, 30s, 5m, 1h or 28d, got {value}",
                {"value": repr(value)},
            )
        total = sum(int(n) * _DURATION_UNITS_MS[unit] for n, unit in _DURATION_PART.findall(value))
        if total <= 0:
            raise PydanticCustomError(
                "duration_positive", "duration must be greater than zero, got {value}", {"value": repr(value)}
            )
        return cls(value, total)

    @classmethod
    def from_milliseconds(cls, ms: int) -> Duration:
        """The shortest Prometheus spelling of a whole duration (largest unit that divides it)."""
        for unit in ("y", "w", "d", "h", "m", "s", "ms"):
            size = _DURATION_UNITS_MS[unit]
            if ms % size == 0:
                return cls(f"{ms // size}{unit}", ms)
        raise AssertionError("unreachable: every whole duration divides by 1ms")

    @property
    def seconds(self) -> float:
        return self.milliseconds / 1000

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Duration):
            return NotImplemented
        return self.milliseconds < other.milliseconds


_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


@total_ordering
@dataclass(frozen=True)
class Quantity(_ParsedString):
    """A Kubernetes resource quantity: `250m`, `1.5`, `512Mi`, `1G`."""

    text: str
    value: Decimal

    json_pattern: ClassVar[str] = _QUANTITY.pattern
    json_description: ClassVar[str] = "A Kubernetes quantity such as 250m, 2, 512Mi or 1Gi"

    @classmethod
    def parse(cls, value: Any) -> Quantity:
        if isinstance(value, Quantity):
            return value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise PydanticCustomError(
                "quantity",
                "expected a Kubernetes quantity such as 250m or 512Mi, got {value}",
                {"value": repr(value)},
            )
        text = str(value)
        match = _QUANTITY.match(text)
        if not match:
            raise PydanticCustomError(
                "quantity",
                "expected a Kubernetes quantity such as 250m, 2, 512Mi or 1Gi, got {value}",
                {"value": repr(text)},
            )
        try:
            number = Decimal(match["number"])
        except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
            raise PydanticCustomError(
                "quantity", "invalid number in {value}", {"value": repr(text)}
            ) from None
        suffix = match["suffix"] or ""
        if suffix in _BINARY:
            amount = number * _BINARY[suffix]
        elif suffix in _DECIMAL:
            amount = number * _DECIMAL[suffix]
        else:
            amount = number * (Decimal(10) ** int(suffix[1:]))
        if amount < 0:
            raise PydanticCustomError(
                "quantity_negative", "quantity must not be negative, got {value}", {"value": repr(text)}
            )
        return cls(text, amount)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value < other.value


@dataclass(frozen=True)
class Percentage:
    """A percentage strictly between 0 and 100, written as a number (`99.9`) or `99.9%`."""

    value: float

    @classmethod
    def parse(cls, value: Any) -> Percentage:
        if isinstance(value, Percentage):
            return value
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?%?", value.strip()):
            number = float(value.strip().rstrip("%"))
        if number is None:
            raise PydanticCustomError(
                "percentage", "expected a percentage such as 99.9, got {value}", {"value": repr(value)}
            )
        if not 0 < number < 100:
            raise PydanticCustomError(
                "percentage_range",
                "percentage must be greater than 0 and less than 100 (100% leaves no error "
                "budget), got {value}",
                {"value": f"{number:g}"},
            )
        return cls(number)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.value),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
                {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
            ],
            "description": "A percentage strictly between 0 and 100",
        }

    @property
    def ratio(self) -> float:
        """The percentage as a fraction: 99.9 -> 0.999."""
        return self.value / 100

    def __str__(self) -> str:
        return f"{self.value:g}"


_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


@dataclass(frozen=True)
class SemVer(_ParsedString):
    """A semantic version (semver.org 2.0.0): `1.4.0`, `2.0.0-rc.1+build.5`."""

    text: str
    major: int
    minor: int
    patch: int
    prerelease: str | None = None
    build: str | None = None

    json_pattern: ClassVar[str] = _SEMVER.pattern
    json_description: ClassVar[str] = "A semantic version such as 1.4.0"

    @classmethod
    def parse(cls, value: Any) -> SemVer:
        if isinstance(value, SemVer):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise PydanticCustomError(
                "semver_number",
                "YAML read the version {value} as a number; write a full semantic version "
                'in quotes, such as "1.4.0"',
                {"value": repr(value)},
            )
        match = _SEMVER.match(value) if isinstance(value, str) else None
        if match is None:
            raise PydanticCustomError(
                "semver",
                "expected a semantic version such as 1.4.0 (MAJOR.MINOR.PATCH), got {value}",
                {"value": repr(value)},
            )
        major, minor, patch, pre, build = match.groups()
        return cls(value, int(major), int(minor), int(patch), pre, build)

    def precedence(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        """A sort key following semver precedence (build metadata ignored)."""
        if self.prerelease is None:
            return (self.major, self.minor, self.patch, 1, ())
        parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease.split("."))
        return (self.major, self.minor, self.patch, 0, parts)


_URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>.+)$")
ARTIFACT_SCHEMES = ("s3", "gs", "https", "pvc")


@dataclass(frozen=True)
class ArtifactUri(_ParsedString):
    """Where a model artifact lives: a repo-relative path, s3://, gs://, https:// or pvc://."""

    text: str
    scheme: str  # "file" for a repo-relative path

    json_pattern: ClassVar[str] = r"^((s3|gs|https|pvc)://.+|[^/:][^:]*)$"
    json_description: ClassVar[str] = "A repo-relative path, or an s3://, gs://, https:// or pvc:// URI"

    @classmethod
    def parse(cls, value: Any) -> ArtifactUri:
        if isinstance(value, ArtifactUri):
            return value
        if not isinstance(value, str) or not value.strip():
            raise PydanticCustomError(
                "uri", "expected an artifact path or URI, got {value}", {"value": repr(value)}
            )
        match = _URI.match(value)
        if match:
            scheme = match["scheme"]
            if scheme not in ARTIFACT_SCHEMES:
                raise PydanticCustomError(
                    "uri_scheme",
                    "unsupported URI scheme {scheme}: use a repo-relative path or one of "
                    "s3://, gs://, https://, pvc://",
                    {"scheme": repr(scheme)},
                )
            return cls(value, scheme)
        if value.startswith("/") or ":" in value:
            raise PydanticCustomError(
                "uri_path",
                "artifact path {value} must be relative to the repository root (no leading '/', "
                "no drive letters), or a URI",
                {"value": repr(value)},
            )
        if ".." in value.split("/"):
            raise PydanticCustomError(
                "uri_path",
                "artifact path {value} must not leave the repository ('..')",
                {"value": repr(value)},
            )
        return cls(value, "file")


# Container image references: [registry[:port]/]path[:tag][@digest]. ASCII classes, as the
# OCI grammar means them: a Unicode \w under {0,127} also made pydantic-core's regex take
# 55 ms to compile, on every run.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)
ImageRef = Annotated[str, StringConstraints(pattern=_IMAGE.pattern, max_length=512)]

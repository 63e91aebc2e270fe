"""Value types of the spec language: parsed and checked, never kept as loose strings.

Each type keeps the text the author wrote (so output shows familiar values) next to the
parsed value that checks and renderers compute with.
"""

from __future__ import annotations

import ipaddress
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)
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
LABEL_PREFIX_MAX = 253


def _short_label_prefix(key: str) -> str:
    prefix, slash, _ = key.rpartition("/")
    if slash and len(prefix) > LABEL_PREFIX_MAX:
        raise PydanticCustomError(
            "label_key_prefix",
            "the prefix before '/' is {length} characters; a label key prefix (a DNS subdomain) "
            "has at most 253",
            {"length": len(prefix)},
        )
    return key


LabelKey = Annotated[
    str,
    StringConstraints(pattern=LABEL_KEY_PATTERN, max_length=LABEL_PREFIX_MAX + 1 + 63),
    AfterValidator(_short_label_prefix),
]
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)]
# The owning team is written into Kubernetes labels, so it is any non-empty label value.
TeamName = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN, min_length=1, max_length=63)]
PROMETHEUS_LABEL_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
PrometheusLabelName = Annotated[str, StringConstraints(pattern=PROMETHEUS_LABEL_PATTERN, max_length=128)]
# Alert label values are free text to Prometheus, but each one is copied into every alert
# rule and its test of every environment: keep them to what routing needs.
ALERT_LABEL_VALUE_MAX = 256
AlertLabelValue = Annotated[str, StringConstraints(min_length=1, max_length=ALERT_LABEL_VALUE_MAX)]
# Per map: metadata.labels, spec.monitoring.alerts.labels.
MAX_LABELS = 64


def _few_labels(value: Any) -> Any:
    """Refuse too many labels before their entries are checked: one error, not one per label."""
    if isinstance(value, dict) and len(value) > MAX_LABELS:
        raise PydanticCustomError(
            "too_many_labels",
            "has {count} labels; at most {limit} are allowed",
            {"count": len(value), "limit": MAX_LABELS},
        )
    return value


_FEW_LABELS = (BeforeValidator(_few_labels), Field(json_schema_extra={"maxProperties": MAX_LABELS}))
MetadataLabels = Annotated[dict[LabelKey, LabelValue], *_FEW_LABELS]
AlertLabels = Annotated[dict[PrometheusLabelName, AlertLabelValue], *_FEW_LABELS]
FeatureName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", min_length=1, max_length=128)
]
SHA256_PATTERN = r"^[0-9a-f]{64}$"
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]


class _Parsed:
    """Base for spec values parsed from what YAML gives, and how pydantic reads and writes them."""

    @classmethod
    def parse(cls, value: Any) -> Self:
        """The value parsed (one parsed before is taken as it is); a PydanticCustomError if invalid."""
        return value if isinstance(value, cls) else cls._parse(value)

    @classmethod
    def _parse(cls, value: Any) -> Self:
        raise NotImplementedError

    def _dump(self) -> Any:
        """What the value is written as."""
        raise NotImplementedError

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v._dump()),
        )


class _ParsedString(_Parsed):
    """Base for types written as one string in YAML and parsed into a value."""

    json_pattern: ClassVar[str]
    json_description: ClassVar[str]
    text: str

    def _dump(self) -> str:
        return self.text

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
_DURATION_ANY_ORDER = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
# Prometheus' own grammar (model.ParseDuration): units from largest to smallest, each at most
# once. Rules and tests write the text as given, so `30m1h` would not load in Prometheus.
# At most 18 digits a unit: longer numbers overflow Prometheus (and are no one's duration).
_DURATION_FULL = re.compile(
    r"^(?=\d)(\d{1,18}y)?(\d{1,18}w)?(\d{1,18}d)?(\d{1,18}h)?(\d{1,18}m)?(\d{1,18}s)?(\d{1,18}ms)?$"
)


class _OrderedByAmount:
    """Orders values of one class by what they measure, not by how they are written.

    Each operator is spelled out: functools.total_ordering would derive <= from the dataclass
    ==, which compares the text too, and so find 57w1d neither < nor == 400d (or 1Gi and 1024Mi).
    """

    @property
    def amount(self) -> Decimal | int:
        raise NotImplementedError

    def _compare(self, other: object, compare: Callable[[Any, Any], bool]) -> bool:
        if type(other) is not type(self):
            return NotImplemented  # type: ignore[no-any-return]  # typed Any outside an operator method
        return compare(self.amount, other.amount)

    def __lt__(self, other: object) -> bool:
        return self._compare(other, operator.lt)

    def __le__(self, other: object) -> bool:
        return self._compare(other, operator.le)

    def __gt__(self, other: object) -> bool:
        return self._compare(other, operator.gt)

    def __ge__(self, other: object) -> bool:
        return self._compare(other, operator.ge)


@dataclass(frozen=True)
class Duration(_OrderedByAmount, _ParsedString):
    """A Prometheus-style duration: `250ms`, `5m`, `28d`, `1h30m`."""

    text: str
    milliseconds: int

    json_pattern: ClassVar[str] = _DURATION_FULL.pattern
    json_description: ClassVar[str] = "A duration such as 250ms, 30s, 5m, 1h30m or 28d"

    @classmethod
    def _parse(cls, value: Any) -> Self:
        if isinstance(value, str) and _DURATION_ANY_ORDER.match(value) and not _DURATION_FULL.match(value):
            raise PydanticCustomError(
                "duration_order",
                "duration {value}: write each unit once, from largest to smallest (y, w, d, h, m, "
                "s, ms), with at most 18 digits, as Prometheus reads durations: 1h30m, not 30m1h",
                {"value": repr(value)},
            )
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

    @property
    def amount(self) -> int:
        return self.milliseconds


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


@dataclass(frozen=True)
class Quantity(_OrderedByAmount, _ParsedString):
    """A Kubernetes resource quantity: `250m`, `1.5`, `512Mi`, `1G`."""

    text: str
    value: Decimal

    json_pattern: ClassVar[str] = _QUANTITY.pattern
    json_description: ClassVar[str] = "A Kubernetes quantity such as 250m, 2, 512Mi or 1Gi"

    @classmethod
    def _parse(cls, value: Any) -> Self:
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

    @property
    def amount(self) -> Decimal:
        return self.value


# The tightest SLO objective: nine nines. Above it the error ratios an SLI must tell apart
# (a tenth of the budget and less) near 1e-10 drown in float64 rounding of `1 - good/total`.
MAX_PERCENTAGE = Decimal("99.9999999")


@dataclass(frozen=True)
class Percentage(_Parsed):
    """A percentage strictly between 0 and 100 (at most 99.9999999), written as a number
    (`99.9`) or `99.9%`."""

    value: float

    @classmethod
    def _parse(cls, value: Any) -> Self:
        exact: Decimal | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            exact = Decimal(value)
        elif isinstance(value, float) and math.isfinite(value):
            exact = Decimal(repr(value))  # the shortest text of the float: what the author wrote
        elif isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?%?", value.strip()):
            exact = Decimal(value.strip().rstrip("%"))
        if exact is None:
            raise PydanticCustomError(
                "percentage", "expected a percentage such as 99.9, got {value}", {"value": repr(value)}
            )
        if not 0 < exact < 100:
            raise PydanticCustomError(
                "percentage_range",
                "percentage must be greater than 0 and less than 100 (100% leaves no error "
                "budget), got {value}",
                {"value": decimal_text(exact)},
            )
        if exact > MAX_PERCENTAGE:
            raise PydanticCustomError(
                "percentage_precision",
                "percentage {value} is above the limit of {limit} (nine nines): Prometheus computes "
                "SLIs in float64, which cannot tell apart error ratios that small; use at most {limit}",
                {"value": decimal_text(exact), "limit": decimal_text(MAX_PERCENTAGE)},
            )
        number = float(exact)
        if number == 0:
            raise PydanticCustomError(
                "percentage_range",
                "percentage {value} is too small to be a number",
                {"value": decimal_text(exact)},
            )
        return cls(number)

    def _dump(self) -> float:
        return self.value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": float(MAX_PERCENTAGE)},
                {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
            ],
            "description": f"A percentage greater than 0, at most {MAX_PERCENTAGE}",
        }

    @property
    def exact(self) -> Decimal:
        """The percentage as written, in decimal: no binary noise in what is derived from it."""
        return Decimal(repr(self.value))

    @property
    def ratio(self) -> float:
        """The percentage as a fraction: 99.9 -> 0.999."""
        return float(self.exact / 100)

    @property
    def budget(self) -> float:
        """What is left to fail, as a fraction: 99.9 -> 0.001 (from the decimal: 1 - 0.999 in
        float64 is 0.0010000000000000009, and loses every digit for tight objectives)."""
        return float((100 - self.exact) / 100)

    def __str__(self) -> str:
        return decimal_text(self.exact)


def decimal_text(number: Decimal) -> str:
    """A decimal as people write it: 70, 99.9, 1E-300 (never 1E+2, or 100 for 99.9999999)."""
    text = format(number.normalize(), "f")
    return text if len(text) <= 24 else format(number.normalize(), "E")


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
    def _parse(cls, value: Any) -> Self:
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
# A PersistentVolumeClaim name is a DNS-1123 subdomain.
_PVC_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PVC_CLAIM_MAX = 253
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PATH_MAX_LENGTH = 4096  # Linux PATH_MAX


def _check_path_text(value: str, what: str) -> None:
    """Refuse what no file name in a repository needs and what the OS chokes on."""
    if _CONTROL.search(value):
        raise PydanticCustomError(
            "uri_path", "{what} {value} contains a control character", {"what": what, "value": repr(value)}
        )
    if len(value) > PATH_MAX_LENGTH:
        raise PydanticCustomError(
            "uri_path",
            "{what} is {length} characters long, over the limit of {limit}",
            {"what": what, "length": len(value), "limit": PATH_MAX_LENGTH},
        )


def _check_pvc(value: str, rest: str) -> None:
    """pvc://<claim>/<path>: the runtime mounts the claim at /mnt/pvc/<claim>, so the claim
    must be a claim name and the path must stay inside it."""
    claim, _, path = rest.partition("/")
    if not _PVC_CLAIM.match(claim) or len(claim) > _PVC_CLAIM_MAX:
        raise PydanticCustomError(
            "uri_pvc",
            "pvc URI {value}: {claim} is not a PersistentVolumeClaim name (a DNS-1123 subdomain: "
            "lowercase letters, digits, '-' and '.'); write pvc://<claim>/<path to the artifact>",
            {"value": repr(value), "claim": repr(claim)},
        )
    segments = path.split("/")
    if not path.strip("/"):
        raise PydanticCustomError(
            "uri_pvc",
            "pvc URI {value} names no file in the claim; write pvc://<claim>/<path to the artifact>",
            {"value": repr(value)},
        )
    if ".." in segments:
        raise PydanticCustomError(
            "uri_pvc", "pvc URI {value} must not leave the claim ('..')", {"value": repr(value)}
        )


def _check_https_port(value: str) -> None:
    """The port of an https:// URI: the pod's NetworkPolicy opens egress to it."""
    try:
        port = urlsplit(value).port
    except ValueError:
        port = 0
    if port == 0:
        raise PydanticCustomError(
            "uri_port", "URI {value} has an invalid port (a number from 1 to 65535)", {"value": repr(value)}
        )


@dataclass(frozen=True)
class ArtifactUri(_ParsedString):
    """Where a model artifact lives: a repo-relative path, s3://, gs://, https:// or pvc://."""

    text: str
    scheme: str  # "file" for a repo-relative path

    json_pattern: ClassVar[str] = r"^((s3|gs|https)://.+|pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?/.+|[^/:][^:]*)$"
    json_description: ClassVar[str] = (
        "A repo-relative path, or an s3://, gs://, https:// or pvc://<claim>/<path> URI"
    )

    @classmethod
    def _parse(cls, value: Any) -> Self:
        if not isinstance(value, str) or not value.strip():
            raise PydanticCustomError(
                "uri", "expected an artifact path or URI, got {value}", {"value": repr(value)}
            )
        _check_path_text(value, "artifact path")
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
            if scheme == "pvc":
                _check_pvc(value, match["rest"])
            if scheme == "https":
                _check_https_port(value)
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


def _check_dataset_path(value: str) -> str:
    """A holdout set is a file committed inside the project: evaluation records pin its
    sha256, so a URL (whose content changes under the pin) or a path outside is refused."""
    _check_path_text(value, "dataset path")
    if _URI.match(value):
        raise PydanticCustomError(
            "dataset_path",
            "dataset {value} is a URI; the holdout set must be a file committed in the "
            "repository, such as data/<model>/holdout.csv",
            {"value": repr(value)},
        )
    if value.startswith("/") or ":" in value or "\\" in value:
        raise PydanticCustomError(
            "dataset_path",
            "dataset {value} must be a path relative to the repository root, such as "
            "data/<model>/holdout.csv (no leading '/', no drive letters, no backslashes)",
            {"value": repr(value)},
        )
    segments = value.split("/")
    if ".." in segments:
        raise PydanticCustomError(
            "dataset_path", "dataset {value} must not leave the repository ('..')", {"value": repr(value)}
        )
    if any(s.startswith(".") and s != "." for s in segments):
        raise PydanticCustomError(
            "dataset_path",
            "dataset {value} is in a hidden file or directory (a name starting with '.'), where "
            "Git and tools keep their own files; keep holdout sets in a plain directory such as data/",
            {"value": repr(value)},
        )
    if not value.strip("/."):
        raise PydanticCustomError("dataset_path", "dataset {value} names no file", {"value": repr(value)})
    return value


DatasetPath = Annotated[
    str,
    StringConstraints(min_length=1),
    AfterValidator(_check_dataset_path),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": PATH_MAX_LENGTH,
            "pattern": r"^(?!/)[^:\\]+$",
            "description": "Repo-relative path of the CSV holdout set (no URI, no '..', no hidden directory)",
        }
    ),
]


def _check_cidr(value: Any) -> str:
    """An IPv4 or IPv6 network in CIDR notation, with no host bits set (as NetworkPolicy ipBlock
    takes it)."""
    try:
        network = ipaddress.ip_network(value, strict=True) if isinstance(value, str) else None
    except ValueError:
        network = None
    if network is None or "/" not in value:
        raise PydanticCustomError(
            "cidr",
            "expected an IP range in CIDR notation such as 10.0.0.0/8 or fd00::/8 (no host bits "
            "set), got {value}",
            {"value": repr(value)},
        )
    return str(network)


Cidr = Annotated[
    str,
    PlainValidator(_check_cidr),
    WithJsonSchema({"type": "string", "maxLength": 43, "description": "An IP range such as 10.0.0.0/8"}),
]


# Container image references: [registry[:port]/]path[:tag][@digest]. ASCII classes, as the
# OCI grammar means them: a Unicode \w under {0,127} also made pydantic-core's regex take
# 55 ms to compile, on every run.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)
IMAGE_MAX_LENGTH = 512
_IMAGE_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def _check_image(value: Any) -> str:
    """A container image reference, with an error that says which part is wrong: a digest
    pasted with a typo must not read as a vague pattern mismatch."""
    if not isinstance(value, str):
        raise PydanticCustomError(
            "image", "expected a container image reference, got {value}", {"value": repr(value)}
        )
    if len(value) > IMAGE_MAX_LENGTH:
        raise PydanticCustomError(
            "image",
            "image reference is {length} characters long, over the limit of {limit}",
            {"length": len(value), "limit": IMAGE_MAX_LENGTH},
        )
    _, at, digest = value.partition("@")
    if at and not _IMAGE_DIGEST.match(digest):
        raise PydanticCustomError(
            "image_digest",
            "image {value}: the digest after '@' must be 'sha256:' and 64 lowercase hexadecimal "
            "characters (as `crane digest` or `docker buildx imagetools inspect` print it), got {digest}",
            {"value": repr(value), "digest": repr(digest)},
        )
    if not _IMAGE.match(value):
        raise PydanticCustomError(
            "image",
            "{value} is not a container image reference such as ghcr.io/acme/runtime:1.0 or "
            "ghcr.io/acme/runtime@sha256:<64 hex> (a lowercase repository path, then an optional "
            "ASCII tag of at most 128 characters and an optional digest)",
            {"value": repr(value)},
        )
    return value


def image_digest(image: str) -> str | None:
    """The `sha256:...` digest an image reference is pinned to, or None for a movable tag."""
    _, at, digest = image.partition("@")
    return digest if at else None


ImageRef = Annotated[
    str,
    PlainValidator(_check_image),
    WithJsonSchema({"type": "string", "pattern": _IMAGE.pattern, "maxLength": IMAGE_MAX_LENGTH}),
]

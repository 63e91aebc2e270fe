"""Value types: durations, quantities, percentages, versions and URIs are parsed, not kept loose."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from compiler.spec.types import ArtifactUri, Duration, ImageRef, Percentage, Quantity, SemVer


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("250ms", 250),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("28d", 2_419_200_000),
        ("1w", 604_800_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert Duration.parse(text).milliseconds == ms


@pytest.mark.parametrize("bad", ["", "5", "5 m", "-5m", "0s", "1.5h", 5, None, "5M"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(PydanticCustomError):
        Duration.parse(bad)


def test_duration_shortest_spelling() -> None:
    assert Duration.from_milliseconds(5_400_000).text == "90m"
    assert Duration.from_milliseconds(3 * 86_400_000).text == "3d"
    assert Duration.from_milliseconds(250).text == "250ms"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", "0.25"),
        ("2", "2"),
        (1, "1"),
        (0.5, "0.5"),
        ("512Mi", str(512 * 2**20)),
        ("1G", "1e9"),
        ("1e3", "1000"),
    ],
)
def test_quantities(text: object, value: str) -> None:
    assert Quantity.parse(text).value == Decimal(value)


@pytest.mark.parametrize("bad", ["lots", "1.2.3", "5 Mi", "-1", "1MiB", True, None, [1]])
def test_bad_quantities(bad: object) -> None:
    with pytest.raises(PydanticCustomError):
        Quantity.parse(bad)


def test_quantities_compare_by_value() -> None:
    assert Quantity.parse("1Gi") > Quantity.parse("1000Mi")
    assert Quantity.parse("500m") < Quantity.parse(1)


@pytest.mark.parametrize(("value", "expected"), [(99.9, 99.9), (99, 99.0), ("99.5%", 99.5), ("0.1", 0.1)])
def test_percentages(value: object, expected: float) -> None:
    assert Percentage.parse(value).value == expected


@pytest.mark.parametrize("bad", [0, 100, 100.0, -1, 150, True, "ninety", None])
def test_bad_percentages(bad: object) -> None:
    with pytest.raises(PydanticCustomError):
        Percentage.parse(bad)


def test_semver_precedence() -> None:
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.4.0",
        "10.0.0",
    ]
    parsed = [SemVer.parse(v) for v in order]
    assert sorted(parsed, key=SemVer.precedence) == parsed
    assert SemVer.parse("1.2.3+build.7").build == "build.7"


@pytest.mark.parametrize("bad", ["1.4", "v1.4.0", "01.2.3", "1.2.3-", 1.4, None])
def test_bad_versions(bad: object) -> None:
    with pytest.raises(PydanticCustomError):
        SemVer.parse(bad)


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("models/a.skops", "file"),
        ("s3://b/k", "s3"),
        ("gs://b/k", "gs"),
        ("https://h/m", "https"),
        ("pvc://claim/m", "pvc"),
    ],
)
def test_uris(uri: str, scheme: str) -> None:
    assert ArtifactUri.parse(uri).scheme == scheme


@pytest.mark.parametrize("bad", ["/abs/m", "../up/m", "http://insecure/m", "ftp://h/m", "C:/m", ""])
def test_bad_uris(bad: str) -> None:
    with pytest.raises(PydanticCustomError):
        ArtifactUri.parse(bad)


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/modelops-runtime:0.1.0",
        "localhost:5000/team/model_server:v1_2-rc.3",
        "busybox",
        "registry.example/a/b@sha256:" + "a" * 64,
    ],
)
def test_image_references(image: str) -> None:
    assert TypeAdapter(ImageRef).validate_python(image) == image


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/runtime:t\u00e9g",
        "ghcr.io/acme/runtime:" + "x" * 129,
        "acme/Runtime:1",
        "acme/runtime:-x",
        "",
    ],
)
def test_bad_image_references(image: str) -> None:
    """Tags are ASCII, as registries take them: a Unicode letter is refused here, not at pull time."""
    with pytest.raises(ValidationError):
        TypeAdapter(ImageRef).validate_python(image)


def test_equal_quantities_in_other_units_compare_equal() -> None:
    """A 1024Mi limit over a 1Gi request is the same amount, not a limit below its request."""
    gib, mib = Quantity.parse("1Gi"), Quantity.parse("1024Mi")
    assert gib <= mib and gib >= mib and not gib < mib and not gib > mib
    assert Quantity.parse("500m") < Quantity.parse("1") <= Quantity.parse("1000m")

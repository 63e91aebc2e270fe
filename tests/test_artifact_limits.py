"""Zip bombs, lying zip headers and oversized artifacts: `evaluate` and `serve` refuse them with the reason.

The bombs are built at test time from a deflate block of one MiB repeated (a 1,000-fold stream),
so no test ever writes or holds the gigabytes they stand for. The limits are checked on the zip's
central directory before anything is inflated, so a refused bomb costs the process no memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.modelio import limits
from compiler.modelio.fetch import fetch
from compiler.modelio.skops_files import ArtifactError, ArtifactLimitError, load_model
from tests.conftest import REPO, Result
from tests.runtime import free_port, runtime_config

MiB = 1 << 20
CREDIT = REPO / "models/credit-default/1.4.0/model.skops"
ARTIFACT = "models/credit-default/1.4.0/model.skops"
# Measured: a bomb refused from the zip directory leaves the process at about 60 MiB, a model
# loaded and scored at about 170 MiB; on main the bombs below took 2.2 to 6.4 GiB.
PEAK_BOUND_MIB = 600
TIMEOUT_SECONDS = 300


@dataclass
class Member:
    """A zip member as it lies in the file: `raw` is stored as is, `size` and `crc` are what the headers say."""

    name: str
    raw: bytes
    size: int
    crc: int
    method: int = zipfile.ZIP_DEFLATED
    compressed: int | None = None  # the compressed size the headers state, if not len(raw)


def _deflate(content: bytes) -> Member:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = compressor.compress(content) + compressor.flush()
    return Member("", raw, len(content), zlib.crc32(content))


def _bomb(name: str, prefix: bytes, fill: bytes, mebibytes: int, *, crc: bool = True) -> Member:
    """`prefix`, then `mebibytes` MiB of `fill`, as one deflate stream about 1,000 times smaller.

    After a full flush a deflate block refers to nothing before it, so one compressed MiB can be
    repeated. `crc=False` leaves the CRC wrong (for bombs that must be refused before they are read).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = fill * MiB
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    raw = head + block * mebibytes + compressor.flush()
    checksum = zlib.crc32(prefix)
    if crc:
        for _ in range(mebibytes):
            checksum = zlib.crc32(chunk, checksum)
    return Member(name, raw, len(prefix) + mebibytes * MiB, checksum)


def _zip(members: list[Member]) -> bytes:
    """A zip file written by hand: zipfile cannot store a stream compressed elsewhere, nor lie."""
    out = io.BytesIO()
    directory = io.BytesIO()
    for member in members:
        name = member.name.encode()
        offset = out.tell()
        compressed = len(member.raw) if member.compressed is None else member.compressed
        fields = (20, 0, member.method, 0, 0x21, member.crc, compressed, member.size, len(name))
        out.write(struct.pack("<4s5HIIIHH", b"PK\x03\x04", *fields, 0) + name + member.raw)
        directory.write(
            struct.pack("<4sH5HIIIHHHHHII", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0o644 << 16, offset)
            + name
        )
    start = out.tell()
    out.write(directory.getvalue())
    count = min(len(members), 0xFFFF)  # zipfile reads the directory by its size, not by this count
    out.write(struct.pack("<4s4HIIH", b"PK\x05\x06", 0, 0, count, count, len(directory.getvalue()), start, 0))
    return out.getvalue()


def _credit_members() -> dict[str, Member]:
    """The members of the bundled credit-default artifact, recompressed by `_deflate`."""
    source = zipfile.ZipFile(CREDIT)
    members = {}
    for name in source.namelist():
        member = _deflate(source.read(name))
        member.name = name
        members[name] = member
    return members


def _schema() -> bytes:
    return zipfile.ZipFile(CREDIT).read("schema.json")


def _first_array() -> str:
    return sorted(name for name in zipfile.ZipFile(CREDIT).namelist() if name.endswith(".npy"))[0]


def _npy_header(count: int) -> bytes:
    """The header of a .npy file of `count` float64 values (version 1.0, padded to 128 bytes)."""
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({count},), }}".encode()
    return b"\x93NUMPY\x01\x00v\x00" + header.ljust(117, b" ") + b"\n"


def _install(project: Path, artifact: bytes) -> None:
    """Put `artifact` in place of credit-default's and pin its sha256, as a pull request would."""
    (project / ARTIFACT).write_bytes(artifact)
    spec = project / "specs/credit-default.yaml"
    lines = spec.read_text().splitlines(keepends=True)
    spec.write_text(
        "".join(
            f"    sha256: {hashlib.sha256(artifact).hexdigest()}\n"
            if line.strip().startswith("sha256:")
            else line
            for line in lines
        )
    )


@dataclass
class Run:
    code: int
    output: str
    peak_mib: float


def _run(args: list[str], cwd: Path) -> Run:
    """Run `modelops ARGS` in a child process; its exit code, output and peak resident memory."""
    log = cwd / "run.log"
    with log.open("wb") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "compiler", *args], cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )
        watchdog = threading.Timer(TIMEOUT_SECONDS, child.kill)  # a server that loaded the bomb never exits
        watchdog.start()
        _, status, usage = os.wait4(child.pid, 0)  # the child's own peak, unlike RUSAGE_CHILDREN
        watchdog.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
    return Run(child.returncode, log.read_text(), usage.ru_maxrss / 1024)


def _evaluate(project: Path, artifact: bytes) -> Run:
    _install(project, artifact)
    return _run(["evaluate", "specs/credit-default.yaml", "--no-write"], project)


def test_a_schema_bomb_is_refused_before_it_is_inflated(project: Path) -> None:
    """A 1.5 MiB artifact whose schema.json (valid JSON: the model's, then spaces) inflates to 1.5 GiB."""
    members = _credit_members()
    members["schema.json"] = _bomb("schema.json", _schema(), b" ", 1536)
    bomb = _zip(list(members.values()))
    assert len(bomb) < 2 * MiB
    result = _evaluate(project, bomb)
    assert result.code == 1, result.output
    assert "credit-default: the skops file member schema.json inflates to 1.5 GiB" in result.output
    assert "over the limit of 64 MiB for schema.json" in result.output
    assert "Traceback" not in result.output
    assert result.peak_mib < PEAK_BOUND_MIB


def test_an_array_bomb_is_refused_before_it_is_inflated(project: Path) -> None:
    """A 4 MiB artifact whose first array inflates to 4 GB (zeros after a real .npy header)."""
    members = _credit_members()
    name = _first_array()
    members[name] = _bomb(name, _npy_header(3800 * MiB // 8), b"\x00", 3800, crc=False)
    result = _evaluate(project, _zip(list(members.values())))
    assert result.code == 1, result.output
    assert f"the skops file member {name} inflates to 3.7 GiB" in result.output
    assert result.peak_mib < PEAK_BOUND_MIB


def test_a_header_that_understates_the_size_never_inflates_more(project: Path) -> None:
    """schema.json says it is the model's schema (size and CRC right), but its stream goes on for 1.5 GiB.

    zipfile would inflate the whole stream at once and then cut it to the declared size; the
    loader reads at most the declared bytes, so the model loads and the memory stays low.
    """
    members = _credit_members()
    schema = _schema()
    liar = _bomb("schema.json", schema, b" ", 1536, crc=False)
    members["schema.json"] = Member("schema.json", liar.raw, len(schema), zlib.crc32(schema))
    result = _evaluate(project, _zip(list(members.values())))
    assert result.code == 0, result.output
    assert result.peak_mib < PEAK_BOUND_MIB


def test_serve_refuses_the_bomb_with_the_reason(tmp_path: Path) -> None:
    """`modelops serve` loads with the same loader: it exits 1 and logs why, without inflating the bomb."""
    members = _credit_members()
    members["schema.json"] = _bomb("schema.json", _schema(), b" ", 1536, crc=False)
    bomb = _zip(list(members.values()))
    (tmp_path / "model.skops").write_bytes(bomb)
    config = runtime_config("staging", "ml-staging", "credit-default")
    config["model"]["uri"] = "model.skops"
    config["model"]["sha256"] = hashlib.sha256(bomb).hexdigest()
    (tmp_path / "runtime.json").write_text(json.dumps(config))
    ports = ["--port", str(free_port()), "--metrics-port", str(free_port())]
    result = _run(["serve", "--config", "runtime.json", *ports], tmp_path)
    assert result.code == 1, result.output
    assert (
        "cannot serve credit-default: the skops file member schema.json inflates to 1.5 GiB" in result.output
    )
    assert result.peak_mib < PEAK_BOUND_MIB


def test_a_high_compression_ratio_is_refused(cli: Callable[..., Result], project: Path) -> None:
    """An array of 100 MiB from 100 KiB: under the size limits, but no model compresses 1,000-fold."""
    members = _credit_members()
    name = _first_array()
    members[name] = _bomb(name, _npy_header(100 * MiB // 8), b"\x00", 100)
    _install(project, _zip(list(members.values())))
    result = cli("evaluate", project / "specs/credit-default.yaml", "--no-write")
    assert result.code == 1
    assert f"the skops file member {name} inflates 10" in result.out
    assert f"over the limit of {limits.MAX_COMPRESSION_RATIO}-fold" in result.out


def test_the_total_inflated_size_is_bounded(cli: Callable[..., Result], project: Path) -> None:
    """Three arrays of 400 MiB, each within the per-member and ratio limits, 1.2 GiB together.

    The sizes are forged: the loader must refuse from the directory, before it reads a byte.
    """
    members = list(_credit_members().values())
    for number in range(3):
        raw = bytes(3 * MiB)
        members.append(Member(f"bomb{number}.npy", raw, 400 * MiB, 0))
    _install(project, _zip(members))
    result = cli("evaluate", project / "specs/credit-default.yaml", "--no-write")
    assert result.code == 1
    assert "the skops file inflates to 1.2 GiB in all, over the limit of 1 GiB" in result.out


def test_too_many_members_are_refused() -> None:
    members = [
        Member(f"{number}.npy", b"", 0, 0, zipfile.ZIP_STORED) for number in range(limits.MAX_MEMBERS + 1)
    ]
    with pytest.raises(ArtifactLimitError, match=f"more than {limits.MAX_MEMBERS} members"):
        load_model(_zip(members))


def test_a_directory_claiming_more_bytes_than_the_file_holds_is_refused() -> None:
    """The ratio is measured against the compressed size: a header may not inflate that either."""
    members = _credit_members()
    schema = members["schema.json"]
    members["schema.json"] = Member("schema.json", schema.raw, 100 * MiB, schema.crc, compressed=10 * MiB)
    with pytest.raises(ArtifactError, match=r"member schema\.json claims 10 MiB of compressed data"):
        load_model(_zip(list(members.values())))


def test_other_compression_methods_are_refused(tmp_path: Path) -> None:
    """zipfile inflates bzip2 and lzma input without an output bound: only stored and deflated are read."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("schema.json", _schema())
    with pytest.raises(ArtifactError, match=r"member schema\.json is compressed with bzip2"):
        load_model(out.getvalue())


def test_damaged_members_are_refused_with_the_member_named() -> None:
    members = _credit_members()
    schema = members["schema.json"]
    members["schema.json"] = Member("schema.json", schema.raw, schema.size, schema.crc ^ 1)
    with pytest.raises(ArtifactError, match=r"member schema\.json is damaged: Bad CRC-32"):
        load_model(_zip(list(members.values())))


def test_an_artifact_file_over_the_size_limit_is_refused_unread(
    cli: Callable[..., Result], project: Path
) -> None:
    """A sparse file one byte over the limit: refused from its size, so nothing is read or hashed."""
    with (project / ARTIFACT).open("r+b") as artifact:
        artifact.truncate(limits.MAX_ARTIFACT_BYTES + 1)
    result = cli("evaluate", project / "specs/credit-default.yaml", "--no-write")
    assert result.code == 1
    assert f"artifact {ARTIFACT} is {limits.MAX_ARTIFACT_BYTES + 1} bytes, over the limit of" in result.out


def test_serve_fetches_nothing_over_the_size_limit(tmp_path: Path) -> None:
    """`serve` fetches with `fetch` (local files, pvc:// and downloads alike): a file over the limit is refused."""
    with (tmp_path / "model.skops").open("wb") as artifact:
        artifact.truncate(limits.MAX_ARTIFACT_BYTES + 1)
    expected = f"artifact model.skops is {limits.MAX_ARTIFACT_BYTES + 1} bytes, over the limit of 512 MiB"
    with pytest.raises(ArtifactLimitError, match=expected):
        fetch("model.skops", tmp_path)

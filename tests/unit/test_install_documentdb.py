"""scripts/install-documentdb.sh's sources (`--fetch-only`): a local copy is checked byte
for byte, a download by its files (GitHub's archives are not byte-stable), and a tampered
archive is refused either way. The downloads come from a mirror on this machine
(`DOCUMENTDB_SOURCES_BASE_URL=file://...`), laid out as GitHub serves them: the real
download from GitHub is not reachable from here."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-documentdb.sh"
SUMS = ROOT / "scripts" / "documentdb-sources.sha256"
VENDOR = ROOT.parent / "shared" / "vendor" / "documentdb"
SMALL = "pgvector-v0.8.0.tar.gz"  # the smallest archive that has a GitHub tag archive

pytestmark = pytest.mark.skipif(
    not (VENDOR / SMALL).exists(), reason=f"no local copy of the sources in {VENDOR}"
)


def fetch(dest: Path, *names: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DOCUMENTDB_VENDOR_DIR", "DOCUMENTDB_SOURCES_BASE_URL")
    }
    return subprocess.run(
        ["bash", str(SCRIPT), "--fetch-only", str(dest), *names],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def upstream_path(name: str) -> str:
    for line in SUMS.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return fields[3]
    raise AssertionError(f"{name} is not in {SUMS}")


def github_style(archive: Path, top: str, change: str | None = None) -> bytes:
    """The archive's files repacked under another top folder (as GitHub names a tag's
    archive), freshly compressed; with `change`, that file's bytes altered."""
    out = io.BytesIO()
    with tarfile.open(archive) as source, tarfile.open(fileobj=out, mode="w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            body = data.read() if data is not None else b""
            member.name = top + member.name.partition("/")[2].join(["/", ""])
            if change is not None and member.name.endswith("/" + change):
                body += b"\n/* changed */\n"
            member.size = len(body)
            target.addfile(member, io.BytesIO(body) if member.isfile() else None)
    return out.getvalue()


def mirror(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "mirror" / upstream_path(SMALL)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    return f"file://{tmp_path / 'mirror'}"


def test_the_local_copy_is_used_and_checked(tmp_path: Path) -> None:
    result = fetch(tmp_path / "out", SMALL, DOCUMENTDB_VENDOR_DIR=str(VENDOR))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / SMALL).read_bytes() == (VENDOR / SMALL).read_bytes()


def test_a_tampered_local_copy_is_refused(tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / SMALL).write_bytes((VENDOR / SMALL).read_bytes() + b"\0")
    result = fetch(tmp_path / "out", SMALL, DOCUMENTDB_VENDOR_DIR=str(vendor))
    assert result.returncode != 0
    assert "checksum mismatch" in result.stderr
    assert not (tmp_path / "out" / SMALL).exists()


def test_a_download_is_checked_by_its_files_whatever_its_bytes(tmp_path: Path) -> None:
    base = mirror(tmp_path, github_style(VENDOR / SMALL, "pgvector-0.8.0"))
    result = fetch(tmp_path / "out", SMALL, DOCUMENTDB_SOURCES_BASE_URL=base)
    if result.returncode != 0 and "could not download" in result.stderr:
        pytest.skip("this curl reads no file:// URLs")
    assert result.returncode == 0, result.stderr
    assert "downloading" in result.stderr
    assert (tmp_path / "out" / SMALL).exists()


def test_a_tampered_download_is_refused(tmp_path: Path) -> None:
    base = mirror(tmp_path, github_style(VENDOR / SMALL, "pgvector-0.8.0", change="src/vector.c"))
    result = fetch(tmp_path / "out", SMALL, DOCUMENTDB_SOURCES_BASE_URL=base)
    assert result.returncode != 0
    assert "do not match" in result.stderr, result.stderr
    assert not (tmp_path / "out" / SMALL).exists()


def test_every_archive_has_its_sums_and_upstream_path() -> None:
    names = ["documentdb-3f80da90.tar.gz", "mongo-c-driver-1.28.0.tar.gz", "pg_cron-v1.6.3.tar.gz"]
    for name in [*names, SMALL]:
        assert upstream_path(name).endswith(".tar.gz")
    assert shutil.which("curl"), "the download path needs curl"

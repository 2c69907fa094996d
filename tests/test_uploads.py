"""Tests for universal_service.uploads: a zipped region folder from the dashboard, unpacked safely.

Every crafted archive is built in memory with :mod:`zipfile` (the accepted case zips the
synthetic region); a refused archive must leave the destination folder as it was.
"""

from __future__ import annotations

import io
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from universal_service import io as region_io
from universal_service import uploads
from universal_service.errors import InputDataError

REGION_TOML = 'name = "x"\n[layers]\nvillages = "villages.gpkg"\n'


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], *, level: int = 6) -> bytes:
    """An archive in memory from (name or ZipInfo, content) pairs, DEFLATE-compressed."""
    buf = io.BytesIO()
    with (
        warnings.catch_warnings(),  # zipfile warns on a duplicate name, which one case wants
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf,
    ):
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        for name, content in entries:
            zf.writestr(name, content)
    return buf.getvalue()


def _zip_folder(folder: Path, prefix: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, f"{prefix}/{p.relative_to(folder).as_posix()}")
    return buf.getvalue()


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _fifo(name: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    return info, b""


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_real_region_round_trip(synth_region_dir, tmp_path):
    data = _zip_folder(synth_region_dir, "myregion")
    root = uploads.extract_region_zip(data, tmp_path / "dest")
    assert root == (tmp_path / "dest" / "myregion").resolve()
    assert (root / "region.toml").is_file()
    assert _listing(tmp_path / "dest") == ["myregion"] + [
        f"myregion/{n}" for n in _listing(synth_region_dir)
    ]
    assert len(region_io.load_region(root).villages) == 40


def test_region_at_archive_top_level_and_macos_junk(tmp_path):
    data = _zip(
        [
            ("region.toml", REGION_TOML.encode()),
            ("villages.gpkg", b"x" * 100),
            ("__MACOSX/._region.toml", b"junk"),
            ("__MACOSX/../../escape", b"never written"),
        ]
    )
    root = uploads.extract_region_zip(data, tmp_path)
    assert root == tmp_path.resolve()
    assert _listing(tmp_path) == ["region.toml", "villages.gpkg"]


def test_region_nested_one_level_deeper(tmp_path):
    data = _zip([("a/b/region.toml", REGION_TOML.encode()), ("a/readme.txt", b"hi")])
    assert uploads.extract_region_zip(data, tmp_path) == (tmp_path / "a" / "b").resolve()


# name -> (archive builder, keyword limits, expected substrings of the message)
REFUSED: dict[str, tuple[Callable[[], bytes], dict[str, int], tuple[str, ...]]] = {
    "traversal_dotdot": (
        lambda: _zip([("r/region.toml", b""), ("r/../../evil.txt", b"pwned")]),
        {},
        ("'r/../../evil.txt'", "'..'", "path traversal", "Zip the region folder itself"),
    ),
    "traversal_backslash": (
        lambda: _zip([("r/region.toml", b""), ("r\\..\\..\\evil.txt", b"pwned")]),
        {},
        ("evil.txt", "'..'", "path traversal"),
    ),
    "absolute_path": (
        lambda: _zip([("r/region.toml", b""), ("/tmp/evil.txt", b"pwned")]),
        {},
        ("'/tmp/evil.txt'", "absolute path", "relative"),
    ),
    "windows_drive": (
        lambda: _zip([("r/region.toml", b""), ("C:/evil.txt", b"pwned")]),
        {},
        ("'C:/evil.txt'", "absolute path"),
    ),
    "symlink": (
        lambda: _zip([("r/region.toml", b""), _symlink("r/dem.tif", "/etc/passwd")]),
        {},
        ("'r/dem.tif'", "symbolic link", "Replace the link"),
    ),
    "special_file": (
        lambda: _zip([("r/region.toml", b""), _fifo("r/pipe")]),
        {},
        ("'r/pipe'", "not a regular file", "remove it"),
    ),
    "duplicate_member": (
        lambda: _zip([("r/region.toml", b"a"), ("r/region.toml", b"b")]),
        {},
        ("'r/region.toml'", "appears twice"),
    ),
    "too_many_files": (
        lambda: _zip([("r/region.toml", b"")] + [(f"r/f{i:03d}.csv", b"1") for i in range(30)]),
        {"max_files": 20},
        ("more than 20 files", "max_files=20", "'r/f019.csv'", "Zip only the region folder"),
    ),
    "total_size_over_limit": (
        lambda: _zip([("r/region.toml", b""), ("r/dem.tif", bytes(range(256)) * 400)]),
        {"max_total_bytes": 50_000},
        ("more than 50,000 bytes", "max_total_bytes", "'r/dem.tif'", "102,400 bytes"),
    ),
    "zip_bomb": (
        lambda: _zip([("r/region.toml", b""), ("r/dem.tif", bytes(20_000_000))], level=9),
        {},
        ("'r/dem.tif'", "max_ratio=100", "zip bomb", "20,000,000 bytes"),
    ),
    "many_small_members_add_up_to_a_bomb": (
        # 150 members of 1 MiB of zeros each stay under the per-member ratio floor and under
        # max_total_bytes, yet 150 MiB come out of about 150 kB
        lambda: _zip(
            [("r/region.toml", b"")] + [(f"r/f{i:03d}.bin", bytes(1 << 20)) for i in range(150)],
            level=9,
        ),
        {},
        ("151 files", "expand", "max_total_ratio=100", "zip bomb", "157,286,400 bytes"),
    ),
    "no_region_toml": (
        lambda: _zip([("r/villages.gpkg", b"x"), ("r/regions.toml", b"")]),
        {},
        ("no region.toml", "Zip the folder that contains region.toml"),
    ),
    "two_regions": (
        lambda: _zip([("a/region.toml", b""), ("b/region.toml", b"")]),
        {},
        ("several region folders", "'a/region.toml'", "'b/region.toml'", "one region at a time"),
    ),
    "not_a_zip": (
        lambda: b"PK\x03\x04 this is not really a zip file",
        {},
        ("not a readable zip archive", "compressed as .zip"),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_archives(case, tmp_path):
    build, limits, expected = REFUSED[case]
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("already here")
    with pytest.raises(InputDataError) as ei:
        uploads.extract_region_zip(build(), dest, **limits)
    msg = str(ei.value)
    assert msg.startswith("upload: ")
    for part in expected:
        assert part in msg, f"{case}: {part!r} not in {msg!r}"
    # refused whole: nothing written, nothing outside dest, no temporary folder left
    assert _listing(dest) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


def _forge_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size ``name`` declares, in its local and central headers."""
    out = bytearray(data)
    key = name.encode()
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = out.find(sig)
        while at >= 0:
            n = int.from_bytes(out[at + offset + 4 : at + offset + 6], "little")  # name length
            start = at + (30 if sig == b"PK\x03\x04" else 46)
            if out[start : start + n] == key:
                out[at + offset : at + offset + 4] = size.to_bytes(4, "little")
            at = out.find(sig, at + 4)
    return bytes(out)


def test_forged_size_header_is_stopped(tmp_path):
    """A header claiming 1 kB for a 3 MB member passes the pre-checks but never gets written."""
    real = _zip([("r/region.toml", b""), ("r/dem.tif", bytes(3_000_000))])
    data = _forge_size(real, "r/dem.tif", 1_000)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.getinfo("r/dem.tif").file_size == 1_000
    with pytest.raises(InputDataError, match=r"could not be extracted .*'r/dem.tif'") as ei:
        uploads.extract_region_zip(data, tmp_path / "dest", max_total_bytes=100_000)
    assert "Re-create it" in str(ei.value)
    assert _listing(tmp_path / "dest") == []


def test_genuine_but_compressible_small_files_pass(tmp_path):
    # small GeoPackages are mostly empty pages and compress ~30x: below the ratio floor, accepted
    data = _zip([("r/region.toml", REGION_TOML.encode()), ("r/v.gpkg", bytes(500_000))])
    root = uploads.extract_region_zip(data, tmp_path)
    assert (root / "v.gpkg").stat().st_size == 500_000


def test_does_not_overwrite_existing_files(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "region.toml").write_text("mine")
    data = _zip([("r/region.toml", b"theirs")])
    with pytest.raises(InputDataError, match=r"would overwrite \['r'\].*empty folder"):
        uploads.extract_region_zip(data, tmp_path)
    assert (tmp_path / "r" / "region.toml").read_text() == "mine"


def test_corrupt_member_is_reported_and_cleaned(tmp_path):
    data = bytearray(_zip([("r/region.toml", b""), ("r/dem.tif", bytes(range(256)) * 64)]))
    # flip bytes inside the compressed data of the second member: the CRC check fails
    at = data.index(b"r/dem.tif") + len("r/dem.tif") + 20
    data[at : at + 8] = b"\xff" * 8
    with pytest.raises(InputDataError, match=r"could not be extracted .*Re-create it"):
        uploads.extract_region_zip(bytes(data), tmp_path / "dest")
    assert _listing(tmp_path / "dest") == []


def test_each_small_member_passes_the_ratio_check_alone(tmp_path):
    """The bomb above is caught by the total ratio only: one of its members alone is accepted."""
    data = _zip([("r/region.toml", b""), ("r/f000.bin", bytes(1 << 20))], level=9)
    root = uploads.extract_region_zip(data, tmp_path / "dest")
    assert (root / "f000.bin").stat().st_size == 1 << 20


def test_total_ratio_applies_above_its_floor_only(tmp_path):
    members = [(f"r/f{i}.bin", bytes(1 << 20)) for i in range(6)]  # 6 MiB < 8 MiB floor
    data = _zip([("r/region.toml", b""), *members], level=9)
    uploads.extract_region_zip(data, tmp_path / "a")
    with pytest.raises(InputDataError, match="max_total_ratio=100"):
        uploads.extract_region_zip(
            _zip(
                [
                    ("r/region.toml", b""),
                    *members,
                    *[(f"r/g{i}.bin", bytes(1 << 20)) for i in range(3)],
                ],
                level=9,
            ),
            tmp_path / "b",
        )
    assert not (tmp_path / "b").exists() or _listing(tmp_path / "b") == []


def test_real_region_is_far_below_the_total_ratio(synth_region_dir, tmp_path):
    data = _zip_folder(synth_region_dir, "region")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    ratio = sum(i.file_size for i in infos) / sum(i.compress_size for i in infos)
    assert ratio < 10  # about 3: the limit of 100 leaves a wide margin for genuine regions


def test_destination_that_is_a_file(tmp_path):
    dest = tmp_path / "dest.zip"
    dest.write_text("a file, not a folder")
    data = _zip([("r/region.toml", REGION_TOML.encode())])
    with pytest.raises(InputDataError) as ei:
        uploads.extract_region_zip(data, dest)
    msg = str(ei.value)
    assert str(dest) in msg and "is an existing file" in msg and "new or empty folder" in msg
    assert dest.read_text() == "a file, not a folder"


def test_destination_below_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    dest = tmp_path / "f" / "sub" / "dest"
    with pytest.raises(InputDataError) as ei:
        uploads.extract_region_zip(_zip([("r/region.toml", b"")]), dest)
    msg = str(ei.value)
    assert str(tmp_path / "f") in msg and "which is a file" in msg


def test_destination_that_cannot_be_created(tmp_path):
    dest = Path("/sys/universal-service-upload")  # sysfs refuses mkdir, even to root
    with pytest.raises(InputDataError) as ei:
        uploads.extract_region_zip(_zip([("r/region.toml", b"")]), dest)
    assert str(dest) in str(ei.value) and "cannot be created" in str(ei.value)

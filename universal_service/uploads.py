"""Safely unpack a zipped region folder uploaded through the dashboard.

An uploaded archive is untrusted: its member names, types and sizes are all chosen by whoever
made it. :func:`extract_region_zip` checks the whole central directory before writing a byte
(no absolute paths or ``..`` traversal, no symlinks or other special files, no duplicate names,
at most ``max_files`` files and folders, at most ``max_total_bytes`` uncompressed, no member
expanding more than ``max_ratio`` times and the members together no more than ``max_total_ratio``
times, so that many small members that each pass the per-member check cannot add up to a bomb), then streams each member to disk while counting the bytes actually
produced, so an archive whose headers lie about sizes is stopped too (the checks recommended by
the OWASP File Upload Cheat Sheet and the Python ``zipfile`` documentation, "Decompression
pitfalls"). Every refusal is an :class:`~universal_service.errors.InputDataError` naming the
member and the limit; after a refusal nothing extracted is left behind.
"""

from __future__ import annotations

import io
import lzma
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .errors import InputDataError

#: Members smaller than this [bytes] are not held to ``max_ratio``: small GeoPackages are mostly
#: empty pages and legitimately compress 20-50 times, and they cannot make a bomb.
RATIO_FLOOR_BYTES = 1 << 20

#: Archives expanding to less than this in total [bytes] are not held to ``max_total_ratio``.
TOTAL_RATIO_FLOOR_BYTES = 8 << 20

#: Read size when streaming a member to disk [bytes].
CHUNK_BYTES = 1 << 16

#: Folders made by archivers that are not part of the region (macOS resource forks).
IGNORED_PREFIXES = ("__MACOSX/",)

_WHERE = "upload"


def _fail(message: str) -> InputDataError:
    return InputDataError(f"{_WHERE}: {message}")


def _member_kind(info: zipfile.ZipInfo) -> str:
    """``"dir"``, ``"file"``, ``"symlink"`` or ``"special"`` from the member's Unix mode bits."""
    if info.is_dir():
        return "dir"
    mode = info.external_attr >> 16
    if stat.S_IFMT(mode) == 0:  # no file type recorded (Windows archivers, zipfile.writestr)
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "special"


def _safe_parts(name: str) -> tuple[str, ...]:
    """The member's path components, or raise if the name could escape the destination."""
    fixed = name.replace("\\", "/")
    if "\x00" in fixed:
        raise _fail(f"member {name!r} has a NUL character in its name; re-create the zip.")
    path = PurePosixPath(fixed)
    drive = len(fixed) >= 2 and fixed[1] == ":" and fixed[0].isalpha()
    if fixed.startswith("/") or drive:
        raise _fail(
            f"member {name!r} has an absolute path; only paths relative to the archive are "
            "allowed. Zip the region folder itself (e.g. `zip -r region.zip myregion/`)."
        )
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if ".." in parts:
        raise _fail(
            f"member {name!r} climbs out of the archive with '..' (path traversal); only "
            "paths inside the region folder are allowed. Zip the region folder itself."
        )
    return parts


def _plan_members(
    zf: zipfile.ZipFile,
    *,
    max_total_bytes: int,
    max_files: int,
    max_ratio: float,
    max_total_ratio: float,
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...], str]]:
    """Check every member from the central directory; return (info, parts, kind) to extract."""
    members: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]] = []
    seen: set[tuple[str, ...]] = set()
    n_entries, n_files, total, total_compressed = 0, 0, 0, 0
    for info in zf.infolist():
        name = info.filename
        if name.replace("\\", "/").startswith(IGNORED_PREFIXES):
            continue
        parts = _safe_parts(name)
        kind = _member_kind(info)
        if kind == "symlink":
            raise _fail(
                f"member {name!r} is a symbolic link; links are not accepted in an upload. "
                "Replace the link by the file it points to and zip again."
            )
        if kind == "special":
            raise _fail(
                f"member {name!r} is not a regular file or folder (mode "
                f"{oct(info.external_attr >> 16)}); remove it from the archive."
            )
        if info.flag_bits & 0x1:
            raise _fail(f"member {name!r} is encrypted; upload an archive without a password.")
        if not parts:
            continue
        if parts in seen:
            raise _fail(
                f"member {name!r} appears twice in the archive; a second copy would overwrite the "
                "first. Re-create the zip."
            )
        seen.add(parts)
        n_entries += 1
        if n_entries > max_files:
            raise _fail(
                f"the archive holds more than {max_files} files and folders (limit "
                f"max_files={max_files}, exceeded at member {name!r}); a region folder needs "
                "about ten files. Zip only the region folder."
            )
        if kind == "dir":
            members.append((info, parts, kind))
            continue
        total += info.file_size
        total_compressed += info.compress_size
        n_files += 1
        if total > max_total_bytes:
            raise _fail(
                f"the archive expands to more than {max_total_bytes:,} bytes (limit "
                f"max_total_bytes; reached at member {name!r}, {info.file_size:,} bytes). Upload "
                "a smaller region or coarsen the DEM."
            )
        if info.file_size > RATIO_FLOOR_BYTES:
            ratio = info.file_size / info.compress_size if info.compress_size else float("inf")
            if ratio > max_ratio:
                raise _fail(
                    f"member {name!r} expands {ratio:,.0f} times ({info.compress_size:,} -> "
                    f"{info.file_size:,} bytes), more than the limit max_ratio={max_ratio:g}; the "
                    "archive looks like a zip bomb. If the file is genuine, store it compressed "
                    "(e.g. a DEFLATE-compressed GeoTIFF) and zip again."
                )
        members.append((info, parts, kind))
    if total > TOTAL_RATIO_FLOOR_BYTES:
        ratio = total / total_compressed if total_compressed else float("inf")
        if ratio > max_total_ratio:
            raise _fail(
                f"the {n_files} files of the archive expand {ratio:,.0f} times together "
                f"({total_compressed:,} -> {total:,} bytes), more than the limit "
                f"max_total_ratio={max_total_ratio:g}; many small, highly compressed members add "
                "up to a zip bomb. A region folder compresses a few times at most: re-create the "
                "zip from the region folder alone."
            )
    return members


def _check_dest(dest: Path) -> None:
    """Refuse a destination that is a file, lies below a file, or cannot be created."""
    if dest.exists() and not dest.is_dir():
        raise _fail(
            f"the destination {dest} is an existing file, not a folder; extract into a new or "
            "empty folder instead, or move the file away."
        )
    ancestor = dest.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise _fail(
            f"the destination {dest} lies below {ancestor}, which is a file, not a folder; "
            "extract into a folder whose parents are folders."
        )
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(
            f"the destination {dest} cannot be created ({exc.strerror or exc}); extract into a "
            "writable folder."
        ) from exc


def _find_region_root(
    members: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]],
) -> tuple[str, ...]:
    tomls = sorted(
        (parts for _, parts, kind in members if kind == "file" and parts[-1] == "region.toml"),
        key=lambda p: (len(p), p),
    )
    if not tomls:
        raise _fail(
            "no region.toml in the archive; a region folder needs a region.toml naming its layers "
            "(see universal_service.io). Zip the folder that contains region.toml."
        )
    if len(tomls) > 1 and len(tomls[1]) == len(tomls[0]):
        shown = ", ".join(repr("/".join(p)) for p in tomls[:5])
        raise _fail(
            f"the archive holds several region folders ({shown}); upload one region at a time."
        )
    return tomls[0][:-1]


def _copy_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, max_total: int
) -> int:
    """Stream one member to ``target``; stop when it exceeds its declared size or the budget."""
    written = 0
    with zf.open(info) as src, open(target, "xb") as dst:
        while True:
            chunk = src.read(CHUNK_BYTES)
            if not chunk:
                break
            written += len(chunk)
            if written > info.file_size:
                raise _fail(
                    f"member {info.filename!r} expands past its declared size of "
                    f"{info.file_size:,} bytes; the archive is corrupt or crafted. Re-create it."
                )
            if written > budget:
                raise _fail(
                    f"the archive expands to more than {max_total:,} bytes (limit "
                    f"max_total_bytes; reached inside member {info.filename!r})."
                )
            dst.write(chunk)
    return written


def extract_region_zip(
    data: bytes,
    dest: Path,
    *,
    max_total_bytes: int = 200_000_000,
    max_files: int = 200,
    max_ratio: float = 100,
    max_total_ratio: float = 100,
) -> Path:
    """Extract an uploaded zip of a region folder into ``dest`` and return the region folder.

    Every member is checked before anything is written; an archive breaking any rule is refused
    whole, and an extraction that fails half way removes what it wrote.

    Parameters
    ----------
    data : bytes
        The uploaded archive.
    dest : pathlib.Path
        Folder to extract into (created if missing). Existing files are never overwritten.
    max_total_bytes : int
        Largest total uncompressed size of the members [bytes].
    max_files : int
        Largest number of members (files and folders) [count].
    max_ratio : float
        Largest uncompressed / compressed size of one member [-], checked for members over
        :data:`RATIO_FLOOR_BYTES`.
    max_total_ratio : float
        Largest total uncompressed / total compressed size of all files [-], checked for
        archives expanding to more than :data:`TOTAL_RATIO_FLOOR_BYTES`.

    Returns
    -------
    pathlib.Path
        The extracted folder that contains ``region.toml`` (``dest`` itself when the archive
        holds the region files at its top level), ready for :func:`universal_service.io.load_region`.

    Raises
    ------
    InputDataError
        The data is not a zip archive; a member has an absolute path or ``..`` in it, is a
        symbolic link, a special file, encrypted or duplicated; there are more than ``max_files``
        members; the members expand to more than ``max_total_bytes``, a member more than
        ``max_ratio`` times or all of them more than ``max_total_ratio`` times; the destination
        is a file, lies below a file or cannot be created; no (or more than one top-level) ``region.toml``; or a member would
        overwrite an existing file in ``dest``. The message names the member and the limit.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise _fail(
            f"the file is not a readable zip archive ({exc}). Upload the region folder "
            "compressed as .zip."
        ) from exc
    with zf:
        members = _plan_members(
            zf,
            max_total_bytes=max_total_bytes,
            max_files=max_files,
            max_ratio=max_ratio,
            max_total_ratio=max_total_ratio,
        )
        root_parts = _find_region_root(members)
        dest = Path(dest)
        _check_dest(dest)
        base = dest.resolve()
        clash = sorted({parts[0] for _, parts, _ in members if (base / parts[0]).exists()})
        if clash:
            raise _fail(
                f"extracting would overwrite {clash[:5]} in {dest}; extract into an empty folder."
            )
        # unpack into a private folder inside dest, then move the top-level entries into place
        tmp = Path(tempfile.mkdtemp(prefix=".upload-", dir=base))
        try:
            remaining = max_total_bytes
            for info, parts, kind in members:
                target = tmp.joinpath(*parts)
                if kind == "dir":
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                remaining -= _copy_member(zf, info, target, remaining, max_total_bytes)
            for entry in sorted(tmp.iterdir()):
                os.replace(entry, base / entry.name)
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            NotImplementedError,
            zlib.error,
            lzma.LZMAError,
        ) as exc:
            raise _fail(
                f"the archive could not be extracted ({type(exc).__name__}: {exc}); it is "
                "corrupt, truncated or uses an unsupported compression. Re-create it with a "
                "standard zip tool and upload again."
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return base.joinpath(*root_parts)

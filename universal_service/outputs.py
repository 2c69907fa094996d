"""Write output files and whole output sets so that a reader never sees a partial file or a mix."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import InputDataError

try:  # POSIX only; without it leftovers of killed runs are never provably stale, so kept
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Name of the manifest written last into every output set (run id, scenario, file hashes).
MANIFEST_NAME = "manifest.json"
#: Version of the manifest layout.
MANIFEST_FORMAT = 1

#: Test hook: when set, called with ``"before <file>"`` / ``"after <file>"`` around each file of
#: an output set (the manifest included) and with ``"before swap"`` / ``"after swap"``; a test
#: child process sets it to kill itself at one step.
STEP_HOOK: Callable[[str], None] | None = None

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_HASH_CHUNK_BYTES = 1 << 20


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    An interrupted write leaves no partial file at ``target`` (rename is atomic on POSIX within
    one filesystem).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part" + target.suffix, dir=target.parent
    )
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically.

    Parameters
    ----------
    target : path-like
        Final file path.
    writer : callable
        Writes the complete file to the path it is given.

    Returns
    -------
    pathlib.Path
        ``target``.
    """
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


# ------------------------------------------------------------------------------ output set checks


def _out_error(out: Path, what: str, fix: str) -> InputDataError:
    return InputDataError(f"--out {out}: {what}; {fix}")


def _is_legacy_temporary(name: str) -> bool:
    """A temporary of :func:`atomic_path` left inside an output folder by an older, killed run."""
    return name.startswith(".") and ".part" in name


def _foreign_entries(out: Path, owned: Collection[str]) -> list[Path]:
    """Entries of an existing output folder that no plan run wrote (the user's own files)."""
    keep = set(owned) | {MANIFEST_NAME}
    return sorted(
        p for p in out.iterdir() if p.name not in keep and not _is_legacy_temporary(p.name)
    )


def check_out_dir(out_dir: str | os.PathLike[str], owned: Collection[str]) -> Path:
    """Check that an output set can be written to ``out_dir``, before anything is computed.

    The set is written into a staging folder beside ``out_dir`` and swapped in whole, so the
    parent folder must be writable; an existing ``out_dir`` may hold earlier outputs and the
    user's own files (kept), but no sub-folders (they could not be carried over atomically).

    Parameters
    ----------
    out_dir : path-like
        The output folder (created if missing).
    owned : collection of str
        File names a run writes (earlier copies are replaced, not kept).

    Returns
    -------
    pathlib.Path
        ``out_dir`` as an absolute path with symbolic links resolved.

    Raises
    ------
    InputDataError
        ``out_dir`` is an existing file, one of its parents is a file, the folder that would hold
        it is not writable, it holds sub-folders, or it is the current folder or one of its
        parents. The message names the path and the fix.
    """
    out = Path(out_dir).expanduser().resolve()
    if out == out.parent:
        raise _out_error(out, "is the filesystem root", "give a folder below it")
    try:  # one stat: a concurrent run may rename the folder away between two checks
        mode = out.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # missing, or below a file (next check)
        mode = None
    if mode is not None and not stat.S_ISDIR(mode):
        raise _out_error(
            out,
            "is an existing file, not a folder",
            f"give a folder path instead (e.g. --out {out.with_name(out.name + '_out')}) or "
            "move the file away",
        )
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _out_error(
            out,
            f"its parent {ancestor} is a file, not a folder",
            "choose an output folder whose parents are folders, or move that file away",
        )
    if out.is_dir():
        cwd = Path.cwd().resolve()
        if out == cwd or out in cwd.parents:
            raise _out_error(
                out,
                "is the current folder or one of its parents (the output set replaces the "
                "folder whole)",
                "give a sub-folder such as --out out",
            )
        try:
            folders = [p.name for p in _foreign_entries(out, owned) if p.is_dir()]
        except FileNotFoundError:  # renamed away by a concurrent run in the meantime
            folders = []
        if folders:
            shown = ", ".join(repr(n) for n in folders[:5])
            more = f" and {len(folders) - 5} more" if len(folders) > 5 else ""
            raise _out_error(
                out,
                f"holds the folders {shown}{more}, which are not plan outputs (a run replaces "
                "its output folder whole and keeps only the files in it)",
                "choose a new or empty output folder, or move those folders away",
            )
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=ancestor)
        os.rmdir(probe)
    except OSError as exc:
        raise _out_error(
            out,
            f"the folder {ancestor} is not writable ({exc.strerror or exc}); the output set is "
            "staged beside the output folder and swapped in whole",
            "choose an output folder in a writable place or fix the folder's permissions",
        ) from exc
    return out


# ------------------------------------------------------------------------------ staging and swap


def _step(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


def _staging_glob(out: Path) -> str:
    return str(out.parent / f".{glob.escape(out.name)}.staging-*")


def _lock(path: Path) -> int | None:
    """Open ``path`` (a folder) and take a non-blocking exclusive lock; None when held elsewhere.

    The lock (``flock``) is released by the kernel when the holder dies, so an unlocked staging
    folder is provably not in use by a live run.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    if fcntl is None:  # pragma: no cover - Windows
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def clean_stale(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders of killed runs beside ``out_dir``; return what was removed.

    A staging folder is removed only when no process holds its lock, i.e. its run is dead (or has
    already swapped it out as garbage); the staging folders of live concurrent runs are left alone.
    """
    out = Path(out_dir).expanduser().resolve()
    removed: list[Path] = []
    if fcntl is None:  # pragma: no cover - no provable staleness without locks
        return removed
    for name in sorted(glob.glob(_staging_glob(out))):
        path = Path(name)
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            fd = _lock(path)
        except OSError:
            continue
        if fd is None:
            continue  # a live run holds it
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def _make_staging(out: Path, run_id: str) -> tuple[Path, int]:
    """A new, locked, empty staging folder beside ``out`` (same filesystem, so renames are atomic)."""
    try:  # another run may be swapping ``out`` right now (it is briefly absent without renameat2)
        mode = stat.S_IMODE(out.stat().st_mode) if out.is_dir() else None
    except FileNotFoundError:
        mode = None
    for attempt in range(5):
        stage = out.parent / f".{out.name}.staging-{run_id}-{attempt}"
        try:
            os.mkdir(stage)
        except FileExistsError:
            continue
        try:
            fd = _lock(stage)
        except FileNotFoundError:  # a cleaner removed it between mkdir and lock
            continue
        if fd is None:  # a cleaner took it between mkdir and lock: it is going away
            continue
        try:
            same = os.path.samestat(os.stat(stage), os.fstat(fd))
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        if mode is not None:
            os.chmod(stage, mode)
        return stage, fd
    raise OSError(errno.EEXIST, f"could not create a staging folder beside {out}")


_libc_renameat2: Any = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    global _libc_renameat2
    if _libc_renameat2 is None:
        try:
            _libc_renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):
            _libc_renameat2 = False
    if _libc_renameat2 is False:
        return False
    rc = _libc_renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _swap_in(stage: Path, out: Path) -> Path | None:
    """Put the complete set at ``stage`` in place of ``out``; return the folder now holding the
    previous set (to be removed), or None when there was none.

    With ``renameat2`` the two folders are exchanged in one step: a reader sees the old set or the
    new one. Elsewhere the old folder is renamed aside and the new one renamed in, and for a moment
    there is no folder at all (never a mix).
    """
    for _ in range(20):  # concurrent runs may make or swap ``out`` between the steps
        if not out.exists():
            try:
                os.rename(stage, out)
                return None
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue
        try:
            if _exchange(stage, out):
                return stage
        except FileNotFoundError:
            continue
        old = stage.with_name(stage.name + ".old")
        try:
            os.rename(out, old)
        except FileNotFoundError:
            continue
        try:
            os.rename(stage, out)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                with contextlib.suppress(OSError):
                    os.rename(old, out)  # put the previous set back
                raise
            shutil.rmtree(old, ignore_errors=True)
            continue  # another run put its set in first; ours goes on top next round
        return old
    raise OSError(
        errno.EBUSY, f"could not swap the output set into {out}: too many concurrent runs"
    )


def sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks (the manifest's and the provenance's hash)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _carry_foreign(out: Path, stage: Path, owned: Collection[str]) -> None:
    """Hard-link (or copy) the user's own files of the current ``out`` into the new set."""
    entries: list[Path] = []
    for _ in range(50):  # without renameat2 a concurrent run leaves no folder for a moment
        try:
            entries = _foreign_entries(out, owned) if out.is_dir() else []
            break
        except FileNotFoundError:
            time.sleep(0.01)
    for src in entries:
        if src.is_dir() and not src.is_symlink():
            continue  # refused by check_out_dir; one made since is left with the old set
        dst = stage / src.name
        try:
            os.link(src, dst, follow_symlinks=False)
        except FileNotFoundError:
            continue
        except OSError:
            shutil.copy2(src, dst, follow_symlinks=False)


def write_set(
    out_dir: str | os.PathLike[str],
    writers: Mapping[str, Callable[[Path], None]],
    *,
    owned: Collection[str],
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write a set of files as one unit: the folder holds the previous set or this one, never a mix.

    Every file is written into a staging folder beside ``out_dir`` (unique to this run and locked
    while the run lives), then :data:`MANIFEST_NAME` is written last, the user's own files of the
    current folder are carried over, and the staging folder is swapped in for ``out_dir``. Staging
    folders of killed runs are removed first, those of live concurrent runs are left alone.

    Parameters
    ----------
    out_dir : path-like
        The output folder.
    writers : mapping of str to callable
        File name -> function writing the complete file to the path it is given, in write order.
    owned : collection of str
        Every file name a run may write (earlier copies not in ``writers`` are dropped).
    meta : mapping, optional
        JSON-serialisable fields for the manifest (e.g. ``scenario``); ``run_id`` is added.

    Returns
    -------
    dict
        File name -> final path (the manifest not included).

    Raises
    ------
    InputDataError
        ``out_dir`` cannot hold an output set (see :func:`check_out_dir`).
    """
    out = check_out_dir(out_dir, owned)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    run_id = uuid.uuid4().hex
    stage, fd = _make_staging(out, run_id)
    to_remove: Path | None = stage
    try:
        files: dict[str, dict[str, Any]] = {}
        for name, writer in writers.items():
            _step(f"before {name}")
            target = stage / name
            writer(target)
            _fsync(target)
            files[name] = {"bytes": target.stat().st_size, "sha256": sha256(target)}
            _step(f"after {name}")
        _step(f"before {MANIFEST_NAME}")
        manifest = {
            "format": MANIFEST_FORMAT,
            "run_id": run_id,
            **dict(meta or {}),
            "files": files,
        }
        with open(stage / MANIFEST_NAME, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.fsync(fd)  # the folder's entries
        _step(f"after {MANIFEST_NAME}")
        _carry_foreign(out, stage, owned)
        _step("before swap")
        to_remove = _swap_in(stage, out)
        _step("after swap")
    finally:
        if to_remove is not None:
            shutil.rmtree(to_remove, ignore_errors=True)
        os.close(fd)
    return {name: out / name for name in writers}


def read_manifest(out_dir: str | os.PathLike[str], *, verify: bool = True) -> dict[str, Any]:
    """Read the manifest of an output set and (by default) check every file against it.

    Parameters
    ----------
    out_dir : path-like
        An output folder written by :func:`write_set`.
    verify : bool
        Check that every listed file exists with the recorded size [bytes] and sha256.

    Returns
    -------
    dict
        The manifest: ``format``, ``run_id``, the run's fields and ``files`` (name -> ``bytes``,
        ``sha256``).

    Raises
    ------
    InputDataError
        No manifest, an unreadable one, or a file missing or differing from it.
    """
    out = Path(out_dir)
    path = out / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputDataError(
            f"{path}: no manifest; the folder is not a complete output set (re-run the plan)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{path}: unreadable manifest ({exc}); re-run the plan") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise InputDataError(f"{path}: expected a JSON object with 'files'; re-run the plan")
    if verify:
        bad = []
        for name, info in sorted(manifest["files"].items()):
            f = out / name
            if not f.is_file():
                bad.append(f"{name} is missing")
            elif f.stat().st_size != info.get("bytes") or sha256(f) != info.get("sha256"):
                bad.append(f"{name} differs from the manifest")
        if bad:
            raise InputDataError(
                [f"{out}: {b} (run {manifest.get('run_id')}); re-run the plan" for b in bad]
            )
    return manifest

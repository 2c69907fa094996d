"""Output sets are all-or-nothing: a folder holds one run's complete set, or the previous one.

``outputs.write_set`` stages every file in a folder beside the output folder and swaps it in whole.
These tests kill a writer with SIGKILL at every step (a child process whose ``outputs.STEP_HOOK``
kills it), run writers concurrently into one folder, and check the path checks done before any
plan is computed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from universal_service import outputs
from universal_service.errors import InputDataError

FILES = ("plan.nc", "villages.gpkg", "sites.gpkg", "summary.csv")
STEPS = [
    f"{when} {name}" for name in (*FILES, outputs.MANIFEST_NAME) for when in ("before", "after")
]
STEPS += ["before swap", "after swap"]


def _writers(tag: str, names=FILES) -> dict:
    """Writers of a fake output set whose every file says which run wrote it."""

    def make(name):
        return lambda p: Path(p).write_text(f"{tag}:{name}\n" * 1000)

    return {name: make(name) for name in names}


def _set_of(out: Path) -> str | None:
    """The run tag of the complete set in ``out``; fails on a mix, a partial set or a bad manifest."""
    if not out.exists():
        return None
    names = sorted(p.name for p in out.iterdir() if p.name != "notes.txt")
    assert names == sorted((*FILES, outputs.MANIFEST_NAME)), names
    tags = {p.read_text().split(":", 1)[0] for p in out.iterdir() if p.name in FILES}
    assert len(tags) == 1, f"a mix of runs: {tags}"
    manifest = outputs.read_manifest(out)  # every file matches its recorded sha256
    assert manifest["scenario"] == next(iter(tags))
    return next(iter(tags))


def _staging(out: Path) -> list[str]:
    return sorted(glob.glob(str(out.parent / f".{out.name}.staging-*")))


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from universal_service import outputs

    out, tag, kill_at, exchange = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    if exchange == "no":
        outputs._libc_renameat2 = False  # the two-rename fallback of systems without renameat2

    def hook(step):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    outputs.STEP_HOOK = hook
    files = ("plan.nc", "villages.gpkg", "sites.gpkg", "summary.csv")
    writers = {
        n: (lambda p, n=n: Path(p).write_text(f"{tag}:{n}\\n" * 1000)) for n in files
    }
    for _ in range(int(os.environ.get("REPEAT", "1"))):
        outputs.write_set(out, writers, owned=files, meta={"scenario": tag})
    """
)


def _child(out: Path, tag: str, kill_at: str = "", exchange: str = "yes", repeat: int = 1):
    env = {**os.environ, "REPEAT": str(repeat)}
    args = [sys.executable, "-c", CHILD, str(out), tag, kill_at, exchange]
    return subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)


def _write(out: Path, tag: str, names=FILES) -> dict[str, Path]:
    return outputs.write_set(out, _writers(tag, names), owned=FILES, meta={"scenario": tag})


# ------------------------------------------------------------------------------------ one set


def test_set_is_replaced_whole_and_user_files_are_kept(tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    (out / "notes.txt").write_text("mine")
    (out / ".plan.nc.x1.part.nc").write_text("temporary of an older, killed writer")
    paths = _write(out, "new", names=("plan.nc", "villages.gpkg", "summary.csv"))
    assert sorted(paths) == ["plan.nc", "summary.csv", "villages.gpkg"]
    # sites.gpkg of the old run is not left beside the new files; the user's notes are
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "notes.txt",
        "plan.nc",
        "summary.csv",
        "villages.gpkg",
    ]
    assert (out / "notes.txt").read_text() == "mine"
    m = outputs.read_manifest(out)
    assert m["scenario"] == "new" and len(m["run_id"]) == 32
    assert sorted(m["files"]) == ["plan.nc", "summary.csv", "villages.gpkg"]
    assert _staging(out) == []


def test_manifest_catches_a_file_from_another_run(tmp_path):
    out, other = tmp_path / "out", tmp_path / "other"
    _write(out, "a")
    _write(other, "b")
    (out / "sites.gpkg").write_bytes((other / "sites.gpkg").read_bytes())  # a mix made by hand
    with pytest.raises(InputDataError) as ei:
        outputs.read_manifest(out)
    assert "sites.gpkg differs from the manifest" in str(ei.value)
    assert "plan.nc" not in str(ei.value)


def test_failed_writer_keeps_the_previous_set(tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    writers = _writers("new")

    def broken(p):
        Path(p).write_text("half")
        raise OSError(28, "No space left on device")

    writers["sites.gpkg"] = broken
    with pytest.raises(OSError, match="No space left"):
        outputs.write_set(out, writers, owned=FILES, meta={"scenario": "new"})
    assert _set_of(out) == "old"
    assert _staging(out) == []


def test_first_failed_run_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    writers = _writers("new")
    writers["summary.csv"] = lambda p: (_ for _ in ()).throw(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        outputs.write_set(out, writers, owned=FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_swap_without_renameat2(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "_libc_renameat2", False)
    out = tmp_path / "out"
    _write(out, "old")
    _write(out, "new")
    assert _set_of(out) == "new" and _staging(out) == []


# ------------------------------------------------------------------------------- killed runs


@pytest.mark.parametrize("step", STEPS)
def test_sigkill_at_each_step_leaves_the_old_set_or_the_new(step, tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    proc = _child(out, "new", kill_at=step)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    expected = "new" if step == "after swap" else "old"
    assert _set_of(out) == expected
    # the killed run's staging folder is left, and provably stale: the next run removes it
    assert len(_staging(out)) == 1
    _write(out, "next")
    assert _set_of(out) == "next" and _staging(out) == []


@pytest.mark.parametrize("step", ["after summary.csv", "before swap", "after swap"])
def test_sigkill_on_a_first_run_leaves_nothing_or_the_set(step, tmp_path):
    out = tmp_path / "out"
    proc = _child(out, "new", kill_at=step)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert _set_of(out) == ("new" if step == "after swap" else None)


def test_clean_stale_keeps_a_live_runs_staging(tmp_path):
    out = tmp_path / "out"
    live = tmp_path / ".out.staging-live"
    dead = tmp_path / ".out.staging-dead"
    live.mkdir()
    dead.mkdir()
    (dead / "plan.nc").write_text("left by a killed run")
    fd = outputs._lock(live)  # held as a live run holds it
    try:
        assert fd is not None
        removed = outputs.clean_stale(out)
        assert removed == [dead] and live.exists() and not dead.exists()
    finally:
        os.close(fd)
    assert outputs.clean_stale(out) == [live]


# -------------------------------------------------------------------------------- concurrency


def test_a_run_that_starts_and_ends_inside_another_does_not_break_it(tmp_path, monkeypatch):
    """Run B cleans stale staging folders, writes and swaps while run A is half way: A's staging
    folder survives B's cleaning, and A's complete set (the last swapped in) is what remains."""
    out = tmp_path / "out"
    _write(out, "old")
    seen = []

    def hook(step):
        if step == "after villages.gpkg":
            monkeypatch.setattr(outputs, "STEP_HOOK", None)
            assert len(_staging(out)) == 1  # A's
            _write(out, "b")
            seen.append(_set_of(out))

    monkeypatch.setattr(outputs, "STEP_HOOK", hook)
    _write(out, "a")
    assert seen == ["b"]
    assert _set_of(out) == "a" and _staging(out) == []


@pytest.mark.parametrize("exchange", ["yes", "no"])
def test_two_concurrent_runs_into_one_folder(exchange, tmp_path):
    out = tmp_path / "out"
    _write(out, "old")
    procs = [_child(out, tag, exchange=exchange, repeat=15) for tag in ("a", "b")]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(errs)
    assert _set_of(out) in {"a", "b"}
    assert _staging(out) == []


# ------------------------------------------------------------------------------- path checks


def test_out_is_a_file(tmp_path):
    f = tmp_path / "results"
    f.write_text("x")
    with pytest.raises(InputDataError) as ei:
        outputs.check_out_dir(f, FILES)
    assert str(f) in str(ei.value) and "is an existing file" in str(ei.value)
    assert "--out " + str(f.with_name("results_out")) in str(ei.value)


def test_out_below_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputDataError, match=r"its parent .*/f is a file"):
        outputs.check_out_dir(tmp_path / "f" / "a" / "out", FILES)


def test_out_not_writable(tmp_path):
    out = Path("/sys/universal-service-out")  # sysfs refuses mkdir, even to root
    with pytest.raises(InputDataError) as ei:
        outputs.check_out_dir(out, FILES)
    assert str(out) in str(ei.value) and "/sys is not writable" in str(ei.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputDataError, match="is not writable"):
            outputs.check_out_dir(ro / "out", FILES)
    finally:
        ro.chmod(0o755)


def test_out_holding_folders_is_refused(tmp_path):
    out = tmp_path / "out"
    (out / "old_runs").mkdir(parents=True)
    with pytest.raises(InputDataError, match=r"holds the folders 'old_runs'.*move those folders"):
        outputs.check_out_dir(out, FILES)


def test_out_is_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputDataError, match="is the current folder"):
        outputs.check_out_dir(".", FILES)


def test_check_creates_nothing(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    assert outputs.check_out_dir(out, FILES) == out.resolve()
    assert list(tmp_path.iterdir()) == []


def test_symlinked_out_is_written_through(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    _write(link, "new")
    assert link.is_symlink() and _set_of(real) == "new"


def test_manifest_is_json_listing_hashes(tmp_path):
    out = tmp_path / "out"
    _write(out, "x")
    m = json.loads((out / outputs.MANIFEST_NAME).read_text())
    assert m["format"] == outputs.MANIFEST_FORMAT
    assert all(len(v["sha256"]) == 64 and v["bytes"] > 0 for v in m["files"].values())


def test_a_staging_folder_removed_before_its_lock_is_replaced(tmp_path, monkeypatch):
    """Another run's cleaner may remove a fresh staging folder between its mkdir and its lock
    (seen under two concurrent runs): the run makes a new one instead of failing."""
    real, calls = outputs._lock, []

    def racy(path):
        calls.append(path)
        if len(calls) == 1:
            shutil.rmtree(path)
            raise FileNotFoundError(path)
        return real(path)

    monkeypatch.setattr(outputs, "_lock", racy)
    out = tmp_path / "out"
    stage, fd = outputs._make_staging(out, "run")
    try:
        assert stage.name.endswith("-1") and stage.is_dir() and len(calls) == 2
    finally:
        os.close(fd)

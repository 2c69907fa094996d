"""One call in a forked child (``universal_service.forked``): its value, its errors, no threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from universal_service import forked

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="needs fork, 2 CPUs, one thread")


def _stats(a: np.ndarray, scale: float) -> dict:
    return {"sum": float(a.sum() * scale), "rows": a[:3] * scale}


def test_the_child_returns_what_the_call_gives_here() -> None:
    a = np.arange(12.0).reshape(4, 3)
    threads = threading.active_count()
    job = forked.Forked(_stats, a, scale=2.0)
    assert threading.active_count() == threads  # no thread: a second fork may follow at once
    other = forked.Forked(_stats, a, 3.0)
    got, got_other = job.result(), other.result()
    assert got["sum"] == _stats(a, 2.0)["sum"]
    np.testing.assert_array_equal(got["rows"], a[:3] * 2.0)
    assert got_other["sum"] == pytest.approx(198.0)


def _fails(name: str) -> None:
    raise KeyError(f"no district {name!r}")


def test_an_error_in_the_child_is_raised_by_result() -> None:
    with pytest.raises(KeyError, match="no district 'x'"):
        forked.Forked(_fails, "x").result()


def test_a_result_that_cannot_be_sent_is_an_error_naming_it() -> None:
    with pytest.raises(RuntimeError, match="forked call failed: .*not sent"):
        forked.Forked(lambda: threading.Lock()).result()


def _sleeps() -> None:
    import time

    time.sleep(60)


def test_an_abandoned_call_is_stopped_and_reaped() -> None:
    """An error in the parent before the result is taken: leaving the block stops the child."""
    import os

    with pytest.raises(ValueError, match="parent failed"), forked.Forked(_sleeps) as job:
        pid = job._pid
        raise ValueError("parent failed")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)  # already reaped
    with pytest.raises(RuntimeError, match="already taken or abandoned"):
        job.result()

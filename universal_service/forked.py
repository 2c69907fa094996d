"""Run one function call in a forked child process, beside the parent's own work.

The costing of a region has independent parts (the fiber routes' least-cost paths, the radio
coverage of the candidate sites) that each hold one core for seconds in code that keeps the
GIL. :class:`Forked` runs one of them in a ``fork`` of this process, so the child sees the
parent's arrays without copying or pickling them, and sends back only the result (pickled
through a pipe). No thread is started, so a parent may run several at once, and each child's
result is what the call gives in the parent.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Forked", "can_fork"]


def can_fork() -> bool:
    """Whether this process may fork a helper: POSIX, at least two CPUs, one thread.

    Forking a multithreaded process (a Dask worker, the dashboard's server) can deadlock the
    child on a lock another thread held, so callers run the work in the parent instead there.
    """
    if not hasattr(os, "fork"):
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) >= 2 and threading.active_count() == 1


class Forked:
    """``fn(*args, **kwargs)`` running in a forked child; :meth:`result` waits for its value.

    An exception in the child is raised again by :meth:`result` (as a ``RuntimeError`` naming
    it when it cannot be pickled). Take :meth:`result` once (it reaps the child), and use the
    object as a context manager so that a call abandoned by an error in the parent is stopped
    (:meth:`close`).

    Parameters
    ----------
    fn : callable
        The function; it and its arguments are inherited by the child, not pickled.
    *args, **kwargs
        Its arguments.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, leave without running the parent's exit code
            code = 0
            try:
                os.close(read)
                try:
                    message = (True, fn(*args, **kwargs))
                except BaseException as exc:  # sent to the parent, raised there
                    message = (False, exc)
                try:
                    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # an unpicklable result or error
                    what = f"{type(message[1]).__name__}: {message[1]}"
                    error = RuntimeError(f"forked call failed: {what} (not sent: {exc})")
                    payload = pickle.dumps((False, error))
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
            except BaseException:  # the pipe itself failed
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        self._pid = pid
        self._read = os.fdopen(read, "rb")

    def result(self) -> Any:
        """The call's value, once the child has sent it; re-raises the child's exception."""
        if self._read.closed:
            raise RuntimeError("the forked call's result was already taken or abandoned")
        try:
            ok, value = pickle.load(self._read)
        except EOFError:
            ok, value = False, RuntimeError("forked call ended without sending a result")
        finally:
            self._read.close()
            os.waitpid(self._pid, 0)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Abandon the call if its result was not taken: stop and reap the child, close the pipe."""
        if self._read.closed:
            return
        self._read.close()
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:  # it had ended
            pass
        os.waitpid(self._pid, 0)

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The kernel's exception classes.

`Cancelled` is special: only the kernel creates it (at a checkpoint inside a
cancelled scope) and only the `CancelScope` that caused it catches it, so user
code cannot construct one. The rest are ordinary exceptions shared by the
primitives built on top of the kernel.
"""

from __future__ import annotations

from typing import Any, NoReturn


class TetherInternalError(Exception):
    """Raised by `tether.run` when tether's own machinery failed.

    This always indicates a bug in tether (or in a callback handed to the
    kernel, such as a `run_sync_soon` callback or a system task), never a
    problem with the user's async code, whose errors propagate unchanged.
    """


class Cancelled(BaseException):
    """Raised at a checkpoint inside a cancelled `CancelScope`.

    It derives from `BaseException` so that ``except Exception`` does not
    swallow it by accident. Let it propagate: the scope that was cancelled
    catches it on exit. It cannot be constructed by user code; to cancel work,
    call `CancelScope.cancel()` or use a deadline.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "tether.Cancelled has no public constructor: cancel work with "
            "CancelScope.cancel() or a deadline (move_on_after/fail_after)"
        )

    @classmethod
    def _create(cls) -> Cancelled:
        # BaseException.__new__ sets up args; skipping __init__ is the point.
        return cls.__new__(cls)

    def __str__(self) -> str:
        return "Cancelled"

    def __reduce__(self) -> NoReturn:
        raise TypeError("tether.Cancelled cannot be pickled")


class RunFinishedError(RuntimeError):
    """Raised by `TetherToken.run_sync_soon` (and friends) once the run it
    belongs to has finished."""


class WouldBlock(Exception):
    """Raised by ``X_nowait`` operations when ``X`` would have blocked."""


class BusyResourceError(Exception):
    """Raised when a task tries to use a resource that another task is already
    using in a way that cannot be shared (for example, two tasks waiting to
    read the same file descriptor)."""


class ClosedResourceError(Exception):
    """Raised when using a resource that has been closed, or when a resource is
    closed while a task is waiting on it, by the side that holds it."""


class BrokenResourceError(Exception):
    """Raised when a resource is unusable because of something the *other*
    side did (for example, every receiver of a channel was closed)."""


class EndOfChannel(Exception):
    """Raised by `ReceiveChannel.receive` once every sender has been closed and
    the buffered values are exhausted. Async iteration ends quietly on it."""

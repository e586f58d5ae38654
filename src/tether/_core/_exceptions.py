"""The kernel's exception classes.

`Cancelled` is special: only the kernel creates it (at a checkpoint inside a
cancelled scope) and only the `CancelScope` that caused it catches it, so user
code cannot construct one. The rest are ordinary exceptions shared by the
primitives built on top of the kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn


class TetherDeprecationWarning(FutureWarning):
    """Warned when code uses tether functionality that is deprecated (as trio
    deprecates it), such as ``strict_exception_groups=False``.

    A `FutureWarning` rather than a `DeprecationWarning`, as in trio, so that
    it is shown by default: the code that triggers it is usually the
    application's own.
    """


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
    catches it on exit. It cannot be constructed or subclassed by user code;
    to cancel work, call `CancelScope.cancel()` or use a deadline.

    Its message says why the code was cancelled, for example ``cancelled due
    to deadline`` or ``cancelled due to explicit with reason 'shutting down'
    from task <Task 'app.main' at 0x7f...>``. The same information is in its
    attributes:

    Attributes:
      source: what kind of event cancelled the scope: ``"explicit"``
        (`CancelScope.cancel`), ``"deadline"``, ``"nursery"`` (a task in the
        nursery, or its body, raised), ``"KeyboardInterrupt"``,
        ``"shutdown"`` (the run is ending) or ``"unknown"``.
      source_task: the ``repr`` of the task that caused it, if known.
      reason: the text passed to ``CancelScope.cancel(reason=...)``, or
        tether's description of the cause; None if there is none.
    """

    source: str
    source_task: str | None
    reason: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "tether.Cancelled has no public constructor: cancel work with "
            "CancelScope.cancel() or a deadline (move_on_after/fail_after)"
        )

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError(
            "tether.Cancelled cannot be subclassed: only the kernel raises it, and "
            "only the cancel scope that caused it catches it"
        )

    @classmethod
    def _create(
        cls,
        *,
        source: str = "unknown",
        source_task: str | None = None,
        reason: str | None = None,
    ) -> Cancelled:
        # BaseException.__new__ sets up args; skipping __init__ is the point.
        exc = cls.__new__(cls)
        exc.source = source
        exc.source_task = source_task
        exc.reason = reason
        return exc

    def __str__(self) -> str:
        text = f"cancelled due to {self.source}"
        if self.reason is not None:
            text += f" with reason {self.reason!r}"
        if self.source_task is not None:
            text += f" from task {self.source_task}"
        return text

    def __reduce__(self) -> tuple[Callable[[], Cancelled], tuple[()]]:
        # Pickled (by multiprocessing, say) as a call to the private
        # constructor, which the public one refuses.
        return (
            functools.partial(
                Cancelled._create,
                source=self.source,
                source_task=self.source_task,
                reason=self.reason,
            ),
            (),
        )


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

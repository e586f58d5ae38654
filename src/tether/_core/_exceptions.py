"""The kernel's exception classes.

`Cancelled` is special: only the kernel creates it (at a checkpoint inside a
cancelled scope) and only the `CancelScope` that caused it catches it, so user
code cannot construct one. The rest are ordinary exceptions shared by the
primitives built on top of the kernel.
"""

# Behaviour and design (tether's own; trio's tests and documentation are
# the specification):
#
# * `Cancelled` is a `BaseException` that only the kernel makes. Its public
#   constructor refuses (so ``raise Cancelled`` in user code is a TypeError
#   that explains what to do instead) and so does subclassing; the kernel
#   builds one with the private classmethod `Cancelled._create`, which
#   bypasses ``__init__`` and records three facts: the kind of event
#   (``source``), the repr of the task that caused it, and a reason.
# * ``str()`` of a `Cancelled` is built from those facts in a fixed order:
#   "cancelled due to <source>", then " with reason <reason!r>" and
#   " from task <task>" when known (trio's tests match these words). Its
#   ``repr()`` lists all three facts by name, None included.
# * Pickling must round-trip the three facts without calling the refused
#   constructor, so ``__reduce__`` names a module-level rebuild function.
# * Everything else is a plain marker class; only its base class matters
#   (callers catch ``Exception``, ``RuntimeError`` or ``FutureWarning``).

from __future__ import annotations

from typing import Any, NoReturn

#: The word `Cancelled.source` has when the kernel did not say.
UNKNOWN_SOURCE = "unknown"


class TetherInternalError(Exception):
    """Raised by `tether.run` when tether's own machinery failed.

    This always indicates a bug in tether (or in a callback handed to the
    kernel, such as a `run_sync_soon` callback or a system task), never a
    problem with the user's async code, whose errors propagate unchanged.
    """


class TetherDeprecationWarning(FutureWarning):
    """Warned when code uses tether functionality that is deprecated (as trio
    deprecates it), such as ``strict_exception_groups=False``.

    A `FutureWarning` rather than a `DeprecationWarning`, as in trio, so that
    it is shown by default: the code that triggers it is usually the
    application's own.
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
        source: str = UNKNOWN_SOURCE,
        source_task: str | None = None,
        reason: str | None = None,
    ) -> Cancelled:
        # BaseException.__new__ fills in args without running __init__, which
        # is what keeps the public constructor closed.
        made: Cancelled = BaseException.__new__(cls)
        made.source, made.source_task, made.reason = source, source_task, reason
        return made

    def __str__(self) -> str:
        pieces = ["cancelled due to", self.source]
        if self.reason is not None:
            pieces += ["with reason", repr(self.reason)]
        if self.source_task is not None:
            pieces += ["from task", self.source_task]
        return " ".join(pieces)

    def __repr__(self) -> str:
        # Every fact, None or not, so that a logged repr is self-describing.
        facts = ", ".join(
            f"{name}={value!r}"
            for name, value in (
                ("source", self.source),
                ("source_task", self.source_task),
                ("reason", self.reason),
            )
        )
        return f"{type(self).__name__}({facts})"

    def __reduce__(self) -> tuple[Any, ...]:
        # multiprocessing and friends pickle exceptions; rebuild through the
        # private path, since the public constructor refuses.
        return _rebuild_cancelled, (self.source, self.source_task, self.reason)


def _rebuild_cancelled(source: str, source_task: str | None, reason: str | None) -> Cancelled:
    """Unpickle a `Cancelled` (see `Cancelled.__reduce__`)."""
    return Cancelled._create(source=source, source_task=source_task, reason=reason)


class WouldBlock(Exception):
    """Raised by ``X_nowait`` operations when ``X`` would have blocked."""


class EndOfChannel(Exception):
    """Raised by `ReceiveChannel.receive` once every sender has been closed and
    the buffered values are exhausted. Async iteration ends quietly on it."""


class ClosedResourceError(Exception):
    """Raised when using a resource that has been closed, or when a resource is
    closed while a task is waiting on it, by the side that holds it."""


class BrokenResourceError(Exception):
    """Raised when a resource is unusable because of something the *other*
    side did (for example, every receiver of a channel was closed)."""


class BusyResourceError(Exception):
    """Raised when a task tries to use a resource that another task is already
    using in a way that cannot be shared (for example, two tasks waiting to
    read the same file descriptor)."""


class RunFinishedError(RuntimeError):
    """Raised by `TetherToken.run_sync_soon` (and friends) once the run it
    belongs to has finished."""

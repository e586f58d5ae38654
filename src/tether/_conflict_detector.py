"""`ConflictDetector`: turn concurrent use of a one-task-at-a-time
operation into `BusyResourceError`.

A stream lets one task send and one task receive at a time; a second task
arriving while the first is still inside is a bug in the caller, and it must
be told so at once rather than corrupt the stream's state. The detector is a
plain flag, not a lock: nobody ever waits for it. It is not a checkpoint.

Hot paths (`SocketStream.send_all` and `receive_some`) test and set `held`
themselves instead of using ``with``, which costs two Python calls per
operation::

    if detector.held:
        raise detector.busy()
    detector.held = True
    try:
        ...
    finally:
        detector.held = False
"""

from __future__ import annotations

from types import TracebackType

from ._core import BusyResourceError

__all__ = ["ConflictDetector"]


class ConflictDetector:
    """``with detector:`` marks an operation in progress; entering while it
    is already in progress raises `BusyResourceError` with `message`."""

    __slots__ = ("held", "message")

    def __init__(self, message: str) -> None:
        self.message = message
        #: True while an operation is in progress.
        self.held = False

    def busy(self) -> BusyResourceError:
        """The error for a second task arriving while `held`."""
        return BusyResourceError(self.message)

    def __enter__(self) -> None:
        if self.held:
            raise self.busy()
        self.held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.held = False

"""A byte stream over a raw file descriptor: pipes, FIFOs, terminals.

`FdStream` owns one file descriptor, puts it in non-blocking mode and moves
bytes with ``os.read`` / ``os.write``, parking on the run's I/O waits
(`wait_readable` / `wait_writable`) whenever the descriptor would block.

Invariants:

* The stream's fd number is forgotten (``-1``) the moment it is closed, so
  a later call can never reach an unrelated file that reused the number: it
  gets ``EBADF`` from the OS, which becomes `ClosedResourceError`.
* Closing from inside the run first calls `notify_closing`, so a task parked
  on the fd wakes with `ClosedResourceError` instead of waiting forever.
* At most one task sends and one task receives at a time; a second one gets
  `BusyResourceError` instead of interleaving bytes.
* The descriptor's original blocking mode is restored before it is closed:
  the mode belongs to the open file description, which a dup or a child
  process may share.
"""

from __future__ import annotations

import errno
import os
from typing import final

from ._conflict_detector import ConflictDetector

# The kernel's public names, not `tether.lowlevel`: lowlevel re-exports
# FdStream, so importing it from here would be an import cycle.
from ._core import (
    BrokenResourceError,
    ClosedResourceError,
    checkpoint,
    in_tether_run,
    notify_closing,
    wait_readable,
    wait_writable,
)
from ._sync_close import ClosesSynchronously
from .abc import Stream

__all__ = ["FdStream"]

#: Bytes asked for by ``receive_some()`` without ``max_bytes``: the default
#: capacity of a Linux pipe, so one call usually empties a full pipe.
DEFAULT_RECEIVE_SIZE = 65536


class _OwnedFd:
    """Holds the descriptor: non-blocking while owned, closed exactly once.

    Kept apart from `FdStream` so that a constructor failing half-way still
    leaves an object whose ``__del__`` knows what (if anything) to close.
    """

    __slots__ = ("_was_blocking", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = -1  # set first: __del__ runs even if the checks below raise
        if not isinstance(fd, int):
            raise TypeError(
                f"FdStream needs a file descriptor number (an int), got {fd!r}; "
                "pass f.fileno() for a file object"
            )
        self._was_blocking = os.get_blocking(fd)
        os.set_blocking(fd, False)
        self.fd = fd

    @property
    def closed(self) -> bool:
        return self.fd == -1

    def close_quietly(self) -> None:
        """Close without waking waiters. Only safe where no task can be
        parked on the fd: from ``__del__`` (a parked task would hold a
        reference to the stream) or outside a run."""
        fd = self.fd
        if fd == -1:
            return
        self.fd = -1
        try:
            os.set_blocking(fd, self._was_blocking)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd == -1:
            return
        if in_tether_run():
            notify_closing(self.fd)
        self.close_quietly()

    def __del__(self) -> None:
        self.close_quietly()


@final
class FdStream(ClosesSynchronously, Stream):
    """A `tether.abc.Stream` over a file descriptor that supports
    non-blocking I/O: a pipe, a FIFO, a terminal (not a regular file on
    disk, which is always "ready" and would block the run).

    The stream takes ownership of `fd`: closing the stream (or letting it
    be garbage-collected) closes the descriptor. Do not use `fd` directly
    afterwards, as with `os.fdopen`.

    `fd` is switched to non-blocking mode for as long as the stream owns it.
    That mode belongs to the *open file description*, which is shared with
    every duplicate of the descriptor (``os.dup``, children that inherited
    it): wrapping ``os.dup(sys.stdin.fileno())`` also makes ``sys.stdin``
    non-blocking until the stream is closed, so other code reading it may
    see `BlockingIOError`. The original mode is restored on close.

    One task may send and one task may receive at the same time; a second
    concurrent sender or receiver gets `BusyResourceError`. Use as
    ``async with FdStream(fd) as stream:`` to close it on the way out.

    Raises:
      TypeError: if `fd` is not an int.
      OSError: if `fd` is not an open descriptor.
    """

    def __init__(self, fd: int) -> None:
        self._owned = _OwnedFd(fd)
        self._send_guard = ConflictDetector("another task is using this stream for send")
        self._receive_guard = ConflictDetector("another task is using this stream for receive")

    def __repr__(self) -> str:
        return f"<tether.lowlevel.FdStream fd={self._owned.fd}>"

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of `data`, waiting while the pipe is full.

        A checkpoint, also for empty `data`. If cancelled while waiting,
        the bytes written before the cancellation stay written and the rest
        is not sent: the stream's state is then unknown, so close it.

        Raises:
          BusyResourceError: if another task is sending on this stream.
          ClosedResourceError: if the stream is closed, or is closed by
            another task while this call waits.
          BrokenResourceError: if the reading end went away (``EPIPE``) or
            the write failed in another way; the `OSError` is the cause.
        """
        with self._send_guard:
            if self._owned.closed:
                raise ClosedResourceError("this FdStream was already closed")
            await checkpoint()
            # Counted in bytes whatever the buffer's item format is.
            with memoryview(data) as given, given.cast("B") as view:
                total = len(view)
                sent = 0
                while sent < total:
                    try:
                        sent += os.write(self._owned.fd, view[sent:])
                    except BlockingIOError:
                        await wait_writable(self._owned.fd)
                    except OSError as exc:
                        raise _translate_os_error(exc) from _cause(exc)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the pipe has room, so that `send_all` might not block.

        A checkpoint (it always waits for the OS to report the fd writable).

        Raises:
          BusyResourceError: if another task is sending on this stream.
          ClosedResourceError: if the stream is closed, or is closed while
            this call waits.
        """
        with self._send_guard:
            if self._owned.closed:
                raise ClosedResourceError("this FdStream was already closed")
            await wait_writable(self._owned.fd)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Wait for data and return between 1 and `max_bytes` bytes of it
        (65536 if not given), or ``b""`` once the writing end is closed and
        everything was read.

        A checkpoint. If cancelled while waiting, nothing was read.

        Raises:
          TypeError: if `max_bytes` is not an int.
          ValueError: if `max_bytes` is less than 1.
          BusyResourceError: if another task is receiving on this stream.
          ClosedResourceError: if the stream is closed, or is closed while
            this call waits.
          BrokenResourceError: if the read failed with an unexpected OS
            error; the `OSError` is the cause.
        """
        with self._receive_guard:
            if max_bytes is None:
                max_bytes = DEFAULT_RECEIVE_SIZE
            elif not isinstance(max_bytes, int):
                raise TypeError("max_bytes must be integer >= 1")
            elif max_bytes < 1:
                raise ValueError("max_bytes must be integer >= 1")
            await checkpoint()
            while True:
                try:
                    return os.read(self._owned.fd, max_bytes)
                except BlockingIOError:
                    await wait_readable(self._owned.fd)
                except OSError as exc:
                    raise _translate_os_error(exc) from _cause(exc)

    def close(self) -> None:
        """Close the descriptor now; tasks waiting on it wake with
        `ClosedResourceError`. Idempotent. Not a checkpoint."""
        self._owned.close()

    def fileno(self) -> int:
        """The descriptor this stream owns, or -1 once it is closed."""
        return self._owned.fd


def _translate_os_error(exc: OSError) -> ClosedResourceError | BrokenResourceError:
    # EBADF means our fd number was forgotten (closed) under us: that is the
    # "closed" error. Anything else (EPIPE, EIO, a descriptor that turned out
    # not to be readable) leaves the stream unusable: "broken".
    if exc.errno == errno.EBADF:
        return ClosedResourceError("this FdStream was closed")
    return BrokenResourceError(f"the file descriptor failed: {exc}")


def _cause(exc: OSError) -> OSError | None:
    return None if exc.errno == errno.EBADF else exc

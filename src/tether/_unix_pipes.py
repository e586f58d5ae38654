"""A byte stream over a raw file descriptor: pipes, FIFOs, terminals.

What it must do. `FdStream(fd)` takes ownership of one descriptor that
supports non-blocking I/O and offers it as a `tether.abc.Stream`: bytes go
out with ``os.write``, come in with ``os.read``, and whenever the OS says
"would block" the task parks on the run's readiness waits
(`wait_writable` / `wait_readable`). One sender and one receiver may work
at once; a second of either kind is a caller bug (`BusyResourceError`).
Closing is synchronous (`close`; `aclose` adds the checkpoint) and wakes
any task parked on the descriptor with `ClosedResourceError`. A stream
dropped without being closed closes its descriptor when collected.

Design.

* The number lives in one attribute, ``_fd``, whose *class-level* value is
  the sentinel `_NO_FD` (-1). Closing swaps the sentinel in before the
  descriptor is released, so every later system call on the stream is
  made on -1 and fails with ``EBADF`` instead of reaching an unrelated
  file that was given the recycled number. ``EBADF`` is therefore the one
  way "closed" is detected, whether the stream was closed before a call or
  while a call was parked (`_as_stream_error`). Because the sentinel is
  the class default, ``__del__`` also works on an instance whose
  constructor raised before taking the descriptor: it finds nothing to
  close.
* Non-blocking mode is a property of the open file description, which
  duplicates and children share. If the descriptor was blocking when it
  was handed over, `_release` makes it blocking again before closing it;
  one that was already non-blocking is left alone.
* The I/O loops re-read ``self._fd`` on every attempt (never a local copy
  taken before a park), which is what makes a close that happens between
  a wake-up and the next system call turn into `ClosedResourceError`.
"""

from __future__ import annotations

import errno
import os
from typing import NoReturn, final

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

#: The value of ``FdStream._fd`` when the stream holds no descriptor. Any
#: system call made with it fails with EBADF.
_NO_FD = -1


def _release(fd: int, make_blocking: bool) -> None:
    """Give `fd` back to the OS, restoring blocking mode first if the
    stream had taken it away. The descriptor is closed even if restoring
    the mode fails."""
    try:
        if make_blocking:
            os.set_blocking(fd, True)
    finally:
        os.close(fd)


def _as_stream_error(error: OSError) -> NoReturn:
    """Re-raise an OS error from a read or write as the stream error it
    means. Call it from the ``except`` block that caught `error`."""
    if error.errno == errno.EBADF:
        # Our number was swapped for the sentinel: the stream was closed.
        raise ClosedResourceError("this FdStream is closed") from None
    # EPIPE, EIO, a descriptor that turned out not to be readable...: the
    # stream cannot be used any more, and the OS error says why.
    raise BrokenResourceError(f"I/O on the file descriptor failed: {error}") from error


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

    # Class-level defaults, seen by __del__ if __init__ did not finish;
    # the constructor sets both on the instance.
    _fd: int = _NO_FD
    _was_blocking: bool = False

    def __init__(self, fd: int) -> None:
        if not isinstance(fd, int):
            raise TypeError(
                f"FdStream wants a file descriptor number (an int), not {fd!r}; "
                "for a file object, pass its fileno()"
            )
        was_blocking = os.get_blocking(fd)  # OSError here if fd is not open
        os.set_blocking(fd, False)
        self._was_blocking = was_blocking
        self._fd = fd
        self._sending = ConflictDetector("another task is using this stream for send")
        self._receiving = ConflictDetector("another task is using this stream for receive")

    def __repr__(self) -> str:
        return f"<tether.lowlevel.FdStream fd={self._fd}>"

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
        with self._sending:
            if self._fd == _NO_FD:
                raise ClosedResourceError("this FdStream was already closed")
            await checkpoint()
            # Positions count bytes, whatever the buffer's item format.
            with memoryview(data) as given, given.cast("B") as octets:
                remaining = octets
                while remaining:
                    try:
                        written = os.write(self._fd, remaining)
                    except BlockingIOError:
                        await wait_writable(self._fd)
                        continue
                    except OSError as error:
                        _as_stream_error(error)
                    remaining = remaining[written:]

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the pipe has room, so that `send_all` might not block.

        A checkpoint (it always waits for the OS to report the fd writable).

        Raises:
          BusyResourceError: if another task is sending on this stream.
          ClosedResourceError: if the stream is closed, or is closed while
            this call waits.
        """
        with self._sending:
            if self._fd == _NO_FD:
                raise ClosedResourceError("this FdStream was already closed")
            await wait_writable(self._fd)

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
        with self._receiving:
            if max_bytes is None:
                size = DEFAULT_RECEIVE_SIZE
            elif not isinstance(max_bytes, int):
                raise TypeError(f"max_bytes must be an int or None, got {max_bytes!r}")
            elif max_bytes < 1:
                # These exact words are what trio's tests expect.
                raise ValueError("max_bytes must be integer >= 1")
            else:
                size = max_bytes
            await checkpoint()
            while True:
                try:
                    return os.read(self._fd, size)
                except BlockingIOError:
                    pass
                except OSError as error:
                    _as_stream_error(error)
                await wait_readable(self._fd)

    def close(self) -> None:
        """Close the descriptor now; tasks waiting on it wake with
        `ClosedResourceError`. Idempotent. Not a checkpoint."""
        fd = self._fd
        if fd == _NO_FD:
            return
        self._fd = _NO_FD
        if in_tether_run():
            # Parked tasks are woken before the number can be reused.
            notify_closing(fd)
        _release(fd, self._was_blocking)

    def fileno(self) -> int:
        """The descriptor this stream owns, or -1 once it is closed."""
        return self._fd

    def __del__(self) -> None:
        # No task can be parked on the descriptor here (it would hold a
        # reference to the stream), so there is nobody to notify.
        fd = self._fd
        if fd != _NO_FD:
            self._fd = _NO_FD
            _release(fd, self._was_blocking)

"""Async file objects: `open_file`, `wrap_file` and the wrapper they return.

Reading or writing a regular file can block (a slow disk, a network file
system), and operating systems offer no readiness notification for regular
files, so the wrapper runs every method that may block in a worker thread
(`tether.to_thread.run_sync`) and keeps the cheap, non-blocking attributes
(``name``, ``mode``, ``closed``, ``fileno()``...) synchronous.

Invariants:

* Which attribute is forwarded how is decided by two fixed lists
  (`SYNC_ATTRIBUTES`, `THREADED_METHODS`); anything else is not forwarded
  (``AttributeError``), and a listed name the wrapped file lacks is not
  either, so ``hasattr`` and ``dir`` tell the truth about the wrapper.
* `AsyncIOWrapper.aclose` closes the file even when cancelled.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from functools import partial
from typing import IO, Any, Generic, TypeVar

from ._core import CancelScope, checkpoint_if_cancelled
from ._threads import to_thread_run_sync
from .abc import AsyncResource

__all__ = ["AsyncIOWrapper", "open_file", "wrap_file"]

FileT = TypeVar("FileT")
FileT_co = TypeVar("FileT_co", covariant=True)

#: Attributes and methods of `io` objects that never block: forwarded as is.
SYNC_ATTRIBUTES = frozenset(
    {
        "buffer",
        "closed",
        "closefd",
        "encoding",
        "errors",
        "fileno",
        "getbuffer",
        "getvalue",
        "isatty",
        "line_buffering",
        "mode",
        "name",
        "newlines",
        "raw",
        "readable",
        "seekable",
        "writable",
    }
)

#: Methods of `io` objects that may block: forwarded as async methods that
#: run the call in a worker thread.
THREADED_METHODS = frozenset(
    {
        "flush",
        "peek",
        "read",
        "read1",
        "readall",
        "readinto",
        "readinto1",
        "readline",
        "readlines",
        "seek",
        "tell",
        "truncate",
        "write",
        "writelines",
    }
)


def _threaded(owner: str, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    async def call_in_thread(*args: Any, **kwargs: Any) -> Any:
        return await to_thread_run_sync(partial(method, *args, **kwargs))

    call_in_thread.__name__ = name
    call_in_thread.__qualname__ = f"{owner}.{name}"
    call_in_thread.__doc__ = (
        f"Like the wrapped file's ``{name}``, but async: the call runs in a worker "
        "thread (tether.to_thread.run_sync).\n\n"
        "A checkpoint. If cancelled before the thread starts, nothing happens; once "
        "it runs, the call completes and `Cancelled` is raised at the next checkpoint."
    )
    return call_in_thread


class AsyncIOWrapper(AsyncResource, Generic[FileT_co]):
    """An asynchronous file object around a synchronous one.

    Methods that may block (``read``, ``write``, ``readline``, ``seek``,
    ``flush``...) become async and run in a worker thread; each is a
    checkpoint, cancellable until its thread starts (then the call
    completes and the cancellation is raised at the next checkpoint).
    Attributes that never block (``name``, ``mode``, ``closed``,
    ``encoding``, ``fileno()``, ``readable()``...) stay synchronous. Only
    what the wrapped object has is forwarded.

    ``async for line in f`` iterates over lines; ``async with f`` (or
    ``async with await tether.open_file(...) as f``) closes it on exit.
    """

    def __init__(self, file: FileT_co) -> None:
        self._wrapped = file

    @property
    def wrapped(self) -> FileT_co:
        """The synchronous file object this wraps."""
        return self._wrapped

    def __repr__(self) -> str:
        return f"<tether async file wrapping {self._wrapped!r}>"

    def __getattr__(self, name: str) -> Any:
        if name in SYNC_ATTRIBUTES:
            return getattr(self._wrapped, name)
        if name in THREADED_METHODS:
            method = getattr(self._wrapped, name)
            wrapper = _threaded(type(self).__name__, name, method)
            # Cached on the instance: later lookups skip __getattr__.
            setattr(self, name, wrapper)
            return wrapper
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r} (it forwards only "
            "the standard io file attributes; use .wrapped for the file itself)"
        )

    def __dir__(self) -> Iterable[str]:
        names = set(super().__dir__())
        names.update(n for n in SYNC_ATTRIBUTES | THREADED_METHODS if hasattr(self._wrapped, n))
        return names

    def __aiter__(self) -> AsyncIOWrapper[FileT_co]:
        return self

    async def __anext__(self) -> Any:
        line = await self.readline()
        if line:
            return line
        raise StopAsyncIteration

    async def detach(self) -> AsyncIOWrapper[Any]:
        """Like ``detach()`` of a buffered or text file, but async: returns
        the underlying raw or buffered file, wrapped again. A checkpoint;
        runs in a worker thread."""
        detached = await to_thread_run_sync(self._wrapped.detach)  # type: ignore[attr-defined]
        return wrap_file(detached)

    async def aclose(self) -> None:
        """Close the file (in a worker thread, flushing what is buffered).

        The close is shielded from cancellation, so the file is closed even
        if the task is cancelled; a pending cancellation is then raised as
        `Cancelled` afterwards. Idempotent, as ``close()`` is.
        """
        with CancelScope(shield=True):
            await to_thread_run_sync(self._wrapped.close)  # type: ignore[attr-defined]
        await checkpoint_if_cancelled()


def wrap_file(file: FileT) -> AsyncIOWrapper[FileT]:
    """Wrap a synchronous file object in an asynchronous file object
    (see `AsyncIOWrapper`): ``await tether.wrap_file(io.StringIO("x")).read()``.

    Not a checkpoint.

    Raises:
      TypeError: if `file` has no ``close()`` method, or neither ``read()``
        nor ``write()``.
    """

    def has_method(name: str) -> bool:
        return callable(getattr(file, name, None))

    if not (has_method("close") and (has_method("read") or has_method("write"))):
        raise TypeError(
            f"{file!r} is not a file object: wrap_file needs an object with close() "
            "and read() or write()"
        )
    return AsyncIOWrapper(file)


async def open_file(
    file: int | str | bytes | Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Callable[[str, int], int] | None = None,
) -> AsyncIOWrapper[IO[Any]]:
    """Like the built-in `open`, but async: opens the file in a worker
    thread and returns an asynchronous file object (`wrap_file`)::

        async with await tether.open_file(path) as f:
            async for line in f:
                ...

    The arguments are `open`'s. A checkpoint: if cancelled before the
    thread starts, nothing is opened; once it runs, the file is opened and
    returned, and `Cancelled` is raised at the next checkpoint (close it
    with ``async with``).

    Raises:
      OSError: as `open` does (``FileNotFoundError``, ``PermissionError``...).
    """
    opened = await to_thread_run_sync(
        partial(io.open, file, mode, buffering, encoding, errors, newline, closefd, opener)
    )
    return wrap_file(opened)

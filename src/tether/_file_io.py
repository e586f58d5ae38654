"""Async file objects: `open_file`, `wrap_file` and the `AsyncIOWrapper`
they return.

A regular file never reports "would block" (the OS has no readiness
notification for disks), so the only way to keep the run loop free while a
file is read or written is to make the call in a worker thread. The wrapper
does that for every method that may touch the device and leaves the cheap
parts of the file interface synchronous.

Behaviour (what the tests pin down):

* ``await f.read()``, ``write``, ``readline``, ``seek``, ``flush``... run
  the wrapped file's method in a worker thread through
  `tether.to_thread.run_sync`, so each is a checkpoint and is cancellable
  exactly as that is: cancelled before the thread starts, the call never
  happens; once it runs it completes, its result is dropped and `Cancelled`
  is raised at the next checkpoint.
* Attributes and methods that cannot block (``name``, ``mode``, ``closed``,
  ``encoding``, ``fileno()``, ``readable()``...) are the wrapped file's own.
* Only the file interface is forwarded, and only what the wrapped object
  really has: ``hasattr`` and ``dir()`` answer for the wrapper as they would
  for the file; anything else is an ``AttributeError`` (``.wrapped`` is the
  file itself).
* ``aclose()`` closes the file even when cancelled; ``detach()`` wraps what
  it detaches; ``async for`` yields lines.

Design:

* The interface is read off the standard library when this module is
  imported (`_file_interface`): the public members of the concrete `io`
  classes. Data members are passed through; methods are run in a thread
  unless they are in `_CHEAP_METHODS` (questions answered from memory).
  Blocking is the default on purpose: a method added to `io` by a later
  Python is then safe, at worst a little slower than it needs to be.
* Each member is a descriptor on `AsyncIOWrapper` (`_Passthrough`,
  `_InWorkerThread`), so the class itself documents the whole interface
  and ``help(AsyncIOWrapper)`` lists it. An `_InWorkerThread` builds the
  async method on first use and leaves it in the instance ``__dict__``; a
  non-data descriptor is not consulted again, so later lookups are plain
  attribute reads and ``f.read is f.read``.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Coroutine
from functools import partial
from typing import IO, Any, Generic, Self, TypeVar

from ._core import CancelScope, checkpoint_if_cancelled
from ._threads import to_thread_run_sync
from .abc import AsyncResource

__all__ = ["AsyncIOWrapper", "open_file", "wrap_file"]

Wrapped = TypeVar("Wrapped")
Wrapped_co = TypeVar("Wrapped_co", covariant=True)

#: The classes whose public members make up "the file interface".
_IO_CLASSES: tuple[type, ...] = (
    io.FileIO,
    io.BufferedReader,
    io.BufferedWriter,
    io.BufferedRandom,
    io.BufferedRWPair,
    io.TextIOWrapper,
    io.StringIO,
    io.BytesIO,
)

#: Methods that answer from memory and so stay synchronous: capability
#: questions, the descriptor number, the terminal check, and the views of an
#: in-memory buffer.
_CHEAP_METHODS = frozenset(
    {"fileno", "isatty", "readable", "writable", "seekable", "getvalue", "getbuffer"}
)

#: Methods with a hand-written async counterpart on the wrapper.
_WRITTEN_BY_HAND = frozenset({"close", "detach"})


def _file_interface() -> tuple[frozenset[str], frozenset[str]]:
    """(names passed through, names run in a worker thread), from `io`."""
    passed: set[str] = set()
    threaded: set[str] = set()
    for cls in _IO_CLASSES:
        for name in dir(cls):
            if name.startswith("_") or name in _WRITTEN_BY_HAND:
                continue
            member = inspect.getattr_static(cls, name)
            if inspect.isdatadescriptor(member) or name in _CHEAP_METHODS:
                passed.add(name)
            elif callable(member):
                threaded.add(name)
    # `io` has no name that is data in one class and a method in another; if
    # a later Python adds one, reading it through is the choice that cannot
    # turn an attribute into a coroutine.
    return frozenset(passed), frozenset(threaded - passed)


PASSED_THROUGH, RUN_IN_THREAD = _file_interface()


def _public_name(cls: type) -> str:
    # The io classes live in the C module `_io`; their documented home is `io`.
    module = "io" if cls.__module__ == "_io" else cls.__module__
    return f"{module}.{cls.__qualname__}"


class _Passthrough:
    """A member of the wrapped file that cannot block, read through as is."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, wrapper: AsyncIOWrapper[Any] | None, owner: type | None = None) -> Any:
        if wrapper is None:
            return self
        return getattr(wrapper.wrapped, self.name)


class _InWorkerThread:
    """A method of the wrapped file that may block, offered as an async method
    whose call runs in a worker thread."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, wrapper: AsyncIOWrapper[Any] | None, owner: type | None = None) -> Any:
        if wrapper is None:
            return self
        # Raises AttributeError when the wrapped file has no such method,
        # which is what makes hasattr() and dir() honest.
        blocking_call = getattr(wrapper.wrapped, self.name)
        # __class__ rather than type(): a proxy (a spec'd mock) names the
        # class it stands for.
        offloaded = _offload(blocking_call, self.name, wrapper.wrapped.__class__)
        vars(wrapper)[self.name] = offloaded
        return offloaded


def _offload(
    blocking_call: Callable[..., Any], name: str, file_class: type
) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def run_in_thread(*args: Any, **kwargs: Any) -> Any:
        return await to_thread_run_sync(partial(blocking_call, *args, **kwargs))

    run_in_thread.__name__ = name
    run_in_thread.__qualname__ = f"AsyncIOWrapper.{name}"
    run_in_thread.__doc__ = (
        f"``{_public_name(file_class)}.{name}`` of the wrapped file, made async: "
        "the call runs in a worker thread (tether.to_thread.run_sync).\n\n"
        "Cancellation is that of to_thread.run_sync: a checkpoint; if cancelled "
        "before the thread starts the call does not happen, and once it runs it "
        "completes and `Cancelled` is raised at the next checkpoint."
    )
    return run_in_thread


class AsyncIOWrapper(AsyncResource, Generic[Wrapped_co]):
    """An asynchronous file object around a synchronous one.

    Methods that may block (``read``, ``write``, ``readline``, ``seek``,
    ``tell``, ``flush``, ``truncate``...) are async and run in a worker
    thread (`tether.to_thread.run_sync`). Each is a checkpoint and is
    cancellable as that is: cancelled before its thread starts, the call
    does not happen; once running it completes, and `Cancelled` is raised
    at the next checkpoint. Attributes that never block (``name``,
    ``mode``, ``closed``, ``encoding``, ``fileno()``, ``readable()``...)
    stay synchronous. Only the members the wrapped file has are offered.

    ``async for line in f`` iterates over lines; ``async with f`` (or
    ``async with await tether.open_file(...) as f``) closes it on exit.
    """

    def __init__(self, file: Wrapped_co) -> None:
        self._file = file

    @property
    def wrapped(self) -> Wrapped_co:
        """The synchronous file object this wraps."""
        return self._file

    def __repr__(self) -> str:
        return f"<tether async file wrapping {self._file!r}>"

    def __getattr__(self, name: str) -> Any:
        # Reached only when normal lookup failed: a member of the file
        # interface that this file lacks, or a name outside the interface.
        kind = type(self).__name__
        if name in PASSED_THROUGH or name in RUN_IN_THREAD:
            raise AttributeError(
                f"{kind!r} object has no attribute {name!r}: the wrapped "
                f"{type(self._file).__name__} has none"
            )
        raise AttributeError(
            f"{kind!r} object has no attribute {name!r} (only the io file interface "
            "is forwarded; .wrapped is the file itself)"
        )

    def __dir__(self) -> list[str]:
        interface = PASSED_THROUGH | RUN_IN_THREAD
        return sorted(
            name for name in super().__dir__() if name not in interface or hasattr(self._file, name)
        )

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        next_line = await self.readline()
        if not next_line:
            raise StopAsyncIteration
        return next_line

    async def detach(self) -> AsyncIOWrapper[Any]:
        """``detach()`` of the wrapped buffered or text file, made async:
        returns the underlying raw or buffered file, itself wrapped. A
        checkpoint, cancellable as `tether.to_thread.run_sync` is."""
        underlying = await to_thread_run_sync(self._file.detach)  # type: ignore[attr-defined]
        return wrap_file(underlying)

    async def aclose(self) -> None:
        """Close the file in a worker thread (flushing what is buffered).

        The close is shielded from cancellation, so the file is closed even
        when the task is cancelled; the pending cancellation is then raised
        as `Cancelled`. Idempotent, as ``close()`` is.
        """
        with CancelScope(shield=True):
            await to_thread_run_sync(self._file.close)  # type: ignore[attr-defined]
        await checkpoint_if_cancelled()


for _name in PASSED_THROUGH:
    setattr(AsyncIOWrapper, _name, _Passthrough(_name))
for _name in RUN_IN_THREAD:
    setattr(AsyncIOWrapper, _name, _InWorkerThread(_name))
del _name


def wrap_file(file: Wrapped) -> AsyncIOWrapper[Wrapped]:
    """Wrap a synchronous file object in an asynchronous file object
    (see `AsyncIOWrapper`): ``await tether.wrap_file(io.StringIO("x")).read()``.

    Not a checkpoint.

    Raises:
      TypeError: if `file` has no ``close()`` method, or neither ``read()``
        nor ``write()``.
    """
    can_close = callable(getattr(file, "close", None))
    can_transfer = any(callable(getattr(file, verb, None)) for verb in ("read", "write"))
    if not (can_close and can_transfer):
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

    The arguments are `open`'s. A checkpoint, cancellable as
    `tether.to_thread.run_sync` is: if cancelled before the thread starts,
    nothing is opened; once it runs, the file is opened and returned, and
    `Cancelled` is raised at the next checkpoint (``async with`` then
    closes it).

    Raises:
      OSError: as `open` does (``FileNotFoundError``, ``PermissionError``...).
    """
    opening = partial(
        open,
        file,
        mode=mode,
        buffering=buffering,
        encoding=encoding,
        errors=errors,
        newline=newline,
        closefd=closefd,
        opener=opener,
    )
    return wrap_file(await to_thread_run_sync(opening))

"""`tether.Path`: `pathlib` paths whose file-system calls are async.

`Path` is a `pathlib.PurePath`, so everything that only computes on the
path string (``/``, ``parent``, ``name``, ``with_suffix``, comparisons,
hashing, ``os.fspath``) is inherited, synchronous, and returns tether paths.
Every method of `pathlib.Path` that touches the file system (``stat``,
``exists``, ``read_text``, ``mkdir``, ``glob``...) is an async method that
runs the `pathlib` call in a worker thread (`tether.to_thread.run_sync`).

Invariants: a method that returns a path returns one of the caller's class
(a `PosixPath` stays a `PosixPath`); a method that returns an iterator of
paths (``iterdir``, ``glob``, ``rglob``) returns a list, built entirely in
the thread, because an iterator would do blocking I/O each time it is
advanced.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from inspect import cleandoc
from typing import IO, Any, ClassVar, Concatenate, ParamSpec, Self, TypeVar, final

from ._file_io import AsyncIOWrapper, wrap_file
from ._threads import to_thread_run_sync

__all__ = ["Path", "PosixPath", "WindowsPath"]

P = ParamSpec("P")
T = TypeVar("T")
PathT = TypeVar("PathT", bound="Path")

_CANCELLATION_NOTE = (
    "A checkpoint. If cancelled before the worker thread starts, nothing happens; "
    "once the call runs it completes, and `Cancelled` is raised at the next checkpoint."
)


def _describe(wrapper: Callable[..., Any], sync_method: Callable[..., Any], extra: str) -> None:
    name = sync_method.__name__
    wrapper.__name__ = name
    wrapper.__qualname__ = f"Path.{name}"
    wrapper.__module__ = __name__
    parts = [
        f"Like `pathlib.Path.{name}`, but async: the call runs in a worker thread "
        "(tether.to_thread.run_sync).",
        _CANCELLATION_NOTE,
    ]
    if extra:
        parts.append(extra)
    if sync_method.__doc__:
        parts.append(f"pathlib's description:\n\n{cleandoc(sync_method.__doc__)}")
    wrapper.__doc__ = "\n\n".join(parts)


def _threaded(
    sync_method: Callable[Concatenate[pathlib.Path, P], T],
) -> Callable[Concatenate[Path, P], Awaitable[T]]:
    """An async method running ``sync_method`` on the equivalent
    `pathlib.Path` in a worker thread, returning its result unchanged."""

    async def method(self: Path, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await to_thread_run_sync(partial(sync_method, self._sync_path(), *args, **kwargs))

    _describe(method, sync_method, "")
    return method


def _threaded_returning_path(
    sync_method: Callable[Concatenate[pathlib.Path, P], pathlib.Path],
) -> Callable[Concatenate[PathT, P], Awaitable[PathT]]:
    """Like `_threaded`, for a method that returns a path: the result is
    converted to the caller's class."""

    async def method(self: PathT, /, *args: P.args, **kwargs: P.kwargs) -> PathT:
        result = await to_thread_run_sync(partial(sync_method, self._sync_path(), *args, **kwargs))
        return type(self)(result)

    _describe(method, sync_method, "Returns a path of the same class as this one.")
    return method


def _threaded_returning_paths(
    sync_method: Callable[Concatenate[pathlib.Path, P], Iterable[pathlib.Path]],
) -> Callable[Concatenate[PathT, P], Awaitable[list[PathT]]]:
    """Like `_threaded`, for a method that returns an iterator of paths:
    the whole iteration happens in the thread, and a list of paths of the
    caller's class is returned."""

    async def method(self: PathT, /, *args: P.args, **kwargs: P.kwargs) -> list[PathT]:
        cls = type(self)

        def collect() -> list[PathT]:
            return [cls(found) for found in sync_method(self._sync_path(), *args, **kwargs)]

        return await to_thread_run_sync(collect)

    name = sync_method.__name__
    _describe(
        method,
        sync_method,
        f"Returns a list (built in the thread), not an iterator: "
        f"``for entry in await path.{name}(...):``.",
    )
    return method


class Path(pathlib.PurePath):
    """A `pathlib.Path` whose file-system methods are async.

    ``tether.Path("a", "b")`` returns a `PosixPath` or a `WindowsPath`, as
    `pathlib.Path` does. Pure operations (``/``, ``parent``, ``name``,
    ``suffix``, ``with_name``, ``relative_to``, comparisons, ``os.fspath``)
    are synchronous and work with plain `pathlib` paths and strings. Methods
    that touch the file system are async and run in a worker thread: each
    is a checkpoint, cancellable until its thread starts (then the call
    completes and `Cancelled` is raised at the next checkpoint). ``open``
    returns an asynchronous file object (see `tether.open_file`).
    """

    __slots__ = ()

    #: The concrete `pathlib` class that does the work in the thread.
    _sync_class: ClassVar[type[pathlib.Path]]

    def __new__(cls, *args: str | os.PathLike[str]) -> Self:
        if cls is Path:
            cls = WindowsPath if os.name == "nt" else PosixPath  # type: ignore[assignment]
        return super().__new__(cls, *args)

    def __repr__(self) -> str:
        return f"tether.Path({str(self)!r})"

    def _sync_path(self) -> pathlib.Path:
        return self._sync_class(self)

    @classmethod
    async def cwd(cls) -> Self:
        """Like `pathlib.Path.cwd`, but async (runs in a worker thread).
        The current working directory, as a path of this class. A
        checkpoint."""
        return cls(await to_thread_run_sync(os.getcwd))

    @classmethod
    async def home(cls) -> Self:
        """Like `pathlib.Path.home`, but async (runs in a worker thread).
        The user's home directory, as a path of this class. A checkpoint."""
        return cls(await to_thread_run_sync(pathlib.Path.home))

    async def open(
        self,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> AsyncIOWrapper[IO[Any]]:
        """Like `pathlib.Path.open`, but async: opens the file in a worker
        thread and returns an asynchronous file object (as
        `tether.open_file` does). Use ``async with await path.open() as
        f:``. A checkpoint: if cancelled once the thread runs, the file is
        still opened and returned, and `Cancelled` is raised at the next
        checkpoint."""
        opened = await to_thread_run_sync(
            partial(
                pathlib.Path.open, self._sync_path(), mode, buffering, encoding, errors, newline
            )
        )
        return wrap_file(opened)

    def as_uri(self) -> str:
        """The path as a ``file:`` URI (it must be absolute). Not async:
        it touches no file system."""
        return self._sync_path().as_uri()

    stat = _threaded(pathlib.Path.stat)
    lstat = _threaded(pathlib.Path.lstat)
    chmod = _threaded(pathlib.Path.chmod)
    lchmod = _threaded(pathlib.Path.lchmod)
    exists = _threaded(pathlib.Path.exists)
    is_dir = _threaded(pathlib.Path.is_dir)
    is_file = _threaded(pathlib.Path.is_file)
    is_symlink = _threaded(pathlib.Path.is_symlink)
    is_socket = _threaded(pathlib.Path.is_socket)
    is_fifo = _threaded(pathlib.Path.is_fifo)
    is_block_device = _threaded(pathlib.Path.is_block_device)
    is_char_device = _threaded(pathlib.Path.is_char_device)
    if sys.platform != "win32" or sys.version_info >= (3, 12):
        is_mount = _threaded(pathlib.Path.is_mount)
    if sys.version_info >= (3, 12):
        is_junction = _threaded(pathlib.Path.is_junction)
    if sys.platform != "win32":
        owner = _threaded(pathlib.Path.owner)
        group = _threaded(pathlib.Path.group)
    samefile = _threaded(pathlib.Path.samefile)
    mkdir = _threaded(pathlib.Path.mkdir)
    rmdir = _threaded(pathlib.Path.rmdir)
    touch = _threaded(pathlib.Path.touch)
    unlink = _threaded(pathlib.Path.unlink)
    symlink_to = _threaded(pathlib.Path.symlink_to)
    hardlink_to = _threaded(pathlib.Path.hardlink_to)
    if sys.version_info < (3, 12):
        link_to = _threaded(pathlib.Path.link_to)
    read_bytes = _threaded(pathlib.Path.read_bytes)
    read_text = _threaded(pathlib.Path.read_text)
    write_bytes = _threaded(pathlib.Path.write_bytes)
    write_text = _threaded(pathlib.Path.write_text)

    absolute = _threaded_returning_path(pathlib.Path.absolute)
    expanduser = _threaded_returning_path(pathlib.Path.expanduser)
    readlink = _threaded_returning_path(pathlib.Path.readlink)
    rename = _threaded_returning_path(pathlib.Path.rename)
    replace = _threaded_returning_path(pathlib.Path.replace)
    resolve = _threaded_returning_path(pathlib.Path.resolve)

    iterdir = _threaded_returning_paths(pathlib.Path.iterdir)
    glob = _threaded_returning_paths(pathlib.Path.glob)
    rglob = _threaded_returning_paths(pathlib.Path.rglob)


@final
class PosixPath(Path, pathlib.PurePosixPath):
    """A `tether.Path` for POSIX systems (what ``tether.Path(...)`` returns
    there): async file-system methods, see `tether.Path`."""

    __slots__ = ()
    _sync_class: ClassVar[type[pathlib.Path]] = pathlib.PosixPath


@final
class WindowsPath(Path, pathlib.PureWindowsPath):
    """A `tether.Path` for Windows (what ``tether.Path(...)`` returns
    there): async file-system methods, see `tether.Path`. On other systems
    it can be built and manipulated, but its file-system methods fail as
    `pathlib.WindowsPath` does."""

    __slots__ = ()
    _sync_class: ClassVar[type[pathlib.Path]] = pathlib.WindowsPath

"""`tether.Path`: `pathlib` paths whose file-system calls are async.

Behaviour (what the tests pin down):

* ``tether.Path(...)`` builds the flavour of this system (`PosixPath` or
  `WindowsPath`), as `pathlib.Path` does; every tether path is a
  `pathlib.PurePath`, compares and hashes like one, pickles, and its repr is
  ``tether.Path('...')``.
* What only computes on the path's text (``/``, ``parent``, ``name``,
  ``with_suffix``, ``relative_to``, ``joinpath``, ``as_uri``...) is
  synchronous and gives tether paths.
* Every `pathlib.Path` method that needs the operating system (``stat``,
  ``exists``, ``read_text``, ``mkdir``, ``resolve``, ``glob``, ``cwd``...)
  is async and runs in a worker thread through `tether.to_thread.run_sync`:
  a checkpoint, cancellable exactly as that is (cancelled before the thread
  starts, nothing happens; once running, the call completes and `Cancelled`
  is raised at the next checkpoint). Paths in its result are tether paths
  of the caller's class; an iterator result (``iterdir``, ``glob``,
  ``rglob``, ``walk``) is a list, built in the thread, because advancing an
  iterator does blocking I/O. ``open`` gives an async file.

Design:

* pathlib already draws the line this module needs: `pathlib.PurePath`
  only computes, and the public functions and class methods that
  `pathlib.Path` adds on top are there because they need the OS (the file
  system, the current directory, the user database). So a tether path is a
  `PurePath`, and its async methods are exactly those additions, listed
  when this module is imported (`_os_dependent_members`); a later Python's
  new ones come along by themselves. ``open`` is written by hand (it returns
  an async file); the few additions that only compute (`_COMPUTED_ONLY`)
  are offered synchronously.
* They all work one way: the call is made in the thread on the path's
  pathlib twin (`_pathlib_twin`: same text, same flavour), and one rule
  (`_adopt`) turns what pathlib returns into what tether returns.
* mypy cannot see methods made at import time, so a ``TYPE_CHECKING`` block
  in `Path` declares them for it, through `_async_of` whose overloads state
  the `_adopt` rule in types; tests/test_path.py checks that this block and
  the methods made at run time agree.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Concatenate,
    ParamSpec,
    Self,
    TypeAlias,
    TypeVar,
    cast,
    final,
    overload,
)

from ._file_io import AsyncIOWrapper, open_file
from ._threads import to_thread_run_sync

__all__ = ["Path", "PosixPath", "WindowsPath"]

StrPath: TypeAlias = "str | os.PathLike[str]"

#: Members pathlib puts on `pathlib.Path` that only compute (3.13's
#: ``from_uri`` parses a URI; ``as_uri`` is there in 3.14): synchronous.
_COMPUTED_ONLY = frozenset({"from_uri", "as_uri"})

#: Written by hand below: returns an async file.
_WRITTEN_BY_HAND = frozenset({"open"})

_CANCELLATION = (
    "Cancellation is that of tether.to_thread.run_sync: a checkpoint; cancelled "
    "before the worker thread starts, the call does not happen; once running, it "
    "completes and `Cancelled` is raised at the next checkpoint."
)
_RESULT = (
    "The result is pathlib's, except that paths come back as tether paths of this "
    "path's class, and an iterator comes back as a list, built in the thread."
)


def _os_dependent_members() -> dict[str, bool]:
    """The public functions and class methods `pathlib.Path` adds to
    `pathlib.PurePath`, each mapped to whether it is a class method."""
    found = {}
    for name in dir(pathlib.Path):
        if name.startswith("_") or hasattr(pathlib.PurePath, name):
            continue
        member = inspect.getattr_static(pathlib.Path, name)
        if isinstance(member, classmethod):
            found[name] = True
        elif inspect.isfunction(member):
            found[name] = False
        # Anything else (3.14's `info` property) is not a call: left out.
    return found


def _pathlib_class(cls: type) -> type[pathlib.Path]:
    """The concrete pathlib class with the flavour of the tether class `cls`."""
    if issubclass(cls, pathlib.PureWindowsPath):
        return pathlib.WindowsPath
    if issubclass(cls, pathlib.PurePosixPath):
        return pathlib.PosixPath
    return pathlib.Path  # `tether.Path` itself: this system's flavour


def _pathlib_twin(path: Path) -> pathlib.Path:
    # Building a pathlib.WindowsPath on POSIX (or the reverse) raises, so a
    # foreign-flavoured tether path fails as its pathlib counterpart does.
    return _pathlib_class(type(path))(path)


def _adopt(value: object, cls: type[Path]) -> object:
    """What pathlib returned, as tether returns it (in the worker thread)."""
    if isinstance(value, pathlib.PurePath):
        return cls(value)
    if type(value) is tuple:  # a `walk` step; not stat_result, a tuple subclass
        return tuple(_adopt(part, cls) for part in value)
    if isinstance(value, Iterator):
        return [_adopt(item, cls) for item in value]
    return value


def _describe(made: Callable[..., Any], name: str, original: Any, *, offloaded: bool) -> None:
    made.__name__ = name
    made.__qualname__ = f"Path.{name}"
    made.__module__ = __name__
    # inspect.signature() and help() show pathlib's parameters.
    made.__wrapped__ = original  # type: ignore[attr-defined]
    paragraphs = [
        f"Like `pathlib.Path.{name}`"
        + (", but async: it runs in a worker thread." if offloaded else "."),
    ]
    if offloaded:
        paragraphs.append(_CANCELLATION)
    paragraphs.append(_RESULT if offloaded else "Paths come back as tether paths.")
    if original.__doc__:
        paragraphs.append("pathlib's description:\n\n" + inspect.cleandoc(original.__doc__))
    made.__doc__ = "\n\n".join(paragraphs)


def _make_method(name: str, on_class: bool) -> Any:
    """The tether version of pathlib's member `name`."""
    original = getattr(pathlib.Path, name)
    if on_class:
        original = original.__func__

    def call(receiver: Any, args: Any, kwargs: Any) -> object:
        # `receiver` is a tether path, or a tether class for class methods.
        cls = receiver if on_class else type(receiver)
        target = _pathlib_class(cls) if on_class else _pathlib_twin(receiver)
        return _adopt(getattr(target, name)(*args, **kwargs), cls)

    if name in _COMPUTED_ONLY:

        def computed(receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
            return call(receiver, args, kwargs)

        _describe(computed, name, original, offloaded=False)
        return classmethod(computed) if on_class else computed

    async def offloaded(receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
        def in_worker() -> object:
            return call(receiver, args, kwargs)

        in_worker.__name__ = f"Path.{name}"  # the worker thread's name shows it
        return await to_thread_run_sync(in_worker)

    _describe(offloaded, name, original, offloaded=True)
    return classmethod(offloaded) if on_class else offloaded


if TYPE_CHECKING:
    P = ParamSpec("P")
    R = TypeVar("R")
    Receiver = TypeVar("Receiver")
    PathT = TypeVar("PathT", bound="Path")
    WalkStep: TypeAlias = "tuple[pathlib.Path, list[str], list[str]]"

    #: A `pathlib.Path` method, and the async method made from it.
    PathlibMethod: TypeAlias = Callable[Concatenate[pathlib.Path, P], R]
    AsyncMethod: TypeAlias = Callable[Concatenate[Receiver, P], Coroutine[Any, Any, R]]

    # The `_adopt` rule, in types.
    @overload
    def _async_of(original: PathlibMethod[P, pathlib.Path]) -> AsyncMethod[PathT, P, PathT]: ...
    @overload
    def _async_of(
        original: PathlibMethod[P, Iterator[WalkStep]],
    ) -> AsyncMethod[PathT, P, list[tuple[PathT, list[str], list[str]]]]: ...
    @overload
    def _async_of(
        original: PathlibMethod[P, Iterator[pathlib.Path]],
    ) -> AsyncMethod[PathT, P, list[PathT]]: ...
    @overload
    def _async_of(original: PathlibMethod[P, R]) -> AsyncMethod[Path, P, R]: ...
    def _async_of(original: Callable[..., Any]) -> Any:
        # Never called: mypy wants an implementation after overloads.
        raise NotImplementedError


class Path(pathlib.PurePath):
    """A `pathlib.Path` whose file-system methods are async.

    ``tether.Path("a", "b")`` returns a `PosixPath` or a `WindowsPath`, as
    `pathlib.Path` does. Pure operations (``/``, ``parent``, ``name``,
    ``suffix``, ``with_name``, ``relative_to``, comparisons, ``os.fspath``)
    are synchronous and work with plain `pathlib` paths and strings.

    Methods that need the operating system (``exists``, ``stat``,
    ``read_text``, ``mkdir``, ``rename``, ``resolve``, ``iterdir``,
    ``glob``, ``cwd``...) are async: each runs pathlib's method in a worker
    thread and is cancellable as `tether.to_thread.run_sync` is (a
    checkpoint; cancelled before the thread starts, nothing happens; once
    running, the call completes and `Cancelled` is raised at the next
    checkpoint). Those returning paths return tether paths of the same
    class, and ``iterdir``, ``glob``, ``rglob`` and ``walk`` return lists.
    ``open`` returns an asynchronous file object (see `tether.open_file`).
    """

    __slots__ = ()

    def __new__(cls, *args: StrPath) -> Self:
        # `tether.Path` itself only picks a flavour, as `pathlib.Path` does.
        flavoured = cast("type[Self]", _THIS_SYSTEM) if cls is Path else cls
        return super().__new__(flavoured, *args)

    def __repr__(self) -> str:
        return f"tether.Path({str(self)!r})"

    async def open(
        self,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> AsyncIOWrapper[IO[Any]]:
        """Like `pathlib.Path.open`, but async: opens the file in a worker
        thread and returns an asynchronous file object, as
        `tether.open_file` does (use ``async with await path.open() as f:``).

        Cancellation is that of `tether.to_thread.run_sync`: a checkpoint;
        cancelled before the thread starts, nothing is opened; once running,
        the file is opened and returned, and `Cancelled` is raised at the
        next checkpoint.
        """
        return await open_file(_pathlib_twin(self), mode, buffering, encoding, errors, newline)

    if TYPE_CHECKING:
        # For mypy only: the methods `_install` makes at run time. Which
        # pathlib has, per Python version, is typeshed's (and pathlib's) data.
        @classmethod
        async def cwd(cls) -> Self: ...
        @classmethod
        async def home(cls) -> Self: ...

        absolute = _async_of(pathlib.Path.absolute)
        chmod = _async_of(pathlib.Path.chmod)
        exists = _async_of(pathlib.Path.exists)
        expanduser = _async_of(pathlib.Path.expanduser)
        glob = _async_of(pathlib.Path.glob)
        group = _async_of(pathlib.Path.group)
        hardlink_to = _async_of(pathlib.Path.hardlink_to)
        is_block_device = _async_of(pathlib.Path.is_block_device)
        is_char_device = _async_of(pathlib.Path.is_char_device)
        is_dir = _async_of(pathlib.Path.is_dir)
        is_fifo = _async_of(pathlib.Path.is_fifo)
        is_file = _async_of(pathlib.Path.is_file)
        is_mount = _async_of(pathlib.Path.is_mount)
        is_socket = _async_of(pathlib.Path.is_socket)
        is_symlink = _async_of(pathlib.Path.is_symlink)
        iterdir = _async_of(pathlib.Path.iterdir)
        lchmod = _async_of(pathlib.Path.lchmod)
        lstat = _async_of(pathlib.Path.lstat)
        mkdir = _async_of(pathlib.Path.mkdir)
        owner = _async_of(pathlib.Path.owner)
        read_bytes = _async_of(pathlib.Path.read_bytes)
        read_text = _async_of(pathlib.Path.read_text)
        readlink = _async_of(pathlib.Path.readlink)
        rename = _async_of(pathlib.Path.rename)
        replace = _async_of(pathlib.Path.replace)
        resolve = _async_of(pathlib.Path.resolve)
        rglob = _async_of(pathlib.Path.rglob)
        rmdir = _async_of(pathlib.Path.rmdir)
        samefile = _async_of(pathlib.Path.samefile)
        stat = _async_of(pathlib.Path.stat)
        symlink_to = _async_of(pathlib.Path.symlink_to)
        touch = _async_of(pathlib.Path.touch)
        unlink = _async_of(pathlib.Path.unlink)
        write_bytes = _async_of(pathlib.Path.write_bytes)
        write_text = _async_of(pathlib.Path.write_text)
        if sys.version_info < (3, 12):
            link_to = _async_of(pathlib.Path.link_to)
        else:
            is_junction = _async_of(pathlib.Path.is_junction)
            walk = _async_of(pathlib.Path.walk)
        if sys.version_info >= (3, 13):

            @classmethod
            def from_uri(cls, uri: str) -> Self: ...


def _install(cls: type[Path]) -> None:
    for name, on_class in _os_dependent_members().items():
        if name not in _WRITTEN_BY_HAND:
            setattr(cls, name, _make_method(name, on_class))


_install(Path)


@final
class PosixPath(Path, pathlib.PurePosixPath):
    """A `tether.Path` for POSIX systems (what ``tether.Path(...)`` returns
    there): async file-system methods, see `tether.Path`."""

    __slots__ = ()


@final
class WindowsPath(Path, pathlib.PureWindowsPath):
    """A `tether.Path` for Windows (what ``tether.Path(...)`` returns
    there): async file-system methods, see `tether.Path`. On other systems
    it can be built and manipulated, but its file-system methods fail as
    `pathlib.WindowsPath` does."""

    __slots__ = ()


_THIS_SYSTEM: type[Path] = WindowsPath if os.name == "nt" else PosixPath

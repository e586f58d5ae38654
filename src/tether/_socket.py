"""Socket objects for `tether.socket`: the standard library's sockets with
async methods for everything that can block, the functions that make them
(`socket`, `socketpair`, `fromfd`, `from_stdlib_socket`) and the per-run
hook that lets tests fake them (`set_custom_socket_factory`).

`SocketType` is the public interface (and the base class test doubles
subclass); `_SocketType` implements it over a `socket.socket` that it keeps
in non-blocking mode for its whole life. Each blocking operation first tries
the system call; only if that would block (`BlockingIOError`) does the task
wait for the socket to become readable or writable, then try again. The
``recv*`` and ``send*`` methods are that one pattern, made per system call
by `_nonblocking`.

Invariants:

- Every async method is a checkpoint, whether the call completed at once,
  waited, or failed: a cancel point before the system call (so a cancelled
  task never consumes data it will not return) and a schedule point after.
- Closing a socket (`close`, leaving ``with``) wakes every task waiting on
  it with `ClosedResourceError`.
- A cancelled `connect` closes the socket: a half-made connection cannot be
  taken back, so the socket is unusable anyway.
- The wrapped socket stays non-blocking; `setblocking(True)` is refused.
"""

from __future__ import annotations

import builtins
import inspect
import os
import select
import socket as _stdlib_socket
import sys
from collections.abc import Callable, Coroutine, Iterable
from socket import AddressFamily, SocketKind
from types import TracebackType
from typing import Any, Literal, Self, SupportsIndex, TypeAlias, cast, overload

from ._core import (
    Cancelled,
    RunVar,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    in_tether_run,
    notify_closing,
    wait_readable,
    wait_writable,
)
from ._socket_names import Address, resolve_address
from ._threads import to_thread_run_sync
from .abc import SocketFactory

#: What `_nonblocking` makes: an async method taking any arguments.
_AsyncMethod: TypeAlias = Callable[..., Coroutine[Any, Any, Any]]

#: What `listen()` uses when no backlog is given (as the standard library).
DEFAULT_LISTEN_BACKLOG = min(_stdlib_socket.SOMAXCONN, 128)

_HAS_AF_UNIX = hasattr(_stdlib_socket, "AF_UNIX")

_socket_factory: RunVar[SocketFactory | None] = RunVar("tether.socket socket factory", None)


def set_custom_socket_factory(socket_factory: SocketFactory | None) -> SocketFactory | None:
    """Make `tether.socket.socket` (without ``fileno``) ask `socket_factory`
    for new sockets, for the rest of the current `tether.run`.

    Meant for tests that fake the network: everything in tether that creates
    sockets (`open_tcp_stream`, `open_tcp_listeners`, ...) goes through
    `socket`, so it all follows. `socketpair`, `fromfd` and
    `from_stdlib_socket` are not affected. Pass ``None`` to go back to real
    sockets. Not a checkpoint.

    Returns the previous custom factory, or ``None``.

    Raises:
      RuntimeError: outside `tether.run`.
    """
    previous = _socket_factory.get()
    _socket_factory.set(socket_factory)
    return previous


def setsockopt_arguments(
    value: int | bytes | None, length: int | None, *, names: tuple[str, str]
) -> tuple[int | bytes] | tuple[None, int]:
    """What follows ``level, option`` in a call of the standard library's
    ``setsockopt``: ``(value,)``, or ``(None, length)``. `names` are the
    caller's names for the option and length parameters, for the error
    message.

    Raises:
      TypeError: both or neither of `value` and `length` were given.
    """
    option_name, length_name = names
    a_length = f"{'an' if length_name[0] in 'aeiou' else 'a'} {length_name}"
    usage = f"setsockopt(level, {option_name}, None, {length_name})"
    if length is None:
        if value is None:
            raise TypeError(f"invalid value for argument 'value': None needs {a_length} ({usage})")
        return (value,)
    if value is not None:
        raise TypeError(
            f"invalid value for argument 'value': {value!r}; with {a_length} the "
            f"value must be None ({usage})"
        )
    return (None, length)


# ---------------------------------------------------------------------------
# Constructors


def from_stdlib_socket(sock: _stdlib_socket.socket) -> SocketType:
    """Wrap a standard library socket in a tether socket. The tether socket
    owns it from now on (closing one closes the other) and puts it in
    non-blocking mode. Not a checkpoint.

    Raises:
      TypeError: `sock` is not exactly a `socket.socket` (a subclass such
        as `ssl.SSLSocket` has its own I/O that cannot be driven this way).
    """
    return _SocketType(sock)


def _sniff_sockopts(
    family: AddressFamily | int, type: SocketKind | int, proto: int, fileno: int
) -> tuple[AddressFamily | int, SocketKind | int, int]:
    """On Linux, ask the kernel what the socket behind `fileno` really is,
    so that a socket rebuilt from a bare fd does not report the defaults
    (AF_INET, SOCK_STREAM) whatever it is. Elsewhere, the given values."""
    if sys.platform != "linux":
        return family, type, proto
    probe = _stdlib_socket.socket(family, type, proto, fileno=fileno)
    try:
        family = probe.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_DOMAIN)
        proto = probe.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_PROTOCOL)
        type = probe.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_TYPE)
    finally:
        # The fd is the caller's: only borrowed for the probe.
        probe.detach()
    return family, type, proto


def fromfd(
    fd: SupportsIndex,
    family: AddressFamily | int = _stdlib_socket.AF_INET,
    type: SocketKind | int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
) -> SocketType:
    """A tether socket on a duplicate of the file descriptor `fd`, like
    `socket.fromfd` (`fd` itself stays open and yours). On Linux the
    family, type and protocol are read from the descriptor; the arguments
    are used elsewhere. Not a checkpoint.

    Raises:
      OSError: `fd` is not a valid socket descriptor.
    """
    family, type, proto = _sniff_sockopts(family, type, proto, fd.__index__())
    return from_stdlib_socket(_stdlib_socket.fromfd(fd, family, type, proto))


def socketpair(
    family: AddressFamily | int | None = None,
    type: SocketKind | int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
) -> tuple[SocketType, SocketType]:
    """A pair of connected tether sockets, like `socket.socketpair`
    (AF_UNIX by default where it exists). Not a checkpoint; never uses the
    custom socket factory."""
    left, right = _stdlib_socket.socketpair(family, type, proto)
    return from_stdlib_socket(left), from_stdlib_socket(right)


def socket(
    family: AddressFamily | int = _stdlib_socket.AF_INET,
    type: SocketKind | int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
    fileno: int | None = None,
) -> SocketType:
    """A new tether socket, like `socket.socket`.

    Without `fileno`, the custom socket factory makes it if one is set
    (`set_custom_socket_factory`). With `fileno`, the socket wraps that
    descriptor (and owns it); on Linux its family, type and protocol are
    read from the descriptor. Not a checkpoint.

    Raises:
      OSError: as `socket.socket` (e.g. ``EAFNOSUPPORT`` for a family the
        system lacks, ``EMFILE`` when out of file descriptors).
    """
    if fileno is None:
        factory = _socket_factory.get() if in_tether_run() else None
        if factory is not None:
            # A factory may return any socket-like object (tests return
            # fakes); it is the factory's promise that it behaves.
            return cast(SocketType, factory.socket(family, type, proto))
    else:
        family, type, proto = _sniff_sockopts(family, type, proto, fileno)
    return from_stdlib_socket(_stdlib_socket.socket(family, type, proto, fileno))


# ---------------------------------------------------------------------------
# The interface


class SocketType:
    """A tether socket: the methods of `socket.socket`, with the blocking
    ones (`accept`, `connect`, `bind`, `recv*`, `send*`) made async.

    Create one with `tether.socket.socket`, `socketpair`, `fromfd` or
    `from_stdlib_socket`; this class itself cannot be instantiated. Test
    doubles subclass it and override what they need (every method here
    raises `NotImplementedError`).

    Every async method is a checkpoint. Cancelling one that is waiting
    leaves the socket as it was (no data is lost or half-sent by the
    cancelled call), except `connect`, which closes the socket. Closing the
    socket while a task waits on it wakes that task with
    `ClosedResourceError`. Two tasks may not wait to read (or to write) on
    the same socket at once: the second gets `BusyResourceError`.

    Not provided, on purpose: ``sendall`` (use `tether.SocketStream`),
    ``makefile``, timeouts (use cancel scopes), blocking mode.
    """

    def __init__(self) -> None:
        super().__init__()
        if type(self) is SocketType:
            raise TypeError(
                "SocketType is an interface; create sockets with tether.socket.socket(), "
                "socketpair(), fromfd() or from_stdlib_socket()"
            )

    # -- plain forwards to socket.socket (not checkpoints) -------------------

    @property
    def family(self) -> AddressFamily:
        """The address family (`socket.AF_INET`, ...)."""
        raise NotImplementedError

    @property
    def type(self) -> SocketKind:
        """The socket type (`socket.SOCK_STREAM`, ...)."""
        raise NotImplementedError

    @property
    def proto(self) -> int:
        """The protocol number."""
        raise NotImplementedError

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        """Whether `shutdown` has closed the sending side (SHUT_WR or
        SHUT_RDWR)."""
        raise NotImplementedError

    def fileno(self) -> int:
        """The file descriptor, or -1 once closed or detached."""
        raise NotImplementedError

    def detach(self) -> int:
        """Give up the file descriptor without closing it and return it;
        the socket then acts closed. Tasks waiting on it wake with
        `ClosedResourceError`, as for `close`. Not a checkpoint."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the socket. Idempotent. Tasks waiting on it wake with
        `ClosedResourceError`. Not a checkpoint."""
        raise NotImplementedError

    def dup(self) -> SocketType:
        """A new tether socket on a duplicate of the file descriptor."""
        raise NotImplementedError

    def getpeername(self) -> Address:
        """The remote address, as `socket.socket.getpeername`."""
        raise NotImplementedError

    def getsockname(self) -> Address:
        """The local address, as `socket.socket.getsockname`."""
        raise NotImplementedError

    @overload
    def getsockopt(self, level: int, optname: int) -> int: ...

    @overload
    def getsockopt(self, level: int, optname: int, buflen: int) -> bytes: ...

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """Read a socket option, as `socket.socket.getsockopt`."""
        raise NotImplementedError

    @overload
    def setsockopt(self, level: int, optname: int, value: int | bytes) -> None: ...

    @overload
    def setsockopt(self, level: int, optname: int, value: None, optlen: int) -> None: ...

    def setsockopt(
        self, level: int, optname: int, value: int | bytes | None, optlen: int | None = None
    ) -> None:
        """Set a socket option, as `socket.socket.setsockopt`: either a
        `value`, or ``None`` and an `optlen`.

        Raises:
          TypeError: both or neither of `value` and `optlen` given.
        """
        raise NotImplementedError

    def listen(self, backlog: int = DEFAULT_LISTEN_BACKLOG) -> None:
        """Start accepting connections, as `socket.socket.listen`."""
        raise NotImplementedError

    def shutdown(self, flag: int) -> None:
        """Shut down one or both directions (`socket.SHUT_RD`, `SHUT_WR`,
        `SHUT_RDWR`), as `socket.socket.shutdown`."""
        raise NotImplementedError

    def get_inheritable(self) -> bool:
        """Whether child processes inherit the descriptor."""
        raise NotImplementedError

    def set_inheritable(self, inheritable: bool) -> None:
        """Set whether child processes inherit the descriptor."""
        raise NotImplementedError

    def setblocking(self, flag: bool) -> None:
        """Accepts only ``False``: a tether socket is always non-blocking.

        Raises:
          ValueError: for ``True``.
        """
        raise NotImplementedError

    def is_readable(self) -> bool:
        """Whether a read would not block right now (data, EOF, an error, or
        a connection waiting to be accepted). Not a checkpoint."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- async operations ----------------------------------------------------

    async def wait_writable(self) -> None:
        """Wait until the socket is writable (`tether.lowlevel.wait_writable`).
        A checkpoint; cancellable."""
        raise NotImplementedError

    async def bind(self, address: Address) -> None:
        """Bind to `address`, resolving a host name first (so this is
        async). For AF_UNIX paths the bind runs in a worker thread, since it
        touches the filesystem. A checkpoint.

        Raises:
          OSError: as `socket.socket.bind`; `socket.gaierror` if the host
            does not resolve.
        """
        raise NotImplementedError

    async def connect(self, address: Address) -> None:
        """Connect to `address`, resolving a host name first. A checkpoint.

        If cancelled, the socket is closed: a connection attempt cannot be
        taken back half-way.

        Raises:
          OSError: the connection failed; the message names the address.
        """
        raise NotImplementedError

    async def accept(self) -> tuple[SocketType, Address]:
        """Wait for an incoming connection and return ``(socket, address)``.
        A checkpoint; cancelling it accepts nothing."""
        raise NotImplementedError

    async def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """Receive up to `bufsize` bytes (``b""`` at end of stream). A
        checkpoint; a cancelled call receives nothing."""
        raise NotImplementedError

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into `buffer`; return the number of bytes received."""
        raise NotImplementedError

    async def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Address]:
        """Receive a datagram: ``(data, sender address)``."""
        raise NotImplementedError

    async def recvfrom_into(
        self, buffer: Any, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, Address]:
        """Receive a datagram into `buffer`: ``(nbytes, sender address)``."""
        raise NotImplementedError

    async def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Address]:
        """Receive data and ancillary data, as `socket.socket.recvmsg`."""
        raise NotImplementedError

    async def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Address]:
        """Receive into `buffers`, as `socket.socket.recvmsg_into`."""
        raise NotImplementedError

    async def send(self, data: Any, flags: int = 0, /) -> int:
        """Send some of `data`; return how many bytes were sent (maybe fewer
        than ``len(data)``). A checkpoint; a cancelled call sends nothing."""
        raise NotImplementedError

    async def sendto(self, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``:
        send a datagram, resolving a host name in `address` first."""
        raise NotImplementedError

    async def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Address | None = None,
        /,
    ) -> int:
        """Send data and ancillary data, as `socket.socket.sendmsg`,
        resolving a host name in `address` first."""
        raise NotImplementedError


# ---------------------------------------------------------------------------
# The implementation over socket.socket


def _nonblocking(
    name: str, waits_until: Literal["readable", "writable"], *, public: bool = True
) -> _AsyncMethod:
    """The method of `_SocketType` that calls ``socket.socket.<name>`` on
    its non-blocking socket, waiting until the socket is readable or
    writable (`waits_until`) each time the call would block.

    It is a checkpoint: a cancel point before the first try, a schedule
    point after a try that did not wait. The first try comes before any
    wait, for correct errors: a socket that can never become ready (accept
    before listen) must fail at once, not wait forever.

    The method takes positional arguments only (a ``**kwargs`` would cost
    every call a dict); methods whose interface takes keywords, or that
    have work to do around the call, call a private one (``public=False``)
    from a ``def`` of their own. A public one shows the interface's
    signature.

    A function per operation, made here, rather than one helper that every
    method awaits: such a helper costs each call a second coroutine and
    frame, about a sixth of a ``send`` plus ``recv`` that do not wait (a
    quick measurement: `benchmarks/` has no row for direct socket calls,
    as `SocketStream` makes its own).
    """
    # None where the platform lacks the call: the method is removed after the class.
    operation: Any = getattr(_stdlib_socket.socket, name, None)
    wait = wait_readable if waits_until == "readable" else wait_writable

    async def method(self: _SocketType, *args: Any) -> Any:
        sock = self._sock
        await checkpoint_if_cancelled()
        try:
            result = operation(sock, *args)
        except BlockingIOError:
            pass
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        else:
            await cancel_shielded_checkpoint()
            return result
        while True:
            # The fd number, which the kernel takes without a lookup: the
            # socket was open at the failed call just before.
            await wait(sock.fileno())
            try:
                return operation(sock, *args)
            except BlockingIOError:
                # Another reader took the data first, or a spurious wakeup.
                pass

    method.__name__ = name
    # help() and inspect.getdoc() find the interface's docstring through it.
    method.__qualname__ = f"_SocketType.{name}"
    if public:
        # The interface's parameters rather than ``*args``, for help() and
        # inspect.signature() (which read ``__signature__``; the type
        # stubs do not declare it).
        signature = inspect.signature(getattr(SocketType, name))
        method.__signature__ = signature  # type: ignore[attr-defined]
    return method


class _SocketType(SocketType):
    def __init__(self, sock: _stdlib_socket.socket) -> None:
        if type(sock) is not _stdlib_socket.socket:
            raise TypeError(
                f"expected a socket.socket, not {type(sock).__name__!r}: subclasses "
                "(such as ssl.SSLSocket) do their own I/O and cannot be wrapped"
            )
        self._sock = sock
        self._sock.setblocking(False)
        self._did_shutdown_SHUT_WR = False

    def __repr__(self) -> str:
        return repr(self._sock).replace("socket.socket", "tether.socket.socket", 1)

    @property
    def family(self) -> AddressFamily:
        return self._sock.family

    @property
    def type(self) -> SocketKind:
        return self._sock.type

    @property
    def proto(self) -> int:
        return self._sock.proto

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        return self._did_shutdown_SHUT_WR

    def fileno(self) -> int:
        return self._sock.fileno()

    def detach(self) -> int:
        if self._sock.fileno() != -1 and in_tether_run():
            # The fd stops being ours: whoever waits on it must not be
            # woken by (or miss) what its next owner does with it.
            notify_closing(self._sock)
        return self._sock.detach()

    def close(self) -> None:
        if self._sock.fileno() != -1:
            # Outside a run nobody can be waiting on it.
            if in_tether_run():
                notify_closing(self._sock)
            self._sock.close()

    def dup(self) -> SocketType:
        return _SocketType(self._sock.dup())

    def getpeername(self) -> Address:
        return self._sock.getpeername()

    def getsockname(self) -> Address:
        return self._sock.getsockname()

    @overload
    def getsockopt(self, level: int, optname: int) -> int: ...

    @overload
    def getsockopt(self, level: int, optname: int, buflen: int) -> bytes: ...

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        if buflen is None:
            return self._sock.getsockopt(level, optname)
        return self._sock.getsockopt(level, optname, buflen)

    @overload
    def setsockopt(self, level: int, optname: int, value: int | bytes) -> None: ...

    @overload
    def setsockopt(self, level: int, optname: int, value: None, optlen: int) -> None: ...

    def setsockopt(
        self, level: int, optname: int, value: int | bytes | None, optlen: int | None = None
    ) -> None:
        self._sock.setsockopt(
            level, optname, *setsockopt_arguments(value, optlen, names=("optname", "optlen"))
        )

    def listen(self, backlog: int = DEFAULT_LISTEN_BACKLOG) -> None:
        self._sock.listen(backlog)

    def shutdown(self, flag: int) -> None:
        self._sock.shutdown(flag)
        # Recorded only once the call succeeded.
        if flag in (_stdlib_socket.SHUT_WR, _stdlib_socket.SHUT_RDWR):
            self._did_shutdown_SHUT_WR = True

    def get_inheritable(self) -> bool:
        return self._sock.get_inheritable()

    def set_inheritable(self, inheritable: bool) -> None:
        self._sock.set_inheritable(inheritable)

    def setblocking(self, flag: bool) -> None:
        if flag:
            raise ValueError(
                "a tether socket is always non-blocking (its async methods wait "
                "without blocking the run); to get a blocking socket, take the fd "
                "with detach() and build a socket.socket(fileno=fd) from it"
            )

    def is_readable(self) -> bool:
        if sys.platform == "win32":
            readable, _, _ = select.select([self._sock], [], [], 0)
            return bool(readable)
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        return bool(poller.poll(0))

    async def _resolve(self, address: Address, *, local: bool) -> Address:
        v6only = False
        if self.family == _stdlib_socket.AF_INET6:
            v6only = bool(
                self._sock.getsockopt(_stdlib_socket.IPPROTO_IPV6, _stdlib_socket.IPV6_V6ONLY)
            )
        return await resolve_address(
            address,
            family=self.family,
            type=self.type,
            proto=self.proto,
            ipv6_v6only=v6only,
            local=local,
        )

    async def wait_writable(self) -> None:
        await wait_writable(self._sock)

    async def bind(self, address: Address) -> None:
        address = await self._resolve(address, local=True)
        is_unix = _HAS_AF_UNIX and self.family == _stdlib_socket.AF_UNIX
        if is_unix and address[:1] not in ("\0", b"\0"):
            # A filesystem path: bind walks directories, which can block.
            await to_thread_run_sync(self._sock.bind, address)
            return
        # POSIX allows bind to complete asynchronously like connect, but no
        # system does that for the families used here.
        await checkpoint()
        self._sock.bind(address)

    async def connect(self, address: Address) -> None:
        try:
            address = await self._resolve(address, local=False)
            await checkpoint_if_cancelled()
            try:
                self._sock.connect(address)
            except BlockingIOError:
                # In progress: the socket becomes writable once it is done.
                pass
            except OSError as exc:
                await cancel_shielded_checkpoint()
                raise OSError(
                    exc.errno, f"Error connecting to {address!r}: {exc.strerror}"
                ) from exc
            except BaseException:
                await cancel_shielded_checkpoint()
                raise
            else:
                await cancel_shielded_checkpoint()
                return
            await wait_writable(self._sock)
        except Cancelled:
            # The attempt may still complete in the kernel: a socket whose
            # state nobody knows is better closed than handed back.
            self.close()
            raise
        error = self._sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ERROR)
        if error:
            raise OSError(error, f"Error connecting to {address!r}: {os.strerror(error)}")

    # The I/O calls, one method each, all made by `_nonblocking` (see there).

    recv = _nonblocking("recv", "readable")
    recvfrom = _nonblocking("recvfrom", "readable")
    recvmsg = _nonblocking("recvmsg", "readable")
    recvmsg_into = _nonblocking("recvmsg_into", "readable")
    send = _nonblocking("send", "writable")
    # The calls whose public method takes keywords, or has work to do
    # before or after the call.
    _recv_into = _nonblocking("recv_into", "readable", public=False)
    _recvfrom_into = _nonblocking("recvfrom_into", "readable", public=False)
    _accept = _nonblocking("accept", "readable", public=False)
    _sendto = _nonblocking("sendto", "writable", public=False)
    _sendmsg = _nonblocking("sendmsg", "writable", public=False)

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        received: int = await self._recv_into(buffer, nbytes, flags)
        return received

    async def recvfrom_into(
        self, buffer: Any, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, Address]:
        result: tuple[int, Address] = await self._recvfrom_into(buffer, nbytes, flags)
        return result

    async def accept(self) -> tuple[SocketType, Address]:
        sock, address = await self._accept()
        return from_stdlib_socket(sock), address

    async def sendto(self, *args: Any) -> int:
        if len(args) not in (2, 3):
            raise TypeError(
                f"sendto takes (data, address) or (data, flags, address), got {len(args)} arguments"
            )
        address = await self._resolve(args[-1], local=False)
        result: int = await self._sendto(*args[:-1], address)
        return result

    async def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Address | None = None,
        /,
    ) -> int:
        result: int
        if address is None:
            result = await self._sendmsg(buffers, ancdata, flags)
        else:
            address = await self._resolve(address, local=False)
            result = await self._sendmsg(buffers, ancdata, flags, address)
        return result


# Platforms without these calls (Windows) do not get the methods, so that
# hasattr() tells the truth.
for _name in ("recvmsg", "recvmsg_into", "sendmsg"):
    if not hasattr(_stdlib_socket.socket, _name):  # pragma: no cover
        delattr(_SocketType, _name)
        delattr(SocketType, _name)

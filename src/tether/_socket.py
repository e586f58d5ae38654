"""tether's socket objects: the standard library's sockets, with every
operation that can block turned into an async checkpoint, plus the
functions that make them (`socket`, `socketpair`, `fromfd`,
`from_stdlib_socket`) and the per-run hook through which tests supply fake
ones (`set_custom_socket_factory`).

What the module promises
------------------------
- Every async method is a checkpoint whichever way it ends (at once,
  after waiting, or with an error): it is cancellable before it touches
  the socket, so a cancelled call has received or sent nothing, and it
  lets other tasks run before it returns.
- A socket closed (`close`, leaving ``with``) or detached (`detach`) while
  tasks wait on it wakes them with `ClosedResourceError`: the descriptor
  is no longer tether's to watch.
- A cancelled `connect` closes the socket: the system may still complete
  the half-made connection, and a socket in an unknown state is of no use.
- The standard library socket inside is non-blocking for its whole life;
  `setblocking(True)` is refused.

How it is built
---------------
`SocketType` is the interface: every method, typed and documented, and
each one raises `NotImplementedError` naming the class that lacks it (test
doubles subclass it and override what they use). `_SocketType` is the one
real implementation, over a `socket.socket` kept in ``_sock``. It spells
out as little as it can:

- Calls that cannot block are forwarded by `_forwarded` (a method that
  calls the same method of ``_sock``) and `_read_through` (a property);
  they keep the interface's documentation.
- Each call that can block (``recv*``, ``send*``, ``accept``) is one
  method made by `_waiting_call`: try the system call; only if it would
  block, wait until the descriptor is ready and try again. The pattern is
  generated per call, not shared as a helper coroutine, because a helper
  would cost every call a second coroutine and frame; a ``recv`` or
  ``send`` that succeeds at once passes through the run loop exactly once
  (its schedule point).
- Addresses are normalised (names resolved, the first answer taken) by
  `tether._socket_names.resolve_address` before ``bind``, ``connect``,
  ``sendto`` and ``sendmsg``.
- ``connect`` uses ``connect_ex``: an error number instead of an
  exception distinguishes "in progress" (wait until writable, then read
  ``SO_ERROR``) from an immediate failure without try/except ladders.
"""

from __future__ import annotations

import errno
import inspect
import os
import select
import socket as _stdlib_socket
import sys
from collections.abc import Callable, Coroutine, Iterable
from socket import AF_INET, SOCK_STREAM, AddressFamily, SocketKind
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

#: The backlog `listen()` uses when given none (the standard library's own
#: default).
DEFAULT_LISTEN_BACKLOG = min(_stdlib_socket.SOMAXCONN, 128)

#: Ancillary data as ``recvmsg`` returns it: (level, type, data) triples.
Ancillary: TypeAlias = list[tuple[int, int, bytes]]

#: What the made methods are: async, taking positional arguments.
_AsyncMethod: TypeAlias = Callable[..., Coroutine[Any, Any, Any]]

# connect_ex answers that mean "under way, the socket turns writable when it
# is done". EINTR too: POSIX lets an interrupted connect go on by itself.
_CONNECT_UNDER_WAY = frozenset(
    {errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EALREADY, errno.EINTR}
)

_factory_of_this_run: RunVar[SocketFactory | None] = RunVar(
    "tether.socket custom socket factory", None
)


def set_custom_socket_factory(socket_factory: SocketFactory | None) -> SocketFactory | None:
    """Have `tether.socket.socket` (when called without ``fileno``) make
    its sockets with `socket_factory` until the current `tether.run` ends.

    For tests that fake the network: tether creates all its sockets
    (`open_tcp_stream`, `open_tcp_listeners`, ...) through
    `tether.socket.socket`, so they all use the factory. `socketpair`,
    `fromfd` and `from_stdlib_socket` ignore it. ``None`` restores real
    sockets. Not a checkpoint.

    Returns the factory that was in place before, or ``None``.

    Raises:
      RuntimeError: called outside `tether.run`.
    """
    before = _factory_of_this_run.get()
    _factory_of_this_run.set(socket_factory)
    return before


def setsockopt_arguments(
    value: int | bytes | None, length: int | None, *, names: tuple[str, str]
) -> tuple[int | bytes] | tuple[None, int]:
    """The arguments after ``level, option`` for the standard library's
    ``setsockopt``: ``(value,)`` or ``(None, length)``, checked. `names`
    are what the caller calls its option and length parameters, for the
    message.

    Raises:
      TypeError: `value` and `length` both given, or neither.
    """
    if (value is None) == (length is None):
        option, length_name = names
        article = "an" if length_name[:1] in ("a", "e", "i", "o", "u") else "a"
        with_length = f"{article} {length_name}"
        usage = f"setsockopt(level, {option}, None, {length_name})"
        # The words up to the colon are what trio's tests match.
        problem = "invalid value for argument 'value'"
        if value is None:
            raise TypeError(f"{problem}: None needs {with_length} ({usage})")
        raise TypeError(
            f"{problem}: {value!r}; with {with_length} the value must be None ({usage})"
        )
    if length is None:
        return (cast(int | bytes, value),)
    return (None, length)


# ---------------------------------------------------------------------------
# Making sockets


def from_stdlib_socket(sock: _stdlib_socket.socket) -> SocketType:
    """A tether socket over the standard library socket `sock`, which it
    owns from then on (closing either closes both) and switches to
    non-blocking mode. Not a checkpoint.

    Raises:
      TypeError: `sock` is not exactly a `socket.socket`: a subclass such
        as `ssl.SSLSocket` does I/O of its own that tether cannot drive.
    """
    if type(sock) is not _stdlib_socket.socket:
        raise TypeError(
            f"expected a socket.socket, not {type(sock).__name__!r}: subclasses "
            "(such as ssl.SSLSocket) do their own I/O and cannot be wrapped"
        )
    return _SocketType(sock)


def _adopt_descriptor(
    descriptor: int, family: AddressFamily | int, kind: SocketKind | int, proto: int
) -> _stdlib_socket.socket:
    """A standard library socket that owns `descriptor`, with the family,
    type and protocol the descriptor really has where the system can say
    (the standard library asks it when none are given), else the given
    ones. Without this, a socket made from a bare descriptor would claim
    the defaults (AF_INET, SOCK_STREAM) whatever it is."""
    try:
        return _stdlib_socket.socket(fileno=descriptor)
    except OSError as exc:
        if exc.errno in (errno.ENOTSOCK, errno.EBADF):
            # Not a socket at all: the given values would not make it one.
            raise
        return _stdlib_socket.socket(family, kind, proto, descriptor)


def fromfd(
    fd: SupportsIndex,
    family: AddressFamily | int = AF_INET,
    type: SocketKind | int = SOCK_STREAM,
    proto: int = 0,
) -> SocketType:
    """A tether socket on a duplicate of the descriptor `fd`, as
    `socket.fromfd` (`fd` itself stays open and the caller's). Family,
    type and protocol are read from the descriptor where the system can
    tell them; the arguments serve elsewhere. Not a checkpoint.

    Raises:
      OSError: `fd` is not a socket descriptor.
    """
    copy = _stdlib_socket.dup(fd.__index__())
    try:
        sock = _adopt_descriptor(copy, family, type, proto)
    except BaseException:
        os.close(copy)
        raise
    return from_stdlib_socket(sock)


def socketpair(
    family: AddressFamily | int | None = None,
    type: SocketKind | int = SOCK_STREAM,
    proto: int = 0,
) -> tuple[SocketType, SocketType]:
    """Two tether sockets connected to each other, as `socket.socketpair`
    (AF_UNIX unless told otherwise, where the system has it). Not a
    checkpoint; the custom socket factory plays no part."""
    pair = _stdlib_socket.socketpair(family, type, proto)
    return from_stdlib_socket(pair[0]), from_stdlib_socket(pair[1])


def socket(
    family: AddressFamily | int = AF_INET,
    type: SocketKind | int = SOCK_STREAM,
    proto: int = 0,
    fileno: int | None = None,
) -> SocketType:
    """A new tether socket, as `socket.socket`.

    Without `fileno`, the custom socket factory makes it when one is set
    (`set_custom_socket_factory`). With `fileno`, the socket takes over
    that descriptor; its family, type and protocol are then read from the
    descriptor where the system can tell them. Not a checkpoint.

    Raises:
      OSError: as `socket.socket` (``EAFNOSUPPORT`` for a family this
        system lacks, ``EMFILE`` when out of descriptors, ...).
    """
    if fileno is not None:
        return from_stdlib_socket(_adopt_descriptor(fileno, family, type, proto))
    factory = _factory_of_this_run.get() if in_tether_run() else None
    if factory is None:
        return from_stdlib_socket(_stdlib_socket.socket(family, type, proto))
    # Whatever the factory returns (tests return doubles) is taken on its
    # word that it behaves as a SocketType.
    return cast(SocketType, factory.socket(family, type, proto))


# ---------------------------------------------------------------------------
# The interface


def _missing(sock: SocketType, name: str) -> NotImplementedError:
    return NotImplementedError(
        f"{type(sock).__name__} does not implement SocketType.{name}: "
        "tether.socket.SocketType is an interface, and a subclass must override "
        "each method and property it is used for"
    )


class SocketType:
    """A tether socket: the methods of `socket.socket`, with the ones that
    can block (`accept`, `connect`, `bind`, `recv*`, `send*`) async.

    Make one with `tether.socket.socket`, `socketpair`, `fromfd` or
    `from_stdlib_socket`; this class is the interface and cannot be
    instantiated itself. A test double subclasses it and overrides the
    methods it needs (the others raise `NotImplementedError`).

    Each async method is a checkpoint. Cancelling one while it waits
    leaves the socket as it was, nothing received or half-sent, except
    `connect`, which closes the socket. A task waiting on a socket that is
    closed or detached wakes with `ClosedResourceError`. Only one task at
    a time may wait to read, and one to write: a second one gets
    `BusyResourceError`.

    Left out on purpose: ``sendall`` (use `tether.SocketStream`),
    ``makefile``, timeouts (use cancel scopes) and blocking mode.
    """

    def __init__(self) -> None:
        super().__init__()
        if type(self) is SocketType:
            raise TypeError(
                "SocketType is an interface; create sockets with tether.socket.socket(), "
                "socketpair(), fromfd() or from_stdlib_socket()"
            )

    # -- calls that cannot block (not checkpoints) ---------------------------

    @property
    def family(self) -> AddressFamily:
        """The address family (`socket.AF_INET`, ...)."""
        raise _missing(self, "family")

    @property
    def type(self) -> SocketKind:
        """The socket type (`socket.SOCK_STREAM`, ...)."""
        raise _missing(self, "type")

    @property
    def proto(self) -> int:
        """The protocol number."""
        raise _missing(self, "proto")

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        """True once `shutdown` has closed the sending direction (SHUT_WR
        or SHUT_RDWR)."""
        raise _missing(self, "did_shutdown_SHUT_WR")

    def fileno(self) -> int:
        """The descriptor number; -1 once closed or detached."""
        raise _missing(self, "fileno")

    def detach(self) -> int:
        """Hand over the descriptor without closing it, and return it; the
        socket then behaves as closed. Tasks waiting on it wake with
        `ClosedResourceError`, as for `close`. Not a checkpoint."""
        raise _missing(self, "detach")

    def close(self) -> None:
        """Close the socket; closing again does nothing. Tasks waiting on
        it wake with `ClosedResourceError`. Not a checkpoint."""
        raise _missing(self, "close")

    def dup(self) -> SocketType:
        """A new tether socket on a duplicate of the descriptor."""
        raise _missing(self, "dup")

    def getpeername(self) -> Address:
        """The address of the other end, as `socket.socket.getpeername`."""
        raise _missing(self, "getpeername")

    def getsockname(self) -> Address:
        """This end's address, as `socket.socket.getsockname`."""
        raise _missing(self, "getsockname")

    @overload
    def getsockopt(self, level: int, optname: int, buflen: int) -> bytes: ...

    @overload
    def getsockopt(self, level: int, optname: int) -> int: ...

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """Read a socket option, as `socket.socket.getsockopt`: an int, or
        with `buflen`, the option's bytes."""
        raise _missing(self, "getsockopt")

    @overload
    def setsockopt(self, level: int, optname: int, value: None, optlen: int) -> None: ...

    @overload
    def setsockopt(self, level: int, optname: int, value: int | bytes) -> None: ...

    def setsockopt(
        self, level: int, optname: int, value: int | bytes | None, optlen: int | None = None
    ) -> None:
        """Set a socket option, as `socket.socket.setsockopt`: a `value`,
        or ``None`` and an `optlen`.

        Raises:
          TypeError: `value` and `optlen` both given, or neither.
        """
        raise _missing(self, "setsockopt")

    def listen(self, backlog: int = DEFAULT_LISTEN_BACKLOG) -> None:
        """Begin accepting connections, as `socket.socket.listen`."""
        raise _missing(self, "listen")

    def shutdown(self, flag: int) -> None:
        """Shut one or both directions (`socket.SHUT_RD`, `SHUT_WR`,
        `SHUT_RDWR`), as `socket.socket.shutdown`."""
        raise _missing(self, "shutdown")

    def get_inheritable(self) -> bool:
        """Whether child processes inherit the descriptor."""
        raise _missing(self, "get_inheritable")

    def set_inheritable(self, inheritable: bool) -> None:
        """Choose whether child processes inherit the descriptor."""
        raise _missing(self, "set_inheritable")

    def setblocking(self, flag: bool) -> None:
        """Accepts ``False`` only: tether sockets never block.

        Raises:
          ValueError: given ``True``.
        """
        raise _missing(self, "setblocking")

    def is_readable(self) -> bool:
        """Whether reading would return at once now (data, end of stream,
        an error, or a connection to accept). Not a checkpoint."""
        raise _missing(self, "is_readable")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- calls that may wait (checkpoints) -----------------------------------

    async def wait_writable(self) -> None:
        """Wait until the socket can be written to
        (`tether.lowlevel.wait_writable`). A checkpoint; cancellable."""
        raise _missing(self, "wait_writable")

    async def bind(self, address: Address) -> None:
        """Bind to `address`, resolving a host name first (hence async).
        For an AF_UNIX path the bind runs in a worker thread, as it walks
        the filesystem. A checkpoint.

        Raises:
          OSError: as `socket.socket.bind`; `socket.gaierror` if the host
            does not resolve, or a plain `OSError` if a custom resolver
            found no address for it.
        """
        raise _missing(self, "bind")

    async def connect(self, address: Address) -> None:
        """Connect to `address`, resolving a host name first. A checkpoint.

        Cancelling it closes the socket: a connection attempt cannot be
        called back half-way.

        Raises:
          OSError: the connection failed (the message names the address),
            or the host did not resolve.
        """
        raise _missing(self, "connect")

    async def accept(self) -> tuple[SocketType, Address]:
        """Wait for an incoming connection and return ``(socket,
        address)``. A checkpoint; a cancelled call accepts nothing."""
        raise _missing(self, "accept")

    async def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """Receive at most `bufsize` bytes (``b""`` at end of stream). A
        checkpoint; a cancelled call receives nothing."""
        raise _missing(self, "recv")

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into `buffer` and return how many bytes came."""
        raise _missing(self, "recv_into")

    async def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Address]:
        """Receive a datagram: ``(data, sender's address)``."""
        raise _missing(self, "recvfrom")

    async def recvfrom_into(
        self, buffer: Any, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, Address]:
        """Receive a datagram into `buffer`: ``(size, sender's address)``."""
        raise _missing(self, "recvfrom_into")

    async def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, Ancillary, int, Address]:
        """Receive data and ancillary data, as `socket.socket.recvmsg`."""
        raise _missing(self, "recvmsg")

    async def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, Ancillary, int, Address]:
        """Receive into `buffers`, as `socket.socket.recvmsg_into`."""
        raise _missing(self, "recvmsg_into")

    async def send(self, data: Any, flags: int = 0, /) -> int:
        """Send part of `data` and return how many bytes went (maybe fewer
        than ``len(data)``). A checkpoint; a cancelled call sends nothing."""
        raise _missing(self, "send")

    async def sendto(self, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``:
        send a datagram, resolving a host name in `address` first."""
        raise _missing(self, "sendto")

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
        raise _missing(self, "sendmsg")


# ---------------------------------------------------------------------------
# The implementation over socket.socket


def _forwarded(name: str) -> Callable[..., Any]:
    """A `_SocketType` method that calls ``socket.socket.<name>`` on the
    wrapped socket with the same arguments (so it accepts keywords exactly
    where the standard library does)."""
    call = getattr(_stdlib_socket.socket, name)

    def forward(self: _SocketType, *args: Any, **kwargs: Any) -> Any:
        return call(self._sock, *args, **kwargs)

    forward.__name__ = name
    forward.__qualname__ = f"_SocketType.{name}"
    return forward


def _read_through(name: str) -> Any:
    """A `_SocketType` property that reads the wrapped socket's attribute
    `name`."""
    return property(lambda self: getattr(self._sock, name))


def _waiting_call(
    name: str, ready_when: Literal["readable", "writable"], *, public: bool = True
) -> _AsyncMethod:
    """The `_SocketType` method for the system call ``socket.socket.<name>``
    on the non-blocking socket: try it, and each time it would block, wait
    until the socket is `ready_when` and try again.

    A checkpoint: a cancel point before the first try, a schedule point
    after a try that did not wait (a wait is a full checkpoint). The
    first try comes before any wait, for the right errors: a call that can
    never become ready (``accept`` before ``listen``) fails at once
    instead of waiting forever.

    It takes positional arguments only, since a ``**kwargs`` costs each
    call a dict. Calls whose interface takes keywords, or that have work
    to do around the call, get a private method (``public=False``) that a
    ``def`` of their own awaits; a public one carries the interface's
    signature for `help` and `inspect.signature`.
    """
    # None where this platform lacks the call: such methods are deleted
    # after the class.
    system_call: Any = getattr(_stdlib_socket.socket, name, None)
    wait = wait_readable if ready_when == "readable" else wait_writable

    async def method(self: _SocketType, *args: Any) -> Any:
        raw = self._sock
        await checkpoint_if_cancelled()
        try:
            answer = system_call(raw, *args)
        except BlockingIOError:
            pass
        except BaseException:
            # Failing is a checkpoint too.
            await cancel_shielded_checkpoint()
            raise
        else:
            await cancel_shielded_checkpoint()
            return answer
        # The descriptor number spares the kernel a lookup, and the socket
        # was open at the failed try a moment ago.
        fd = raw.fileno()
        while True:
            await wait(fd)
            try:
                return system_call(raw, *args)
            except BlockingIOError:
                # Woken, but another reader was first (or nothing came).
                continue

    method.__name__ = name
    # For help() and inspect.getdoc(), which then find the interface's
    # docstring.
    method.__qualname__ = f"_SocketType.{name}"
    if public:
        # inspect.signature() reads __signature__ (the type stubs do not
        # declare it).
        method.__signature__ = inspect.signature(getattr(SocketType, name))  # type: ignore[attr-defined]
    return method


class _SocketType(SocketType):
    def __init__(self, sock: _stdlib_socket.socket) -> None:
        # `from_stdlib_socket` has checked that `sock` is a plain socket.
        sock.setblocking(False)
        self._sock = sock
        self._write_side_shut = False

    def __repr__(self) -> str:
        # The standard library's details (fd, family, addresses), under
        # tether's name.
        details = repr(self._sock).removeprefix("<socket.socket")
        return f"<tether.socket.socket{details}"

    family = _read_through("family")
    type = _read_through("type")
    proto = _read_through("proto")
    fileno = _forwarded("fileno")
    getpeername = _forwarded("getpeername")
    getsockname = _forwarded("getsockname")
    getsockopt = _forwarded("getsockopt")
    get_inheritable = _forwarded("get_inheritable")
    set_inheritable = _forwarded("set_inheritable")

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        return self._write_side_shut

    def _forget_waiters(self) -> bool:
        """Wake whoever waits on the descriptor, which is about to stop
        being ours; False if it already has (closed or detached)."""
        if self._sock.fileno() < 0:
            return False
        # Outside a run nobody can be waiting.
        if in_tether_run():
            notify_closing(self._sock)
        return True

    def close(self) -> None:
        if self._forget_waiters():
            self._sock.close()

    def detach(self) -> int:
        self._forget_waiters()
        return self._sock.detach()

    def dup(self) -> SocketType:
        return _SocketType(self._sock.dup())

    def setsockopt(self, level: int, optname: int, value: Any, optlen: Any = None) -> None:
        rest = setsockopt_arguments(value, optlen, names=("optname", "optlen"))
        self._sock.setsockopt(level, optname, *rest)

    def listen(self, backlog: int = DEFAULT_LISTEN_BACKLOG) -> None:
        self._sock.listen(backlog)

    def shutdown(self, flag: int) -> None:
        self._sock.shutdown(flag)
        # Recorded once the call has succeeded, so the flag was valid: any
        # but SHUT_RD closed the sending direction.
        if flag != _stdlib_socket.SHUT_RD:
            self._write_side_shut = True

    def setblocking(self, flag: bool) -> None:
        if flag:
            raise ValueError(
                "a tether socket is always non-blocking (its async methods wait "
                "without blocking the run); to get a blocking socket, take the fd "
                "with detach() and build a socket.socket(fileno=fd) from it"
            )

    def is_readable(self) -> bool:
        fd = self._sock.fileno()
        if sys.platform == "win32":
            # No poll() there; select() has no descriptor limit on Windows.
            return bool(select.select([fd], (), (), 0)[0])
        watcher = select.poll()
        watcher.register(fd, select.POLLIN)
        return len(watcher.poll(0)) > 0

    async def _normalise(self, address: Address, *, local: bool) -> Address:
        """`address` resolved for this socket's family, type and protocol."""
        sock = self._sock
        # An IPv6 socket that is not v6-only also reaches IPv4 hosts.
        v6_only = sock.family == _stdlib_socket.AF_INET6 and bool(
            sock.getsockopt(_stdlib_socket.IPPROTO_IPV6, _stdlib_socket.IPV6_V6ONLY)
        )
        return await resolve_address(
            address,
            family=sock.family,
            type=sock.type,
            proto=sock.proto,
            ipv6_v6only=v6_only,
            local=local,
        )

    async def wait_writable(self) -> None:
        await wait_writable(self._sock)

    async def bind(self, address: Address) -> None:
        target = await self._normalise(address, local=True)
        family = self._sock.family
        if family == getattr(_stdlib_socket, "AF_UNIX", None) and target[:1] not in ("\0", b"\0"):
            # A path (not an abstract name): the system walks directories,
            # which can block for a while.
            await to_thread_run_sync(self._sock.bind, target)
        else:
            # POSIX lets bind finish later, as connect does; no system does
            # that for the families in use here.
            await checkpoint()
            self._sock.bind(target)

    async def connect(self, address: Address) -> None:
        try:
            target = await self._normalise(address, local=False)
            await checkpoint_if_cancelled()
            try:
                outcome = self._sock.connect_ex(target)
            except BaseException:
                await cancel_shielded_checkpoint()
                raise
            if outcome in _CONNECT_UNDER_WAY:
                await wait_writable(self._sock)
                outcome = self._sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ERROR)
            else:
                await cancel_shielded_checkpoint()
        except Cancelled:
            # The system may still finish the attempt; a socket in a state
            # nobody knows is better closed than handed back.
            self.close()
            raise
        if outcome:
            raise OSError(outcome, f"Error connecting to {target!r}: {os.strerror(outcome)}")

    # The calls that may wait, each made by `_waiting_call`.

    recv = _waiting_call("recv", "readable")
    recvfrom = _waiting_call("recvfrom", "readable")
    recvmsg = _waiting_call("recvmsg", "readable")
    recvmsg_into = _waiting_call("recvmsg_into", "readable")
    send = _waiting_call("send", "writable")
    # Awaited by the methods below, which take keywords or do more.
    _accept_raw = _waiting_call("accept", "readable", public=False)
    _recv_into_raw = _waiting_call("recv_into", "readable", public=False)
    _recvfrom_into_raw = _waiting_call("recvfrom_into", "readable", public=False)
    _sendto_raw = _waiting_call("sendto", "writable", public=False)
    _sendmsg_raw = _waiting_call("sendmsg", "writable", public=False)

    async def accept(self) -> tuple[SocketType, Address]:
        connection, peer = await self._accept_raw()
        return _SocketType(connection), peer

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        count: int = await self._recv_into_raw(buffer, nbytes, flags)
        return count

    async def recvfrom_into(
        self, buffer: Any, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, Address]:
        answer: tuple[int, Address] = await self._recvfrom_into_raw(buffer, nbytes, flags)
        return answer

    async def sendto(self, *args: Any) -> int:
        if not 2 <= len(args) <= 3:
            raise TypeError(
                f"sendto takes (data, address) or (data, flags, address), got {len(args)} arguments"
            )
        *data_and_flags, address = args
        target = await self._normalise(address, local=False)
        count: int = await self._sendto_raw(*data_and_flags, target)
        return count

    async def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Address | None = None,
        /,
    ) -> int:
        arguments: list[Any] = [buffers, ancdata, flags]
        if address is not None:
            arguments.append(await self._normalise(address, local=False))
        count: int = await self._sendmsg_raw(*arguments)
        return count


# A platform without these calls (Windows) does not get the methods, so that
# hasattr() tells the truth.
for _name in ("recvmsg", "recvmsg_into", "sendmsg"):
    if not hasattr(_stdlib_socket.socket, _name):  # pragma: no cover
        delattr(_SocketType, _name)
        delattr(SocketType, _name)

"""Datagram endpoints: the loop's `create_datagram_endpoint`.

What they must do (asyncio's documented behaviour):

- The transport calls ``connection_made`` at the next loop iteration and
  starts receiving after it; each readable event receives one datagram
  and hands it to ``datagram_received(data, addr)``. ``connection_lost``
  is called once, at an iteration after the transport ended, and then the
  socket is closed.
- ``sendto(data, addr)`` sends at once if the socket takes it and queues
  the datagram (whole) otherwise, behind a writer callback, with asyncio's
  high/low water marks pausing and resuming the protocol. A transport
  created with a remote address only sends there: another `addr` is a
  ValueError. Empty data sends nothing.
- A failed send or receive (an OSError, e.g. ICMP "port unreachable") is
  the protocol's ``error_received``; the transport stays open. Anything
  else ends it, reported through the loop's exception handler.
- ``close()`` stops receiving and ends once the queue has drained;
  ``abort()`` ends at once, dropping the queue. Sends after the end of a
  connected transport are counted and dropped, with a warning once they
  pile up.
- `create_datagram_endpoint` either wraps a given datagram socket (then
  no other socket option may be passed) or resolves `local_addr` /
  `remote_addr` (paths for AF_UNIX), pairs the results by family and
  protocol, and tries the pairs in order until one socket can be set up,
  bound and connected; if none can, the first error is raised.

Design: the transport's state is `_phase` ("open", "draining": closed
while datagrams are still queued, "ending": connection_lost queued,
"gone"). One method, `_transmit`, sends one datagram and sorts out its
errors; the immediate path and the writer callback both use it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import warnings
from asyncio import transports
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ._sockets import ensure_resolved, remove_stale_unix_socket
from ._transports import (
    BYTES_LIKE,
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    add_socket_extra,
    await_or_close,
    read_view,
    report_fatal_error,
    set_result_unless_cancelled,
)

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

logger = logging.getLogger("asyncio")

Phase = Literal["open", "draining", "ending", "gone"]


class DatagramTransport(transports._FlowControlMixin, transports.DatagramTransport):
    """A datagram (UDP or Unix datagram) socket transport."""

    _sock: socket.socket | None = None

    if TYPE_CHECKING:
        # Provided by asyncio's flow-control mixin at run time; typeshed does
        # not declare them.
        _extra: dict[str, Any]

        def _maybe_pause_protocol(self) -> None: ...

        def _maybe_resume_protocol(self) -> None: ...

    def __init__(
        self,
        loop: TetherEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        address: Any = None,
        waiter: asyncio.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        transports._FlowControlMixin.__init__(self, extra, loop)
        add_socket_extra(self._extra, sock)
        self._loop: TetherEventLoop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol: Any = protocol
        self._remote = address
        # A connected socket takes send(); others need the address each time
        # (a datagram without one can only go to a connected peer, which an
        # unnamed AF_UNIX peer is although its peername is '').
        self._use_send = bool(self._extra["peername"])
        self._phase: Phase = "open"
        self._pending: deque[tuple[bytes, Any]] = deque()
        self._pending_bytes = 0
        self._sends_after_end = 0
        loop._transports[self._fd] = self
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._watch)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        phase = "closed" if self._sock is None else self._phase
        return f"<{type(self).__name__} fd={self._fd} {phase} queued={len(self._pending)}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_write_buffer_size(self) -> int:
        return self._pending_bytes

    def is_closing(self) -> bool:
        return self._phase != "open"

    # -- receiving ----------------------------------------------------------------

    def _watch(self) -> None:
        if self._phase == "open":
            self._loop._add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        if self._sock is None or self._phase in ("ending", "gone"):
            return
        try:
            # (Into the loop's buffer, copied out: see `read_view`. A
            # datagram longer than the buffer, 256 KiB, is truncated.)
            view = read_view(self._loop)
            size, sender = self._sock.recvfrom_into(view)
            data = view[:size].tobytes()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        except Exception as exc:
            self._fail(exc, "Fatal read error on datagram transport")
            return
        self._protocol.datagram_received(data, sender)

    # -- sending ------------------------------------------------------------------

    def _transmit(self, data: Any, addr: Any) -> bool:
        """Send one datagram. False if the socket would block (nothing was
        sent); True if it went, or failed and the failure was dealt with."""
        assert self._sock is not None
        try:
            if self._use_send or addr is None:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._protocol.error_received(exc)
        except Exception as exc:
            self._fail(exc, "Fatal write error on datagram transport")
        return True

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not isinstance(data, BYTES_LIKE):
            raise TypeError(
                f"sendto() takes bytes, bytearray or memoryview, got {type(data).__name__!r}"
            )
        if not data:
            return
        if self._remote:
            if addr is not None and addr != self._remote:
                raise ValueError(
                    f"Invalid address: this transport sends only to {self._remote!r}; "
                    "pass addr=None"
                )
            addr = self._remote
        if self._remote and self._phase in ("ending", "gone"):
            if self._sends_after_end >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._sends_after_end += 1
            return
        if not self._pending:
            if self._transmit(data, addr):
                return
            self._loop._add_writer(self._fd, self._on_writable)
        self._pending.append((bytes(data), addr))
        self._pending_bytes += len(data)
        self._maybe_pause_protocol()

    def _on_writable(self) -> None:
        while self._pending:
            data, addr = self._pending[0]
            if not self._transmit(data, addr):
                return  # still full: wait for the next writable event
            if not self._pending:
                return  # the transport ended (and dropped its queue)
            self._pending.popleft()
            self._pending_bytes -= len(data)
        self._loop._remove_writer(self._fd)
        self._maybe_resume_protocol()
        if self._phase == "draining":
            self._end(None)

    # -- ending -------------------------------------------------------------------

    def close(self) -> None:
        if self._phase != "open":
            return
        self._loop._remove_reader(self._fd)
        if self._pending:
            self._phase = "draining"
        else:
            self._end(None)

    def abort(self) -> None:
        self._end(None)

    def _fail(self, exc: BaseException, message: str) -> None:
        report_fatal_error(self, exc, message, expected=isinstance(exc, OSError))
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        """Stop everything and queue `connection_lost(exc)`; once only."""
        if self._phase in ("ending", "gone"):
            return
        self._phase = "ending"
        self._loop._remove_reader(self._fd)
        if self._pending:
            self._pending.clear()
            self._pending_bytes = 0
            self._loop._remove_writer(self._fd)
        self._loop.call_soon(self._deliver_lost, exc)

    def _deliver_lost(self, exc: BaseException | None) -> None:
        protocol, sock = self._protocol, self._sock
        self._protocol = self._sock = None
        self._phase = "gone"
        try:
            protocol.connection_lost(exc)
        finally:
            if sock is not None:
                sock.close()


# -- the loop's create_datagram_endpoint -------------------------------------------

#: One way to set the endpoint up: (family, proto), (local address, remote address).
Candidate = tuple[tuple[int, int], tuple[Any, Any]]


async def create_datagram_endpoint(
    loop: TetherEventLoop,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    local_addr: Any = None,
    remote_addr: Any = None,
    *,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    reuse_port: bool | None = None,
    allow_broadcast: bool | None = None,
    sock: socket.socket | None = None,
) -> tuple[DatagramTransport, asyncio.BaseProtocol]:
    if sock is not None:
        _check_given_socket(
            sock, local_addr, remote_addr, family, proto, flags, reuse_port, allow_broadcast
        )
        sock.setblocking(False)
        remote = None
    else:
        candidates = await _candidates(loop, local_addr, remote_addr, family, proto, flags)
        sock, remote = await _first_working_socket(
            loop, candidates, bool(reuse_port), bool(allow_broadcast)
        )
    protocol = protocol_factory()
    ready = loop.create_future()
    transport = DatagramTransport(loop, sock, protocol, remote, ready)
    await await_or_close(ready, transport)
    return transport, protocol


def _check_given_socket(sock: socket.socket, *options: Any) -> None:
    # Only stream sockets are refused: raw and other message sockets work.
    if sock.type == socket.SOCK_STREAM:
        raise ValueError(
            f"A UDP Socket was expected, got {sock!r}: create_datagram_endpoint(sock=...) "
            "needs a datagram socket"
        )
    if any(options):
        raise ValueError(
            "create_datagram_endpoint(sock=...) takes the socket as it is: pass no "
            "local_addr, remote_addr, family, proto, flags, reuse_port or allow_broadcast "
            "with it"
        )


async def _first_working_socket(
    loop: TetherEventLoop, candidates: list[Candidate], reuse_port: bool, allow_broadcast: bool
) -> tuple[socket.socket, Any]:
    """Set a socket up for each candidate in turn; return the first that
    works, with the remote address it is connected to (or None)."""
    failures: list[OSError] = []
    for (sock_family, sock_proto), (local, remote) in candidates:
        sock = None
        try:
            sock = socket.socket(family=sock_family, type=socket.SOCK_DGRAM, proto=sock_proto)
            if reuse_port:
                if not hasattr(socket, "SO_REUSEPORT"):
                    raise ValueError("reuse_port=True is not supported on this platform")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if allow_broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)
            if local is not None:
                sock.bind(local)
            # A broadcast endpoint stays unconnected: it sends to the remote
            # address with sendto() instead.
            if remote is not None and not allow_broadcast:
                await loop.sock_connect(sock, remote)
        except OSError as exc:
            if sock is not None:
                sock.close()
            failures.append(exc)
            continue
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        return sock, remote
    raise failures[0]


async def _candidates(
    loop: TetherEventLoop,
    local_addr: Any,
    remote_addr: Any,
    family: int,
    proto: int,
    flags: int,
) -> list[Candidate]:
    """The (family, proto) / (local, remote) combinations worth trying."""
    if not local_addr and not remote_addr:
        if family == 0:
            raise ValueError(
                "unexpected address family 0: without local_addr or remote_addr, "
                "create_datagram_endpoint needs family= (or sock=)"
            )
        return [((family, proto), (None, None))]
    if family == getattr(socket, "AF_UNIX", None):
        for path in (local_addr, remote_addr):
            if path is not None and not isinstance(path, str):
                raise TypeError(f"an AF_UNIX address is a path (str), got {path!r}")
        if local_addr:
            remove_stale_unix_socket(local_addr)
        return [((family, proto), (local_addr or None, remote_addr or None))]

    # Resolve each given address; keep the (family, proto) keys for which
    # every given address has a result.
    found: dict[tuple[int, int], dict[str, Any]] = {}
    for role, address in (("local", local_addr), ("remote", remote_addr)):
        if address is None:
            continue
        if not isinstance(address, tuple) or len(address) != 2:
            raise TypeError(f"{role}_addr must be a (host, port) 2-tuple, got {address!r}")
        infos = await ensure_resolved(
            loop, address, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags
        )
        if not infos:
            raise OSError(f"getaddrinfo() found no address for {role}_addr {address!r}")
        for info_family, _type, info_proto, _name, resolved in infos:
            found.setdefault((info_family, info_proto), {})[role] = resolved
    wanted = {role for role, address in (("local", local_addr), ("remote", remote_addr)) if address}
    candidates = [
        (key, (roles.get("local"), roles.get("remote")))
        for key, roles in found.items()
        if wanted <= roles.keys()
    ]
    if not candidates:
        raise ValueError(
            "can not get address information: local_addr and remote_addr resolved to "
            "no common address family"
        )
    return candidates

"""`open_tcp_stream`: connect to a host by name, the "happy eyeballs" way
(RFC 6555).

A name often resolves to several addresses (IPv6 and IPv4, several
servers), and some may not answer at all; TCP can take a minute to give up
on one. Trying them one after another is slow, trying them all at once
loads the network. So the attempts are staggered: the first address is
tried; if it has neither failed nor succeeded after `happy_eyeballs_delay`
seconds, the next one starts alongside it, and so on. A failure starts the
next attempt at once. The first connection made wins; every other attempt
is cancelled and its socket closed.

Invariants: every socket created is either returned inside the stream or
closed before `open_tcp_stream` returns or raises (also when cancelled);
when all attempts fail, the `OSError` raised has every attempt's error in
an `ExceptionGroup` as its ``__cause__``.

No state is kept between calls (RFC 6555 section 4.2 allows that for an
algorithm that always tries the resolver's preferred family first).
"""

from __future__ import annotations

import socket as _stdlib_socket
from collections.abc import Iterable
from contextlib import suppress

from . import socket as tsocket
from ._core import open_nursery
from ._highlevel_socket import SocketStream
from ._socket import SocketType, socket
from ._socket_names import Address, AddrInfo, getaddrinfo
from ._sync import Event
from ._timeouts import move_on_after

#: Seconds an attempt runs alone before the next address is tried next to
#: it (RFC 6555 section 6 suggests 150-250 ms; browsers use about this).
DEFAULT_HAPPY_EYEBALLS_DELAY = 0.25


def _interleave_families(targets: list[AddrInfo]) -> None:
    """RFC 6555 section 5.4: if the resolver returned two families, the
    second attempt must use the other family than the first. Moves the
    first address of another family to the second place, in place; the
    rest keeps the resolver's order."""
    for index in range(1, len(targets)):
        if targets[index][0] != targets[0][0]:
            targets.insert(1, targets.pop(index))
            return


def _host_port(host: str | bytes, port: int) -> str:
    """``host:port`` as people write it (IPv6 hosts in brackets)."""
    text = host.decode("ascii") if isinstance(host, bytes) else host
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


async def _bind_local_address(sock: SocketType, local_address: str, remote: Address) -> None:
    # Binding picks a local port at once, before the kernel knows the remote
    # end, so it must pick one that no connection at all uses: that uses up
    # ports fast. Where the kernel supports it, bind only the address and
    # let connect() choose the port.
    no_port = getattr(tsocket, "IP_BIND_ADDRESS_NO_PORT", None)
    if no_port is not None:
        with suppress(OSError):
            sock.setsockopt(_stdlib_socket.IPPROTO_IP, no_port, 1)
    try:
        await sock.bind((local_address, 0))
    except OSError as exc:
        raise OSError(
            f"local_address={local_address!r} is incompatible with remote address {remote!r}: {exc}"
        ) from exc


async def open_tcp_stream(
    host: str | bytes,
    port: int,
    *,
    happy_eyeballs_delay: float | None = DEFAULT_HAPPY_EYEBALLS_DELAY,
    local_address: str | None = None,
) -> SocketStream:
    """Connect to `host` (a name or an IPv4/IPv6 address) on TCP `port` and
    return the connection as a `SocketStream`.

    All the addresses `host` resolves to are tried, staggered: each attempt
    gets `happy_eyeballs_delay` seconds (``None`` means the default, 0.25)
    before the next address is tried alongside it; an attempt that fails
    starts the next one at once. The first to connect wins and the others
    are cancelled. The order is the resolver's, except that the second
    attempt uses the other address family if there is one (RFC 6555).

    `local_address`: the local IP address (or name) to connect from, when
    the machine has several; ``"0.0.0.0"`` or ``"::"`` force IPv4 or IPv6
    without choosing an address. Addresses of the other family then fail.

    There is no timeout of its own: wrap the call in `tether.move_on_after`
    or `tether.fail_after`. Cancellable at any point; a cancelled call
    closes every socket it opened (the cancellation may then come out
    inside a `BaseExceptionGroup`, from the attempts running at the time,
    which the cancelling scope catches as usual).

    Raises:
      ValueError: `host` is not a str or bytes.
      TypeError: `port` is not an int.
      socket.gaierror: the name does not resolve.
      OSError: every attempt failed; its ``__cause__`` is an
        `ExceptionGroup` of each attempt's error.
    """
    if not isinstance(host, str | bytes):
        raise ValueError(f"host must be str or bytes, not {host!r}")
    if not isinstance(port, int):
        raise TypeError(f"port must be int, not {port!r}")
    delay = DEFAULT_HAPPY_EYEBALLS_DELAY if happy_eyeballs_delay is None else happy_eyeballs_delay

    targets = await getaddrinfo(host, port, type=_stdlib_socket.SOCK_STREAM)
    if not targets:
        # The system raises instead; a custom resolver might not.
        raise OSError(f"no results found for hostname lookup: {_host_port(host, port)}")
    _interleave_families(targets)

    failures: list[OSError] = []
    opened: list[SocketType] = []
    winner: SocketType | None = None
    stream: SocketStream | None = None

    async def attempt(target: AddrInfo, failed: Event) -> None:
        nonlocal winner
        family, type_, proto, _, sockaddr = target
        try:
            sock = socket(family, type_, proto)
            opened.append(sock)
            if local_address is not None:
                await _bind_local_address(sock, local_address, sockaddr)
            await sock.connect(sockaddr)
        except OSError as exc:
            failures.append(exc)
            failed.set()
            return
        # Two attempts can connect in the same instant: the first one wins,
        # the other is closed with the losers.
        if winner is None:
            winner = sock
        attempts.cancel_scope.cancel()

    try:
        async with open_nursery() as attempts:
            for target in targets:
                failed = Event()
                attempts.start_soon(attempt, target, failed)
                with move_on_after(delay):
                    await failed.wait()
        if winner is None:
            message = f"all attempts to connect to {_host_port(host, port)} failed"
            raise OSError(message) from ExceptionGroup(message, failures)
        stream = SocketStream(winner)
        return stream
    finally:
        _close_all(sock for sock in opened if stream is None or sock is not winner)


def _close_all(sockets: Iterable[SocketType]) -> None:
    """Close every socket, even if closing one raises; then raise what
    closing raised (one error as is, several as a group)."""
    errors: list[BaseException] = []
    for sock in sockets:
        try:
            sock.close()
        except BaseException as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup("errors while closing sockets", errors)

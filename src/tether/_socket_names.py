"""Name resolution for `tether.socket`: `getaddrinfo`, `getnameinfo`,
`getprotobyname`, the per-run hook for a custom resolver
(`set_custom_hostname_resolver`), and the address normalisation that
socket methods apply before a system call (`resolve_address`).

The system resolver blocks, so a lookup of a real name runs in a worker
thread (`to_thread.run_sync` with ``abandon_on_cancel=True``: a cancelled
lookup returns at once and its thread finishes in the background). Numeric
hosts and ports never need a thread: they are resolved synchronously, with
the system told (``AI_NUMERICHOST``) not to touch the network.

Invariants:

- `getaddrinfo`, `getnameinfo` and `getprotobyname` are always checkpoints,
  whichever path they take.
- A name that reaches a resolver (the system one or a custom
  `tether.abc.HostnameResolver`) is ASCII bytes: non-ASCII names are
  encoded with IDNA 2008 (the ``idna`` package, UTS 46 mapping), not with
  the standard library's IDNA 2003 codec, which maps some names to a
  different host (``"faß.de"``).
- The custom resolver is per run (a `RunVar`): setting it in one
  `tether.run` does not affect another.

Design: a lookup is a `_Query`, the six arguments of ``getaddrinfo`` as a
named tuple, which knows how to answer itself locally (numeric only) and
how to hand itself to a resolver. Address normalisation (`resolve_address`)
checks the shape of an address against a per-family table, takes a fast
exit for addresses that are already numeric, and otherwise builds a
`_Query` and takes its first answer.
"""

from __future__ import annotations

import os
import socket as _stdlib_socket
from collections.abc import Callable
from socket import AddressFamily, SocketKind
from typing import Any, NamedTuple, TypeAlias, TypeVar, cast

import idna

from ._core import RunVar, cancel_shielded_checkpoint, checkpoint_if_cancelled
from ._threads import to_thread_run_sync
from .abc import HostnameResolver

#: An address in the standard library's representation: ``(host, port)``
#: for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6, a path for
#: AF_UNIX, anything else for other families.
Address: TypeAlias = Any

_V4Pair: TypeAlias = tuple[str, int]
_V6Quad: TypeAlias = tuple[str, int, int, int]

#: The address part of a `getaddrinfo` entry (the last form: a family the
#: standard library leaves raw, e.g. AF_INET6 without IPv6 support).
SockAddr: TypeAlias = _V4Pair | _V6Quad | tuple[int, bytes]

#: One `getaddrinfo` entry: (family, type, proto, canonname, sockaddr).
AddrInfo: TypeAlias = tuple[AddressFamily, SocketKind, int, str, SockAddr]

_HostArg: TypeAlias = bytes | str | None
_PortArg: TypeAlias = bytes | str | int | None

_T = TypeVar("_T")

# Added to a query's flags to make the system answer only what needs no
# lookup. (Some old platforms lack AI_NUMERICSERV: then ports are looked
# up in the services table, which is local anyway.)
_NO_LOOKUP_FLAGS = _stdlib_socket.AI_NUMERICHOST | getattr(_stdlib_socket, "AI_NUMERICSERV", 0)

# How the standard library spells "no host" and "the broadcast address" in
# an IPv4/IPv6 address, and what getaddrinfo must be asked instead.
_HOST_ALIASES: dict[str, str | None] = {"": None, "<broadcast>": "255.255.255.255"}

# The words of these two messages are trio's: its tests match them.
_V4_SHAPE = "address should be a (host, port) tuple"
_V6_SHAPE = "address should be a (host, port, [flowinfo, [scopeid]]) tuple"

# family -> (shortest, longest tuple, message if the tuple is neither)
_IP_SHAPES: dict[int, tuple[int, int, str]] = {
    _stdlib_socket.AF_INET: (2, 2, _V4_SHAPE),
    _stdlib_socket.AF_INET6: (2, 4, _V6_SHAPE),
}

# AF_UNIX, or a value no family has on platforms without it.
_AF_UNIX: object = getattr(_stdlib_socket, "AF_UNIX", object())

_custom_resolver: RunVar[HostnameResolver | None] = RunVar("tether.socket hostname resolver", None)


def set_custom_hostname_resolver(
    hostname_resolver: HostnameResolver | None,
) -> HostnameResolver | None:
    """Make `getaddrinfo` and `getnameinfo` ask `hostname_resolver` instead
    of the system resolver, for the rest of the current `tether.run`.

    Meant for tests (a fake resolver that answers fixed addresses) and for
    resolvers other than the system's. Everything in tether that resolves
    names goes through `getaddrinfo`, so it all follows. Numeric hosts are
    still resolved locally and never reach the custom resolver. Pass
    ``None`` to go back to the system resolver. Not a checkpoint.

    Returns the previous custom resolver, or ``None``.

    Raises:
      RuntimeError: outside `tether.run`.
    """
    replaced = _custom_resolver.get()
    _custom_resolver.set(hostname_resolver)
    return replaced


def encode_hostname(hostname: str) -> bytes:
    """ASCII names as they are; others with IDNA 2008 (UTS 46 mapping, so
    that capitals are lowered instead of refused). ASCII is passed through
    because the idna package rejects valid ASCII hosts such as ``"::1"``.
    `SSLStream` uses it too, so that the name sent for SNI and checked
    against the certificate is the one that was resolved."""
    if hostname.isascii():
        return hostname.encode()
    return idna.encode(hostname, uts46=True)


async def _off_thread(blocking_call: Callable[..., _T], *args: object) -> _T:
    # Every system lookup may block on the network; a cancelled caller
    # leaves at once and the thread's late answer is thrown away.
    return await to_thread_run_sync(blocking_call, *args, abandon_on_cancel=True)


class _Query(NamedTuple):
    """The arguments of one ``getaddrinfo`` call, in its order."""

    host: bytes | None
    port: _PortArg
    family: int
    type: int
    proto: int
    flags: int

    def answer_locally(self) -> list[AddrInfo] | None:
        """The answer if host and port are numeric; None if a resolver must
        be asked. Other errors of the system's are raised."""
        numeric_only = self._replace(flags=self.flags | _NO_LOOKUP_FLAGS)
        try:
            found = _stdlib_socket.getaddrinfo(*numeric_only)
        except _stdlib_socket.gaierror as exc:
            if exc.errno != _stdlib_socket.EAI_NONAME:
                raise
            return None
        return cast(list[AddrInfo], found)

    async def ask(self, resolver: HostnameResolver | None) -> list[AddrInfo]:
        """The answer of `resolver`, or of the system's in a worker thread."""
        if resolver is not None:
            return await resolver.getaddrinfo(*self)
        # `_stdlib_socket.getaddrinfo` is read now, not at import, so that a
        # test that monkeypatches socket.getaddrinfo is obeyed.
        return cast(list[AddrInfo], await _off_thread(_stdlib_socket.getaddrinfo, *self))


async def getaddrinfo(
    host: _HostArg,
    port: _PortArg,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[AddrInfo]:
    """Translate a host and port into the addresses to connect or bind to,
    like `socket.getaddrinfo` (same arguments, same result), without
    blocking the run.

    Numeric hosts (``"127.0.0.1"``, ``"::1"``) are answered at once. Other
    names go to the custom resolver if one is set
    (`set_custom_hostname_resolver`), else to the system resolver in a
    worker thread. Non-ASCII names are encoded with IDNA 2008 first.

    Always a checkpoint. If cancelled while a worker thread is resolving,
    it returns at once with `Cancelled`; the thread finishes on its own and
    its answer is dropped.

    Raises:
      socket.gaierror: the name does not resolve, or the arguments are
        invalid (as `socket.getaddrinfo`).
      idna.IDNAError: a non-ASCII name that is not a valid IDNA 2008 name
        (a `UnicodeError`).
    """
    await checkpoint_if_cancelled()
    try:
        query = _Query(
            encode_hostname(host) if isinstance(host, str) else host,
            port,
            family,
            type,
            proto,
            flags,
        )
        local_answer = query.answer_locally()
    except BaseException:
        # A bad argument still makes this a full checkpoint.
        await cancel_shielded_checkpoint()
        raise
    if local_answer is None:
        # (The worker thread, or the custom resolver, schedules.)
        return await query.ask(_custom_resolver.get())
    await cancel_shielded_checkpoint()
    return local_answer


async def getnameinfo(sockaddr: _V4Pair | _V6Quad, flags: int) -> tuple[str, str]:
    """Translate a numeric address into a host name and service name, like
    `socket.getnameinfo`, through the custom resolver if one is set, else
    the system resolver in a worker thread.

    A checkpoint; cancelling it returns at once (the worker thread finishes
    in the background).

    Raises:
      socket.gaierror: as `socket.getnameinfo` (e.g. the host in `sockaddr`
        is not numeric).
    """
    custom = _custom_resolver.get()
    if custom is None:
        return await _off_thread(_stdlib_socket.getnameinfo, sockaddr, flags)
    return await custom.getnameinfo(sockaddr, flags)


async def getprotobyname(name: str) -> int:
    """The number of the protocol called `name` (``"tcp"`` is 6), like
    `socket.getprotobyname`, looked up in a worker thread. A checkpoint;
    cancelling it returns at once.

    Raises:
      OSError: unknown protocol name.
    """
    return await _off_thread(_stdlib_socket.getprotobyname, name)


def no_addresses_error(host: bytes | str | None, port: bytes | str | int | None) -> OSError:
    """The error for a lookup of `host` and `port` that answered an empty
    list. The system resolver raises `socket.gaierror` instead; a custom
    resolver may answer nothing, and callers that pick an answer must not
    fail with an `IndexError` then."""

    def as_text(part: bytes | str | int | None, absent: str) -> str:
        if part is None:
            return absent
        if isinstance(part, bytes):
            return part.decode("ascii", "backslashreplace")
        return str(part)

    text = as_text(host, "*")
    service = as_text(port, "0")
    where = f"[{text}]:{service}" if ":" in text else f"{text}:{service}"
    return OSError(f"no addresses were found for {where} (the resolver answered an empty list)")


def _is_numeric_ip(family: int, host: object, port: object) -> bool:
    """Whether `host` is already an address of `family` and `port` a number."""
    if not (isinstance(port, int) and isinstance(host, str)):
        return False
    try:
        _stdlib_socket.inet_pton(family, host)
    except OSError:
        return False
    return True


async def resolve_address(
    address: Address,
    *,
    family: int,
    type: int,
    proto: int,
    ipv6_v6only: bool,
    local: bool,
) -> Address:
    """`address` as a socket of this family, type and protocol needs it:
    names resolved to numbers, the first answer chosen.

    `local` is True for addresses the socket binds to (the wildcard ``""``
    or None then means "any interface") and False for addresses it talks to
    (where it means the loopback interface), as the standard library does.
    An IPv6 socket that is not v6-only also accepts IPv4 names, as
    v4-mapped addresses. AF_UNIX paths come back as `str` or `bytes`;
    addresses of other families come back unchanged.

    Not always a checkpoint: an address that is already numeric returns
    without yielding (callers follow it with their own checkpoint).

    Raises:
      ValueError: an IP address that is not a tuple of the right length.
      socket.gaierror: the host does not resolve.
      OSError: a custom resolver found no address for the host.
    """
    shape = _IP_SHAPES.get(family)
    if shape is None:
        if family != _AF_UNIX:
            return address  # a family we know nothing about: as given
        if isinstance(address, str | bytes | os.PathLike):
            return os.fspath(address)
        raise TypeError(
            f"an AF_UNIX address is a path (str, bytes or os.PathLike), not {address!r}"
        )
    shortest, longest, wrong_shape = shape
    if not (isinstance(address, tuple) and shortest <= len(address) <= longest):
        raise ValueError(wrong_shape)

    # Already numeric: by far the most common case (every sendto of a UDP
    # server comes through here), so it skips getaddrinfo entirely.
    if _is_numeric_ip(family, address[0], address[1]):
        return address

    host = address[0]
    if isinstance(host, str) and host in _HOST_ALIASES:
        host = _HOST_ALIASES[host]
    passive = _stdlib_socket.AI_PASSIVE if local else 0
    # A dual-stack IPv6 socket reaches IPv4 hosts as ::ffff:a.b.c.d. (No
    # AI_ADDRCONFIG: the family is explicit, so it would only hide
    # addresses, and break IPv6 on hosts without IPv6 routes.)
    mapped = (
        _stdlib_socket.AI_V4MAPPED if family == _stdlib_socket.AF_INET6 and not ipv6_v6only else 0
    )
    answers = await getaddrinfo(host, address[1], family, type, proto, passive | mapped)
    if not answers:
        raise no_addresses_error(host, address[1])
    first = answers[0][4]
    extra = address[2:]
    if family != _stdlib_socket.AF_INET6 or not extra:
        return first
    # getaddrinfo knows nothing of the caller's flowinfo and scope id: the
    # ones given replace what it answered.
    return (*first[:2], *extra, *first[2 + len(extra) :])

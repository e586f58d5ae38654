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
"""

from __future__ import annotations

import os
import socket as _stdlib_socket
from socket import AddressFamily, SocketKind
from typing import Any, TypeAlias, cast

import idna

from ._core import RunVar, cancel_shielded_checkpoint, checkpoint_if_cancelled
from ._threads import to_thread_run_sync
from .abc import HostnameResolver

#: An address in the standard library's representation: ``(host, port)``
#: for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6, a path for
#: AF_UNIX, anything else for other families.
Address: TypeAlias = Any

#: The address part of a `getaddrinfo` entry.
SockAddr: TypeAlias = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]

#: One `getaddrinfo` entry: (family, type, proto, canonname, sockaddr).
AddrInfo: TypeAlias = tuple[AddressFamily, SocketKind, int, str, SockAddr]

# Flags that make the system's getaddrinfo refuse anything that would need a
# lookup. AI_NUMERICSERV is missing on a few old platforms.
_NUMERIC_ONLY = _stdlib_socket.AI_NUMERICHOST | getattr(_stdlib_socket, "AI_NUMERICSERV", 0)

_resolver: RunVar[HostnameResolver | None] = RunVar("tether.socket hostname resolver", None)


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
    previous = _resolver.get()
    _resolver.set(hostname_resolver)
    return previous


def encode_hostname(hostname: str) -> bytes:
    """ASCII names as they are; others with IDNA 2008 (UTS 46 mapping, so
    that capitals are lowered instead of refused). ASCII is passed through
    because the idna package rejects valid ASCII hosts such as ``"::1"``.
    `SSLStream` uses it too, so that the name sent for SNI and checked
    against the certificate is the one that was resolved."""
    try:
        return hostname.encode("ascii")
    except UnicodeEncodeError:
        return idna.encode(hostname, uts46=True)


def _numeric_lookup(
    host: bytes | str | None,
    port: bytes | str | int | None,
    family: int,
    type: int,
    proto: int,
    flags: int,
) -> list[AddrInfo] | None:
    """The answer if `host` and `port` are numeric, None if they need a
    real lookup. Raises the system's error for any other failure."""
    try:
        answers = _stdlib_socket.getaddrinfo(host, port, family, type, proto, flags | _NUMERIC_ONLY)
    except _stdlib_socket.gaierror as exc:
        if exc.errno == _stdlib_socket.EAI_NONAME:
            return None
        raise
    return cast(list[AddrInfo], answers)


async def getaddrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
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
        if isinstance(host, str):
            host = encode_hostname(host)
        numeric = _numeric_lookup(host, port, family, type, proto, flags)
    except BaseException:
        await cancel_shielded_checkpoint()
        raise
    if numeric is not None:
        await cancel_shielded_checkpoint()
        return numeric
    resolver = _resolver.get()
    if resolver is not None:
        return await resolver.getaddrinfo(host, port, family, type, proto, flags)
    # Looked up through the module at call time, so that a test's
    # monkeypatched socket.getaddrinfo is the one called.
    answers = await to_thread_run_sync(
        _stdlib_socket.getaddrinfo,
        host,
        port,
        family,
        type,
        proto,
        flags,
        abandon_on_cancel=True,
    )
    return cast(list[AddrInfo], answers)


async def getnameinfo(
    sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
) -> tuple[str, str]:
    """Translate a numeric address into a host name and service name, like
    `socket.getnameinfo`, through the custom resolver if one is set, else
    the system resolver in a worker thread.

    A checkpoint; cancelling it returns at once (the worker thread finishes
    in the background).

    Raises:
      socket.gaierror: as `socket.getnameinfo` (e.g. the host in `sockaddr`
        is not numeric).
    """
    resolver = _resolver.get()
    if resolver is not None:
        return await resolver.getnameinfo(sockaddr, flags)
    return await to_thread_run_sync(
        _stdlib_socket.getnameinfo, sockaddr, flags, abandon_on_cancel=True
    )


async def getprotobyname(name: str) -> int:
    """The number of the protocol called `name` (``"tcp"`` is 6), like
    `socket.getprotobyname`, looked up in a worker thread. A checkpoint;
    cancelling it returns at once.

    Raises:
      OSError: unknown protocol name.
    """
    return await to_thread_run_sync(_stdlib_socket.getprotobyname, name, abandon_on_cancel=True)


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
    if family == _stdlib_socket.AF_INET:
        if not isinstance(address, tuple) or len(address) != 2:
            raise ValueError("address should be a (host, port) tuple")
    elif family == _stdlib_socket.AF_INET6:
        if not isinstance(address, tuple) or not 2 <= len(address) <= 4:
            raise ValueError("address should be a (host, port, [flowinfo, [scopeid]]) tuple")
    elif family == getattr(_stdlib_socket, "AF_UNIX", object()):
        if not isinstance(address, str | bytes | os.PathLike):
            raise TypeError(
                f"an AF_UNIX address is a path (str, bytes or os.PathLike), not {address!r}"
            )
        return os.fspath(address)
    else:
        return address

    host, port, *_ = address
    # Already numeric: by far the most common case (every sendto of a UDP
    # server comes through here), so it avoids getaddrinfo entirely.
    if isinstance(port, int) and isinstance(host, str):
        try:
            _stdlib_socket.inet_pton(family, host)
        except OSError:
            pass
        else:
            return address
    # The standard library's spellings of "no host" and "broadcast".
    if host == "":
        host = None
    elif host == "<broadcast>":
        host = "255.255.255.255"
    flags = _stdlib_socket.AI_PASSIVE if local else 0
    # No AI_ADDRCONFIG: the family is explicit here, so it would only hide
    # addresses (and break IPv6 tests on hosts without IPv6 routes).
    if family == _stdlib_socket.AF_INET6 and not ipv6_v6only:
        flags |= _stdlib_socket.AI_V4MAPPED
    answers = await getaddrinfo(host, port, family, type, proto, flags)
    if not answers:
        raise no_addresses_error(host, port)
    _, _, _, _, resolved = answers[0]
    if family == _stdlib_socket.AF_INET6:
        # getaddrinfo knows nothing of the caller's flowinfo and scope id:
        # keep the ones given.
        full = list(resolved)
        full[2 : 2 + len(address[2:])] = address[2:]
        return tuple(full)
    return resolved

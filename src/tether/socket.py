"""tether's socket module: the standard library's `socket`, made async.

``from tether import socket as tsocket`` gives:

- `socket`, `socketpair`, `fromfd`, `from_stdlib_socket`: tether sockets
  (`SocketType`), whose blocking methods (`accept`, `connect`, `bind`,
  `recv*`, `send*`) are async checkpoints that honour cancellation.
- `getaddrinfo`, `getnameinfo`, `getprotobyname`: async, resolved in a
  worker thread (cancellable), numeric hosts without one.
- `set_custom_hostname_resolver`, `set_custom_socket_factory`: per-run
  hooks for tests that fake the network.
- Every upper-case constant of the standard `socket` module on this
  platform (`AF_INET`, `SOCK_STREAM`, `TCP_NODELAY`, `MSG_PEEK`, ...), its
  exceptions `gaierror` and `herror`, and its pure helpers (`htons`,
  `inet_pton`, `gethostname`, ...).

For byte streams over TCP or Unix sockets, use the higher-level
`tether.open_tcp_stream`, `tether.serve_tcp` and `tether.SocketStream`.
"""

import socket as _stdlib_socket
import sys as _sys
import typing as _typing
from socket import (
    gaierror,
    gethostname,
    herror,
    htonl,
    htons,
    inet_aton,
    inet_ntoa,
    inet_ntop,
    inet_pton,
    ntohl,
    ntohs,
)

from ._socket import (
    SocketType,
    from_stdlib_socket,
    fromfd,
    set_custom_socket_factory,
    socket,
    socketpair,
)
from ._socket_names import (
    getaddrinfo,
    getnameinfo,
    getprotobyname,
    set_custom_hostname_resolver,
)

__all__ = [
    "SocketType",
    "from_stdlib_socket",
    "fromfd",
    "gaierror",
    "getaddrinfo",
    "gethostname",
    "getnameinfo",
    "getprotobyname",
    "herror",
    "htonl",
    "htons",
    "inet_aton",
    "inet_ntoa",
    "inet_ntop",
    "inet_pton",
    "ntohl",
    "ntohs",
    "set_custom_hostname_resolver",
    "set_custom_socket_factory",
    "socket",
    "socketpair",
]

# Every constant this Python's socket module has: the set depends on the
# platform and on how Python was built, so it is computed, not listed.
# SO_REUSEADDR is left out on Windows, where it lets another process steal a
# bound port.
_LEFT_OUT = {"SO_REUSEADDR"} if _sys.platform == "win32" else set()
_CONSTANTS = {
    _name: getattr(_stdlib_socket, _name)
    for _name in _stdlib_socket.__all__
    if _name.isupper() and _name not in _LEFT_OUT
}
# Linux has had this option since 4.2, but not every Python build names it:
# the kernel's value, so that code can rely on the name.
if _sys.platform == "linux":
    _CONSTANTS.setdefault("IP_BIND_ADDRESS_NO_PORT", 24)
# Helpers that only some platforms have.
for _name in ("if_indextoname", "if_nametoindex", "if_nameindex", "sethostname"):
    if hasattr(_stdlib_socket, _name):
        _CONSTANTS[_name] = getattr(_stdlib_socket, _name)
globals().update(_CONSTANTS)
__all__ += sorted(_CONSTANTS)

# Type checkers cannot see the names copied above; these are the portable
# ones most programs use (the others exist at run time all the same).
if _typing.TYPE_CHECKING:
    from socket import (
        AF_INET,
        AF_INET6,
        AF_UNIX,
        AF_UNSPEC,
        AI_ADDRCONFIG,
        AI_CANONNAME,
        AI_NUMERICHOST,
        AI_NUMERICSERV,
        AI_PASSIVE,
        AI_V4MAPPED,
        EAI_NONAME,
        INADDR_ANY,
        INADDR_LOOPBACK,
        IP_BIND_ADDRESS_NO_PORT,
        IPPROTO_IP,
        IPPROTO_IPV6,
        IPPROTO_TCP,
        IPPROTO_UDP,
        IPV6_V6ONLY,
        MSG_DONTWAIT,
        MSG_OOB,
        MSG_PEEK,
        MSG_WAITALL,
        NI_NUMERICHOST,
        NI_NUMERICSERV,
        SHUT_RD,
        SHUT_RDWR,
        SHUT_WR,
        SO_ACCEPTCONN,
        SO_BROADCAST,
        SO_ERROR,
        SO_KEEPALIVE,
        SO_LINGER,
        SO_RCVBUF,
        SO_REUSEADDR,
        SO_SNDBUF,
        SO_TYPE,
        SOCK_DGRAM,
        SOCK_RAW,
        SOCK_STREAM,
        SOL_SOCKET,
        SOMAXCONN,
        TCP_NODELAY,
    )

    __all__ += [
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
        "AF_UNSPEC",
        "AI_ADDRCONFIG",
        "AI_CANONNAME",
        "AI_NUMERICHOST",
        "AI_NUMERICSERV",
        "AI_PASSIVE",
        "AI_V4MAPPED",
        "EAI_NONAME",
        "INADDR_ANY",
        "INADDR_LOOPBACK",
        "IP_BIND_ADDRESS_NO_PORT",
        "IPPROTO_IP",
        "IPPROTO_IPV6",
        "IPPROTO_TCP",
        "IPPROTO_UDP",
        "IPV6_V6ONLY",
        "MSG_DONTWAIT",
        "MSG_OOB",
        "MSG_PEEK",
        "MSG_WAITALL",
        "NI_NUMERICHOST",
        "NI_NUMERICSERV",
        "SHUT_RD",
        "SHUT_RDWR",
        "SHUT_WR",
        "SO_ACCEPTCONN",
        "SO_BROADCAST",
        "SO_ERROR",
        "SO_KEEPALIVE",
        "SO_LINGER",
        "SO_RCVBUF",
        "SO_REUSEADDR",
        "SO_SNDBUF",
        "SO_TYPE",
        "SOCK_DGRAM",
        "SOCK_RAW",
        "SOCK_STREAM",
        "SOL_SOCKET",
        "SOMAXCONN",
        "TCP_NODELAY",
    ]

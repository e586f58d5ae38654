"""Socket operations of the loop: ``loop.sock_*``, name resolution.

Each operation first tries the non-blocking call; if it would block, it
waits for the socket to be ready through the loop's fd callbacks
(`_selector.py`) and tries again. The wait is a future, so cancelling the
task cancels it (and the readiness callback is removed at once). Name
resolution runs `socket.getaddrinfo` in the default executor, except for
addresses that are already numeric.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from asyncio import SendfileNotAvailableError
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._selector import READER, WRITER

logger = logging.getLogger("asyncio")

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover
    _ssl = None  # type: ignore[assignment]

_HAS_IPV6 = hasattr(socket, "AF_INET6")
#: Read buffer size of the sendfile fallback (as asyncio).
_SENDFILE_FALLBACK_READBUFFER_SIZE = 1024 * 256


def reject_ssl_socket(sock: Any) -> None:
    """A transport or `sock_*` call needs a plain socket (TLS is layered on
    top by the loop): `TypeError` for an `ssl.SSLSocket`."""
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def check_socket(loop: TetherEventLoop, sock: Any) -> None:
    """The checks of the `sock_*` methods: a plain socket, and in debug mode
    a non-blocking one (those methods use the socket as they get it;
    ``create_server(sock=...)`` and the like make it non-blocking
    themselves, so they check only `reject_ssl_socket`)."""
    reject_ssl_socket(sock)
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


async def wait_ready(loop: TetherEventLoop, fd: int, direction: int) -> None:
    """Wait until `fd` is readable (`READER`) or writable (`WRITER`), through
    a one-shot fd callback. Cancellable."""
    selector = loop._get_selector()
    future = loop.create_future()

    def ready() -> None:
        if not future.done():
            future.set_result(None)

    handle = selector.add(fd, direction, ready, ())

    def done(_: object) -> None:
        if not handle.cancelled():
            selector.remove(fd, direction)

    future.add_done_callback(done)
    await future


async def sock_recv(loop: TetherEventLoop, sock: Any, n: int) -> bytes:
    check_socket(loop, sock)
    while True:
        try:
            return sock.recv(n)  # type: ignore[no-any-return]
        except (BlockingIOError, InterruptedError):
            pass
        await wait_ready(loop, sock.fileno(), READER)


async def sock_recv_into(loop: TetherEventLoop, sock: Any, buf: Any) -> int:
    check_socket(loop, sock)
    while True:
        try:
            return sock.recv_into(buf)  # type: ignore[no-any-return]
        except (BlockingIOError, InterruptedError):
            pass
        await wait_ready(loop, sock.fileno(), READER)


async def sock_recvfrom(loop: TetherEventLoop, sock: Any, bufsize: int) -> tuple[bytes, Any]:
    check_socket(loop, sock)
    while True:
        try:
            return sock.recvfrom(bufsize)  # type: ignore[no-any-return]
        except (BlockingIOError, InterruptedError):
            pass
        await wait_ready(loop, sock.fileno(), READER)


async def sock_recvfrom_into(
    loop: TetherEventLoop, sock: Any, buf: Any, nbytes: int = 0
) -> tuple[int, Any]:
    check_socket(loop, sock)
    if not nbytes:
        nbytes = len(buf)
    while True:
        try:
            return sock.recvfrom_into(buf, nbytes)  # type: ignore[no-any-return]
        except (BlockingIOError, InterruptedError):
            pass
        await wait_ready(loop, sock.fileno(), READER)


async def sock_sendall(loop: TetherEventLoop, sock: Any, data: Any) -> None:
    check_socket(loop, sock)
    view = memoryview(data)
    try:
        while view:
            try:
                sent = sock.send(view)
            except (BlockingIOError, InterruptedError):
                sent = 0
            view = view[sent:]
            if view:
                await wait_ready(loop, sock.fileno(), WRITER)
    finally:
        view.release()


async def sock_sendto(loop: TetherEventLoop, sock: Any, data: Any, address: Any) -> int:
    check_socket(loop, sock)
    while True:
        try:
            return sock.sendto(data, address)  # type: ignore[no-any-return]
        except (BlockingIOError, InterruptedError):
            pass
        await wait_ready(loop, sock.fileno(), WRITER)


async def sock_connect(loop: TetherEventLoop, sock: Any, address: Any) -> None:
    check_socket(loop, sock)
    if sock.family == socket.AF_INET or (_HAS_IPV6 and sock.family == socket.AF_INET6):
        resolved = await ensure_resolved(
            loop, address, family=sock.family, type=sock.type, proto=sock.proto
        )
        address = resolved[0][4]
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    while True:
        await wait_ready(loop, sock.fileno(), WRITER)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            return
        if err not in (errno.EINPROGRESS, errno.EINTR):
            raise OSError(err, f"Connect call failed {address}")


async def sock_accept(loop: TetherEventLoop, sock: Any) -> tuple[Any, Any]:
    check_socket(loop, sock)
    while True:
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address
        except (BlockingIOError, InterruptedError):
            pass
        await wait_ready(loop, sock.fileno(), READER)


async def sock_sendfile(
    loop: TetherEventLoop,
    sock: Any,
    file: Any,
    offset: int = 0,
    count: int | None = None,
    *,
    fallback: bool | None = True,
) -> int:
    check_socket(loop, sock)
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")
    if not fallback:
        raise SendfileNotAvailableError(
            f"syscall sendfile is not available for socket {sock!r} and file {file!r} combination"
        )

    async def send(data: memoryview) -> None:
        await sock_sendall(loop, sock, data)

    return await send_file_in_chunks(
        loop, file, offset, count, _SENDFILE_FALLBACK_READBUFFER_SIZE, send
    )


async def send_file_in_chunks(
    loop: TetherEventLoop,
    file: Any,
    offset: int,
    count: int | None,
    chunk_size: int,
    send: Callable[[memoryview], Awaitable[None]],
) -> int:
    """asyncio's sendfile fallback: read `file` from `offset` (up to `count`
    bytes, all if None) in chunks, in the default executor, and pass each to
    ``await send(chunk)`` (the chunk's buffer is reused afterwards). Leaves
    the file's position after the last byte sent, and returns how many were
    sent. Cancellable between chunks."""
    if offset:
        file.seek(offset)
    blocksize = min(count, chunk_size) if count else chunk_size
    buf = bytearray(blocksize)
    total_sent = 0
    try:
        while True:
            if count:
                blocksize = min(count - total_sent, blocksize)
                if blocksize <= 0:
                    break
            view = memoryview(buf)[:blocksize]
            read = await loop.run_in_executor(None, file.readinto, view)
            if not read:
                break
            await send(view[:read])
            total_sent += read
        return total_sent
    finally:
        if total_sent > 0 and hasattr(file, "seek"):
            file.seek(offset + total_sent)


def remove_stale_unix_socket(path: Any) -> None:
    """Before binding a UNIX socket to `path` (not in the abstract
    namespace), remove a socket file left there, as asyncio does; anything
    else at `path` is left for ``bind`` to refuse."""
    if path[0] in (0, "\x00"):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)


# -- name resolution ----------------------------------------------------------


def ipaddr_info(
    host: Any, port: Any, family: int, type: int, proto: int, flowinfo: int = 0, scopeid: int = 0
) -> tuple[Any, ...] | None:
    """The getaddrinfo entry for a numeric `host`, or None if resolution is
    needed (saves a thread round trip for addresses that are already IPs)."""
    if proto not in {0, socket.IPPROTO_TCP, socket.IPPROTO_UDP} or host is None:
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None or port == b"" or port == "":
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None
    families: list[int] = [family]
    if family == socket.AF_UNSPEC:
        families = [socket.AF_INET, socket.AF_INET6] if _HAS_IPV6 else [socket.AF_INET]
    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        return None
    for af in families:
        try:
            socket.inet_pton(af, host)
        except OSError:
            continue
        if _HAS_IPV6 and af == socket.AF_INET6:
            return af, type, proto, "", (host, port, flowinfo, scopeid)
        return af, type, proto, "", (host, port)
    return None


async def getaddrinfo(
    loop: TetherEventLoop,
    host: Any,
    port: Any,
    *,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[Any]:
    return await loop.run_in_executor(
        None, socket.getaddrinfo, host, port, family, type, proto, flags
    )


async def ensure_resolved(
    loop: TetherEventLoop,
    address: Any,
    *,
    family: int = 0,
    type: int = socket.SOCK_STREAM,
    proto: int = 0,
    flags: int = 0,
) -> list[Any]:
    host, port = address[:2]
    info = ipaddr_info(host, port, family, type, proto, *address[2:])
    if info is not None:
        return [info]
    return await loop.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)

"""`TetherEventLoop`: an `asyncio.AbstractEventLoop` that runs on tether's kernel.

`LoopCore` (`_loop_core.py`) runs the loop on the kernel: segments, tasks,
callbacks, timers. This class adds the rest of asyncio's loop API on top
of it: closing the loop, executors and the shutdown of async generators,
error handling, and the I/O methods, each delegating to the module of its
concept: file-descriptor callbacks (`_selector.py`), sockets
(`_sockets.py`), signals (`_signals.py`), connections and servers
(`_connections.py`), datagrams (`_datagram.py`), pipes (`_pipes.py`) and
subprocesses (`_subprocess.py`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

from . import _connections, _datagram, _pipes, _sockets, _subprocess
from ._futures import wrap_reported
from ._gather import gather
from ._loop_core import LoopCore
from ._selector import READER, WRITER, Selector
from ._thread_reports import ThreadReports
from ._timeouts import timeout as aio_timeout

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

logger = logging.getLogger("asyncio")


class TetherEventLoop(LoopCore):
    """An asyncio event loop whose tasks are tether kernel tasks.

    Create one with `tether.aio.new_event_loop()` (or use `tether.aio.run`).
    It implements `asyncio.AbstractEventLoop`, and while it runs it is what
    the standard library's `asyncio.get_running_loop()` returns.

    Args:
      clock: a tether clock for the loop's time (`loop.time()`) and its
        timers; default `time.monotonic`, as asyncio's loop. Pass
        ``tether.testing.MockClock(autojump_threshold=0)`` for virtual time
        in tests. A tether extension.
    """

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        """Close the loop: drop pending callbacks and timers, and shut the
        default executor down without waiting for it. Idempotent.

        Raises `RuntimeError` if the loop is running."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._closed = True
        self._pending.clear()
        self._threadsafe.clear()
        self._timers.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._signals.close()
        if self._selector is not None:
            self._selector.close()
            # (It refers to the loop: dropped, so that no cycle is left.)
            self._selector = None

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # -- futures ---------------------------------------------------------------

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[Ts]], T],
        *args: *Ts,
    ) -> asyncio.Future[T]:
        """Run ``func(*args)`` in `executor` (default: the loop's
        `ThreadPoolExecutor`) and return an awaitable future for the result.

        Cancelling the future cancels the call if it has not started yet."""

        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        future = executor.submit(func, *args)
        # (Counted once submitted: the kernel must not think the run stuck
        # while the thread works; see `_thread_reports.py`. Not a job
        # submitted from another thread while the loop runs: asyncio's API
        # is not for that, but such calls worked, and still do.)
        if self._thread_id is not None and self._thread_id != threading.get_ident():
            return wrap_reported(future, self, None)
        reports = self._thread_reports
        reports.job_started(self._nursery is not None)
        return wrap_reported(future, self, reports.job_reported)

    def set_default_executor(self, executor: Any) -> None:
        """Use `executor` (a `concurrent.futures.ThreadPoolExecutor`) for
        ``run_in_executor(None, ...)``."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down and wait (in a helper thread) for
        its threads to finish, at most `timeout` seconds. Cancellable: the
        shutdown continues in the background."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        future = self.create_future()
        reports = self._thread_reports

        def shut_down() -> None:
            try:
                executor.shutdown(wait=True)
                if not self.is_closed():
                    self.call_soon_threadsafe(_report_shutdown, reports, future, None)
            except Exception as exc:
                if not self.is_closed():
                    self.call_soon_threadsafe(_report_shutdown, reports, future, exc)

        thread = threading.Thread(target=shut_down, name="tether.aio executor shutdown")
        reports.job_started(self._nursery is not None)
        try:
            thread.start()
        except BaseException:
            reports.job_reported()
            raise
        try:
            async with aio_timeout(timeout):
                await future
        except TimeoutError:
            warnings.warn(
                f"The executor did not finishing joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator first iterated in this loop that is
        still alive, concurrently; errors go to the exception handler.
        Cancelling it cancels the closing generators (as `gather`)."""

        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await gather(*[agen.aclose() for agen in closing], return_exceptions=True)
        for result, agen in zip(results, closing, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # -- errors ----------------------------------------------------------------

    def get_exception_handler(self) -> Callable[..., object] | None:
        """The handler set with `set_exception_handler`, or None."""
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., object] | None) -> None:
        """Use ``handler(loop, context)`` for errors nobody else can handle
        (None: back to `default_exception_handler`)."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log `context` (``message``, ``exception`` and whatever else it
        holds) to the ``asyncio`` logger, as asyncio does."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any = (
            (type(exception), exception, exception.__traceback__)
            if exception is not None
            else False
        )
        current = self._current_handle
        if "source_traceback" not in context and current is not None and current._source_traceback:
            context["handle_traceback"] = current._source_traceback
        lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                text = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n" + text.rstrip()
            elif key == "handle_traceback":
                text = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n" + text.rstrip()
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Pass `context` to the exception handler. An error raised by the
        handler itself is logged, never propagated (except
        KeyboardInterrupt and SystemExit)."""
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            run_in = _handler_context(context) if _HANDLER_IN_CONTEXT else None
            if run_in is not None:
                run_in.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an "
                    "unexpected error in custom exception handler",
                    exc_info=True,
                )

    # -- file descriptors, sockets, signals --------------------------------------

    def _get_selector(self) -> Selector:
        selector = self._selector
        if selector is None:
            selector = self._selector = Selector(self)
            if self._nursery is not None:
                selector.start(self._nursery)
        return selector

    def add_reader(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Call ``callback(*args)`` whenever `fd` (an int or an object with
        ``fileno()``) is readable, until `remove_reader`. Replaces the
        fd's previous reader.

        Raises `RuntimeError` if an open transport of this loop uses `fd`,
        `OSError` if `fd` is closed, `ValueError` for an invalid one."""
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching `fd` for reading; returns whether it was watched.
        Raises `RuntimeError` if an open transport of this loop uses `fd`."""
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Call ``callback(*args)`` whenever `fd` is writable, until
        `remove_writer`. Replaces the fd's previous writer. Raises as
        `add_reader`."""
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching `fd` for writing; returns whether it was watched.
        Raises `RuntimeError` if an open transport of this loop uses `fd`."""
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    # The same without the transport check: for the loop's own transports
    # (and, as in asyncio's selector loop, for code that calls them).

    def _add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        self._check_closed()
        self._get_selector().add(fd, READER, callback, args)

    def _remove_reader(self, fd: Any) -> bool:
        if self._closed or self._selector is None:
            return False
        return self._selector.remove(fd, READER)

    def _add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        self._check_closed()
        self._get_selector().add(fd, WRITER, callback, args)

    def _remove_writer(self, fd: Any) -> bool:
        if self._closed or self._selector is None:
            return False
        return self._selector.remove(fd, WRITER)

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        if not self._transports:
            return
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        """Receive up to `nbytes` from the non-blocking `sock`. Cancellable."""
        return await _sockets.sock_recv(self, sock, nbytes)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into `buf`; returns the number of bytes. Cancellable."""
        return await _sockets.sock_recv_into(self, sock, buf)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to `bufsize` bytes. Cancellable."""
        return await _sockets.sock_recvfrom(self, sock, bufsize)

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: Any, nbytes: int = 0
    ) -> tuple[int, Any]:
        """Receive a datagram into `buf`. Cancellable."""
        return await _sockets.sock_recvfrom_into(self, sock, buf, nbytes)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of `data`. Cancellable; if cancelled, part of it may have
        been sent."""
        await _sockets.sock_sendall(self, sock, data)

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        """Send a datagram to `address`. Cancellable."""
        return await _sockets.sock_sendto(self, sock, data, address)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect `sock` to `address` (resolved first if it is a host name).
        Cancellable."""
        await _sockets.sock_connect(self, sock, address)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection on the listening `sock`; returns ``(conn,
        address)`` with `conn` non-blocking. Cancellable."""
        return await _sockets.sock_accept(self, sock)

    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int:
        """Send `file` over `sock` (read in the default executor and sent
        with `sock_sendall`); returns the number of bytes sent. Cancellable;
        the file position then reflects what was sent."""
        return await _sockets.sock_sendfile(self, sock, file, offset, count, fallback=fallback)

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        """`socket.getaddrinfo`, run in the default executor. Cancellable
        (the lookup itself finishes in its thread)."""
        return await _sockets.getaddrinfo(
            self, host, port, family=family, type=type, proto=proto, flags=flags
        )

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        """`socket.getnameinfo`, run in the default executor. Cancellable
        (the lookup itself finishes in its thread)."""
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts
    ) -> None:
        """Call ``callback(*args)`` (soon, from the loop) when signal `sig`
        arrives. Main thread only.

        Raises `RuntimeError` outside the main thread or for a signal that
        cannot be caught, `ValueError` for an invalid signal number and
        `TypeError` for a coroutine function."""
        self._signals.add(sig, callback, args)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler of `sig` (restoring the default disposition);
        returns whether there was one."""
        return self._signals.remove(sig)

    # -- transports, servers, pipes, subprocesses -------------------------------

    async def create_connection(
        self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Open a stream connection to `host`:`port` (or over ``sock=``) and
        return ``(transport, protocol)``; asyncio's arguments (``ssl``,
        ``family``, ``local_addr``, ``server_hostname``, ``all_errors``...).
        Addresses are tried one after the other. Cancellable."""
        return await _connections.create_connection(self, protocol_factory, host, port, **kwargs)

    async def create_server(
        self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, **kwargs: Any
    ) -> asyncio.Server:
        """Listen on `host`:`port` (or ``sock=``) and return an
        `asyncio.Server` that accepts connections with `protocol_factory`;
        asyncio's arguments. Cancellable while resolving the address (the
        sockets are closed)."""
        return await _connections.create_server(self, protocol_factory, host, port, **kwargs)

    async def create_unix_connection(
        self, protocol_factory: Callable[[], Any], path: Any = None, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Like `create_connection`, to the Unix socket at `path`.
        Cancellable (the socket is closed)."""
        return await _connections.create_unix_connection(self, protocol_factory, path, **kwargs)

    async def create_unix_server(
        self, protocol_factory: Callable[[], Any], path: Any = None, **kwargs: Any
    ) -> asyncio.Server:
        """Like `create_server`, on the Unix socket at `path` (a stale
        socket file there is removed first)."""
        return await _connections.create_unix_server(self, protocol_factory, path, **kwargs)

    async def connect_accepted_socket(
        self, protocol_factory: Callable[[], Any], sock: socket.socket, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Wrap an already accepted connection in a transport. Cancellable
        (the transport is closed)."""
        return await _connections.connect_accepted_socket(self, protocol_factory, sock, **kwargs)

    async def start_tls(self, transport: Any, protocol: Any, sslcontext: Any, **kwargs: Any) -> Any:
        """Upgrade `transport` to TLS and return the new transport.
        Cancellable: cancelling the handshake closes `transport`."""
        return await _connections.start_tls(self, transport, protocol, sslcontext, **kwargs)

    async def sendfile(
        self, transport: Any, file: Any, offset: int = 0, count: int | None = None, **kwargs: Any
    ) -> int:
        """Send `file` over `transport` (read in the default executor,
        written with flow control); returns the number of bytes sent.
        Cancellable; the file position then reflects what was sent."""
        return await _connections.sendfile(self, transport, file, offset, count, **kwargs)

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], Any],
        local_addr: Any = None,
        remote_addr: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Create a datagram (UDP, or Unix datagram) endpoint bound to
        `local_addr` and/or connected to `remote_addr` (or over ``sock=``);
        returns ``(transport, protocol)``. asyncio's arguments (``family``,
        ``reuse_port``, ``allow_broadcast``...). Cancellable while resolving
        or connecting (the socket is closed)."""
        return await _datagram.create_datagram_endpoint(
            self, protocol_factory, local_addr, remote_addr, **kwargs
        )

    async def connect_read_pipe(
        self, protocol_factory: Callable[[], Any], pipe: Any
    ) -> tuple[Any, Any]:
        """Read from the pipe `pipe` (a file object) into a protocol;
        returns ``(transport, protocol)``. Cancellable (the transport is
        closed)."""
        return await _pipes.connect_read_pipe(self, protocol_factory, pipe)

    async def connect_write_pipe(
        self, protocol_factory: Callable[[], Any], pipe: Any
    ) -> tuple[Any, Any]:
        """Write to the pipe `pipe` through a transport; returns
        ``(transport, protocol)``. Cancellable (the transport is closed)."""
        return await _pipes.connect_write_pipe(self, protocol_factory, pipe)

    async def subprocess_exec(
        self,
        protocol_factory: Callable[[], Any],
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Start `program` with `args` and return ``(transport, protocol)``;
        see `asyncio.create_subprocess_exec` for the high-level API.
        Cancellable while the pipes connect: the process is then killed and
        waited for."""
        if shell:
            raise ValueError("shell must be False")
        _subprocess.check_subprocess_arguments(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await _subprocess.make_subprocess_transport(
            self, protocol, (program, *args), False, stdin, stdout, stderr, bufsize, **kwargs
        )
        return transport, protocol

    async def subprocess_shell(
        self,
        protocol_factory: Callable[[], Any],
        cmd: Any,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run the shell command `cmd`; like `subprocess_exec`."""
        if not isinstance(cmd, bytes | str):
            raise ValueError("cmd must be a string")
        if not shell:
            raise ValueError("shell must be True")
        _subprocess.check_subprocess_arguments(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await _subprocess.make_subprocess_transport(
            self, protocol, cmd, True, stdin, stdout, stderr, bufsize, **kwargs
        )
        return transport, protocol

    def _start_serving(self, protocol_factory: Any, sock: Any, *args: Any) -> None:
        # Called by asyncio.Server.
        _connections.start_serving(self, protocol_factory, sock, *args)

    def _stop_serving(self, sock: Any) -> None:
        # Called by asyncio.Server.
        _connections.stop_serving(self, sock)


#: From Python 3.12 on, a custom exception handler runs in the context of
#: the task, future or handle the error came from (so it sees the context
#: variables the failing code had set).
_HANDLER_IN_CONTEXT = sys.version_info >= (3, 12)


def _handler_context(context: dict[str, Any]) -> Any:
    """The `contextvars.Context` of the task, future or handle named by an
    exception handler's `context` dict, or None."""
    thing = context.get("task")
    if thing is None:
        # (A task is a future too, and is sometimes passed as one.)
        thing = context.get("future")
    if thing is None:
        thing = context.get("handle")
    get_context = getattr(thing, "get_context", None)
    run_in = get_context() if get_context is not None else None
    return run_in if hasattr(run_in, "run") else None


def _report_shutdown(
    reports: ThreadReports, future: asyncio.Future[Any], exc: BaseException | None
) -> None:
    # (In the loop's thread: the default executor's shutdown is over.)
    reports.job_reported()
    if future.cancelled():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)

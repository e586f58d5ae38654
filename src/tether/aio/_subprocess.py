"""Subprocesses: the loop's `subprocess_exec` / `subprocess_shell`.

The transport is the standard library's generic subprocess transport
(`asyncio.base_subprocess.BaseSubprocessTransport`, which talks to the loop
only through its public methods: ``connect_read_pipe``,
``connect_write_pipe``, ``call_soon``...), so `asyncio.create_subprocess_exec`
and its `Process` (``communicate``, ``wait``, pipes as streams) behave
exactly as in asyncio. What the loop provides is starting the process and
noticing that it exited:

- with a pidfd (Linux 5.3+), the loop watches it with a reader callback
  (a kernel task in `wait_readable`), then reaps the child;
- elsewhere, a helper thread waits in `os.waitpid` and reports back with
  ``call_soon_threadsafe``;
- but if a child watcher was set on the event-loop policy
  (``asyncio.set_child_watcher``, Python 3.11 to 3.13, deprecated since
  3.12), the loop uses it as asyncio's loop does: such a watcher may reap
  every child itself (``FastChildWatcher``), so only it knows the exit
  status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from asyncio import base_subprocess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._loop import TetherEventLoop


class SubprocessTransport(base_subprocess.BaseSubprocessTransport):
    """The standard library's subprocess transport, started with
    `subprocess.Popen`."""

    def _start(
        self,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        **kwargs: Any,
    ) -> None:
        self._proc = subprocess.Popen(
            args,
            shell=shell,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=False,
            bufsize=bufsize,
            **kwargs,
        )


def explicit_child_watcher() -> Any:
    """The child watcher the event-loop policy holds (one set with
    ``asyncio.set_child_watcher``, or made by ``get_child_watcher``), or
    None. tether's loop never makes one itself."""
    policy = asyncio.get_event_loop_policy()
    # (A private field of the standard library's Unix policy: asking through
    # get_child_watcher() would create a watcher, and warn on 3.12+.)
    return getattr(policy, "_watcher", None)


def child_watcher_callback(pid: int, returncode: int, transport: SubprocessTransport) -> None:
    """What a child watcher calls (from any thread) when the child exits."""
    loop = transport._loop
    if not loop.is_closed():
        loop.call_soon_threadsafe(transport._process_exited, returncode)


def _returncode(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def watch_child(loop: TetherEventLoop, transport: SubprocessTransport) -> None:
    """Arrange for ``transport._process_exited(returncode)`` to be called
    (from the loop) when the child exits."""
    pid = transport.get_pid()
    assert pid is not None
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
    if pidfd is None:
        _watch_with_thread(loop, transport, pid)
        return

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # Reaped by someone else; asyncio reports 255 then.
            returncode = 255
        else:
            returncode = _returncode(status)
        transport._process_exited(returncode)

    loop.add_reader(pidfd, on_exit)


def _watch_with_thread(loop: TetherEventLoop, transport: SubprocessTransport, pid: int) -> None:
    def wait() -> None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            returncode = 255
        else:
            returncode = _returncode(status)
        if not loop.is_closed():
            loop.call_soon_threadsafe(transport._process_exited, returncode)

    threading.Thread(target=wait, name=f"tether.aio waitpid {pid}", daemon=True).start()


# -- the loop's subprocess_exec / subprocess_shell -------------------------------


async def make_subprocess_transport(
    loop: TetherEventLoop,
    protocol: asyncio.BaseProtocol,
    args: Any,
    shell: bool,
    stdin: Any,
    stdout: Any,
    stderr: Any,
    bufsize: int,
    **kwargs: Any,
) -> SubprocessTransport:
    explicit = explicit_child_watcher()
    with explicit if explicit is not None else contextlib.nullcontext() as entered:
        # (Python 3.11 uses what entering the watcher returns; 3.12+ the
        # watcher itself.)
        watcher = entered if sys.version_info < (3, 12) else explicit
        if watcher is not None and not watcher.is_active():
            # Before the process is started, as asyncio checks.
            raise RuntimeError(
                "asyncio.get_child_watcher() is not activated, subprocess support is not installed."
            )
        waiter = loop.create_future()
        transport = SubprocessTransport(
            loop,
            protocol,  # type: ignore[arg-type]
            args,
            shell,
            stdin,
            stdout,
            stderr,
            bufsize,
            waiter=waiter,
            **kwargs,
        )
        if watcher is None:
            watch_child(loop, transport)
        else:
            watcher.add_child_handler(transport.get_pid(), child_watcher_callback, transport)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
    return transport


def check_subprocess_arguments(
    universal_newlines: bool,
    bufsize: int,
    text: Any,
    encoding: Any,
    errors: Any,
) -> None:
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")

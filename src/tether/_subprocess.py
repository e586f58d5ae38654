"""Child processes: `Process` and `open_process`.

`run_process` (supervision, cancellation, captured output) lives in
`_subprocess_run.py`; waiting for an exit without reaping it, in
`_subprocess_wait.py`.

What this module must do. `open_process` starts a child with
`subprocess.Popen` (in a worker thread: forking and exec'ing can block) and
returns a `Process`: the `Popen` methods a user expects (`returncode`,
`poll`, `send_signal`, `terminate`, `kill`), a `wait` that parks the task
instead of blocking the run, and, for every standard stream asked for as
`subprocess.PIPE`, a tether stream (`FdStream`) on the parent's end.

Design.

* `_PipeSet` is the plumbing of one spawn. Asked what Popen should get for
  a standard stream, it answers with the redirection unchanged, or, for
  `subprocess.PIPE`, it makes a pipe, keeps the parent's end as an
  `FdStream` under the stream's name and hands back the child's end. It
  owns both kinds of end until the spawn is over: the child's ends are
  closed then whatever happened (the child has its copies), the parent's
  ends only if the spawn failed. So a failed spawn leaks no descriptor.
* `Process` is a thin async face on one `Popen`, which stays the only
  reaper: the exit status comes from one place and is never lost, and
  `returncode` asks ``Popen.poll()`` every time (never a stale None).
* Waiting goes through one `ChildExitWaiter` per process (a pidfd, a
  waitid thread or polling). One task at a time parks on it, under
  `_wait_lock`; the others queue on the lock and find the child reaped
  when their turn comes. Once the child is reaped the waiter is closed,
  which releases its pidfd (and wakes a task parked on it), so a finished
  `Process` holds no descriptor.
"""

from __future__ import annotations

import os
import signal
import subprocess
from abc import ABCMeta
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Final, NoReturn, Protocol, TypeAlias, cast, final

from ._core import CancelScope
from ._highlevel_generic import StapledStream
from ._subprocess_wait import ChildExitWaiter
from ._sync import Lock
from ._threads import to_thread_run_sync
from ._unix_pipes import FdStream
from .abc import AsyncResource, ReceiveStream, SendStream

__all__ = ["Process", "open_process"]

#: One argument of a command: text, bytes or a path object.
CommandPart: TypeAlias = os.PathLike[str] | os.PathLike[bytes] | str | bytes
Command: TypeAlias = CommandPart | Sequence[CommandPart]

#: Popen options that would turn the pipes into buffered or text files;
#: tether's pipes are byte streams, so they are refused.
_TEXT_OR_BUFFER_OPTIONS: Final = ("universal_newlines", "text", "encoding", "errors", "bufsize")

#: The standard streams, in the order Popen takes them.
_STANDARD_STREAMS: Final = ("stdin", "stdout", "stderr")


class _FilenoOwner(Protocol):
    """Anything with a ``fileno()`` method (an open file, a socket)."""

    def fileno(self) -> int: ...


#: What ``stdin``/``stdout``/``stderr`` accept: `subprocess.PIPE`,
#: `subprocess.DEVNULL`, `subprocess.STDOUT` (stderr only), a file
#: descriptor, an object with ``fileno()``, or None (inherit the parent's).
Redirect: TypeAlias = int | _FilenoOwner | None


def _is_pipe(redirect: object) -> bool:
    return isinstance(redirect, int) and redirect == subprocess.PIPE


class _PipeSet:
    """The pipes of one spawn (see the module docstring)."""

    __slots__ = ("child_ends", "parent_ends")

    def __init__(self) -> None:
        self.parent_ends: dict[str, FdStream] = {}
        self.child_ends: list[int] = []

    def for_child(self, name: str, redirect: Redirect) -> Redirect:
        """What Popen is given for the standard stream `name`."""
        if not _is_pipe(redirect):
            # stderr=subprocess.STDOUT included: Popen sends it wherever
            # stdout goes (our pipe, a file, or the parent's).
            return redirect
        read_end, write_end = os.pipe()
        parent_end, child_end = (write_end, read_end) if name == "stdin" else (read_end, write_end)
        self.child_ends.append(child_end)
        try:
            self.parent_ends[name] = FdStream(parent_end)
        except BaseException:
            os.close(parent_end)
            raise
        return child_end

    def close_child_ends(self) -> None:
        while self.child_ends:
            os.close(self.child_ends.pop())

    def close_parent_ends(self) -> None:
        for stream in self.parent_ends.values():
            stream.close()
        self.parent_ends.clear()


class _NoPublicConstructor(ABCMeta):
    """Metaclass that refuses ``Process(...)``: a Process only makes sense
    for a child that tether spawned and watches."""

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor: start a "
            "child with tether.run_process() (inside nursery.start() to get its "
            "Process) or tether.lowlevel.open_process()"
        )


def _status_text(returncode: int | None, pid: int) -> str:
    if returncode is None:
        return f"running with PID {pid}"
    if returncode >= 0:
        return f"exited with status {returncode}"
    return f"exited with signal {-returncode}"


@final
class Process(AsyncResource, metaclass=_NoPublicConstructor):
    """A child process: like `subprocess.Popen`, but waiting is async and
    the pipes are tether streams.

    There is no public constructor. Get one from
    ``await nursery.start(tether.run_process, command, ...)`` (the child is
    supervised: waited for, killed if the task is cancelled) or from
    ``await tether.lowlevel.open_process(command, ...)`` (you manage it).

    Attributes:
      args: the command the process was started with.
      pid: its process id.
      stdin: a `tether.abc.SendStream` feeding the child's standard input,
        if it was opened with ``stdin=subprocess.PIPE``; otherwise None.
      stdout: a `tether.abc.ReceiveStream` of the child's standard output,
        if ``stdout=subprocess.PIPE``; otherwise None.
      stderr: likewise for standard error (``stderr=subprocess.PIPE``).
      stdio: a `tether.StapledStream` sending to `stdin` and receiving from
        `stdout`, when both are pipes; otherwise None.

    ``async with process:`` calls `aclose` on the way out (a tether
    extension; trio's `Process` no longer has it).
    """

    # What Popen's text-mode attributes say for byte pipes without buffering.
    encoding: Final[None] = None
    errors: Final[None] = None
    universal_newlines: Final[bool] = False

    args: Command
    pid: int
    stdin: SendStream | None
    stdout: ReceiveStream | None
    stderr: ReceiveStream | None
    stdio: StapledStream[SendStream, ReceiveStream] | None
    _popen: subprocess.Popen[bytes]
    _exit_waiter: ChildExitWaiter
    _wait_lock: Lock

    @classmethod
    def _create(cls, popen: subprocess.Popen[bytes], pipes: Mapping[str, FdStream]) -> Process:
        process = cls.__new__(cls)
        process._popen = popen
        process._exit_waiter = ChildExitWaiter(popen)
        process._wait_lock = Lock()
        process.args = popen.args
        process.pid = popen.pid
        process.stdin = pipes.get("stdin")
        process.stdout = pipes.get("stdout")
        process.stderr = pipes.get("stderr")
        process.stdio = None
        if process.stdin is not None and process.stdout is not None:
            process.stdio = StapledStream(process.stdin, process.stdout)
        return process

    def __repr__(self) -> str:
        return f"<tether.Process {self.args!r}: {_status_text(self.returncode, self.pid)}>"

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while the child runs. Negative means
        killed by that signal (``-9`` for SIGKILL). Always current: no need
        to call `poll` or `wait` first. Not a checkpoint."""
        code = self._popen.poll()
        if code is None:
            return None
        # Reaped: nobody will wait on the pidfd again.
        self._exit_waiter.close()
        return code

    def poll(self) -> int | None:
        """The same as `returncode` (kept for code ported from
        `subprocess`). Not a checkpoint."""
        return self.returncode

    async def wait(self) -> int:
        """Wait until the child exits and return its `returncode`.

        A checkpoint, also when the child has already exited. Cancellable:
        a cancelled wait changes nothing (the child keeps running, and a
        later `wait` works). Several tasks may wait at once.
        """
        # Taking the lock is the checkpoint, also for an exited child.
        async with self._wait_lock:
            code = self.returncode
            if code is None:
                await self._exit_waiter.wait_until_reapable()
                # The child is a zombie by now: Popen reaps it at once.
                code = self._popen.wait()
                self._exit_waiter.close()
        return code

    def kill(self) -> None:
        """Kill the child: ``SIGKILL`` on Unix (cannot be caught),
        ``TerminateProcess`` on Windows. Delivered asynchronously: `wait`
        for it. Not a checkpoint."""
        self._popen.kill()

    def terminate(self) -> None:
        """Ask the child to exit: ``SIGTERM`` on Unix (a child may catch or
        ignore it), ``TerminateProcess`` on Windows. Not a checkpoint; use
        `wait` to know when it has exited."""
        self._popen.terminate()

    def send_signal(self, sig: signal.Signals | int) -> None:
        """Send signal `sig` to the child (e.g. ``signal.SIGUSR1``). Does
        nothing once the child has been reaped, so a reused pid is never
        signalled. Not a checkpoint."""
        self._popen.send_signal(sig)

    async def aclose(self) -> None:
        """Close the pipes to the child, then wait for it to exit.

        If cancelled while waiting, the child is killed and waited for
        (shielded) before `Cancelled` propagates, so no zombie is left. A
        child that keeps running without reading its closed stdin is waited
        for as long as it runs: put a deadline around the call.
        """
        with CancelScope(shield=True):
            for pipe in (self.stdin, self.stdout, self.stderr):
                if pipe is not None:
                    await pipe.aclose()
        try:
            await self.wait()
        except BaseException:
            # Cancelled (or failed) before the exit: do not leave a zombie.
            with CancelScope(shield=True):
                if self.returncode is None:
                    self.kill()
                await self.wait()
            raise


def _check_options(command: object, options: Mapping[str, Any]) -> None:
    refused = [name for name in _TEXT_OR_BUFFER_OPTIONS if options.get(name)]
    if refused:
        raise TypeError(
            "tether.Process only supports communicating over unbuffered byte "
            f"streams; the '{refused[0]}' option is not supported (decode the bytes "
            "you receive yourself)"
        )
    if os.name != "posix":
        return
    wants_shell = bool(options.get("shell"))
    one_string = isinstance(command, (str, bytes))
    if one_string and not wants_shell:
        raise TypeError(
            f"command {command!r} is a single string but shell=False: pass a list of "
            "arguments (e.g. ['ls', '-l']), or shell=True to let the shell parse it"
        )
    if wants_shell and not one_string:
        raise TypeError(
            "with shell=True the command must be one string (or bytes) for the shell "
            f"to parse, not {type(command).__name__}; join a list with shlex.join()"
        )


async def open_process(
    command: Command,
    *,
    stdin: Redirect = None,
    stdout: Redirect = None,
    stderr: Redirect = None,
    **options: Any,
) -> Process:
    """Start `command` in a child process and return its `Process`.

    Nothing supervises the child: waiting for it, killing it and closing
    its pipes is up to you (`tether.run_process` does all that). The
    pipes exist only for the streams given as `subprocess.PIPE`.

    Args:
      command: a sequence of arguments, the program first
        (``["ls", "-l", "my dir"]``); or, with ``shell=True``, one string
        for the shell to parse.
      stdin: `subprocess.PIPE` (then `Process.stdin` is a stream),
        `subprocess.DEVNULL`, a file descriptor or an object with
        ``fileno()``, or None to share the parent's standard input.
      stdout: likewise for standard output (`Process.stdout`).
      stderr: likewise, plus `subprocess.STDOUT` to send it where stdout
        goes.
      **options: other `subprocess.Popen` options (``cwd``, ``env``,
        ``shell``, ``start_new_session``, ...), except the text and buffering
        ones, which tether's byte streams do not use.

    A checkpoint (the spawn runs in a worker thread). If cancelled before
    the spawn starts, no child is created; once it has started the child is
    returned and the cancellation is delivered at the next checkpoint.

    Raises:
      TypeError: for a text/buffering option, or (on Unix) a single string
        without ``shell=True`` or a sequence with ``shell=True``.
      OSError: if the child cannot be started (program not found, not
        executable, ...).
    """
    _check_options(command, options)
    redirects = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
    if os.name != "posix":
        piped = [name for name in _STANDARD_STREAMS if _is_pipe(redirects[name])]
        if piped:
            raise NotImplementedError(
                f"tether has no subprocess pipes on {os.name} yet ({', '.join(piped)}="
                "subprocess.PIPE): redirect to a file or subprocess.DEVNULL instead"
            )
    pipes = _PipeSet()
    try:
        try:
            for name in _STANDARD_STREAMS:
                redirects[name] = pipes.for_child(name, redirects[name])
            spawned = await to_thread_run_sync(
                partial(subprocess.Popen, command, **redirects, **options)
            )
        finally:
            # Spawned or not, the parent has no use for the child's ends.
            pipes.close_child_ends()
    except BaseException:
        pipes.close_parent_ends()
        raise
    # The text options were refused above, so this is a bytes Popen (the
    # type checker cannot tell from **options).
    return Process._create(cast("subprocess.Popen[bytes]", spawned), pipes.parent_ends)

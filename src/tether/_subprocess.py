"""Child processes: `Process` and `open_process`.

`open_process` spawns a child with `subprocess.Popen` (in a worker thread:
forking and exec'ing can block) and wraps it in a `Process` whose pipes are
tether streams (`FdStream`) and whose `Process.wait` parks the task until
the child exits (`ChildExitWaiter`: a pidfd, a waitid thread, or polling).

Invariants:

* The child's ends of the pipes are always closed in the parent once the
  child has been spawned (or failed to spawn); the parent's ends are closed
  if spawning fails, so a failed spawn leaks no descriptor.
* Only `subprocess.Popen` reaps the child, so `returncode` comes from one
  place and the exit status is never lost. `returncode` and `poll` ask the
  OS every time (no stale ``None``).
* Once the child was reaped, its pidfd is closed (waking any task parked on
  it), so a finished `Process` holds no descriptor.

`run_process` (supervision, cancellation, captured output) lives in
`_subprocess_run.py`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from abc import ABCMeta
from collections.abc import Sequence
from contextlib import ExitStack
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

StrOrBytesPath: TypeAlias = str | bytes | os.PathLike[str] | os.PathLike[bytes]
Command: TypeAlias = StrOrBytesPath | Sequence[StrOrBytesPath]

#: Popen options that would turn the pipes into buffered or text files;
#: tether's pipes are byte streams, so they are refused.
_TEXT_OR_BUFFER_OPTIONS = ("universal_newlines", "text", "encoding", "errors", "bufsize")


class HasFileno(Protocol):
    """Anything with a ``fileno()`` method (an open file, a socket)."""

    def fileno(self) -> int: ...


#: What ``stdin``/``stdout``/``stderr`` accept: `subprocess.PIPE`,
#: `subprocess.DEVNULL`, `subprocess.STDOUT` (stderr only), a file
#: descriptor, an object with ``fileno()``, or None (inherit the parent's).
Redirect: TypeAlias = int | HasFileno | None


class _NoPublicConstructor(ABCMeta):
    """Metaclass that refuses ``Process(...)``: a Process only makes sense
    for a child that tether spawned and watches."""

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor: start a "
            "child with tether.run_process() (inside nursery.start() to get its "
            "Process) or tether.lowlevel.open_process()"
        )


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

    # Popen-compatible constants: the pipes carry bytes, unbuffered.
    universal_newlines: Final = False
    encoding: Final = None
    errors: Final = None

    args: StrOrBytesPath | Sequence[StrOrBytesPath]
    pid: int
    stdin: SendStream | None
    stdout: ReceiveStream | None
    stderr: ReceiveStream | None
    stdio: StapledStream[SendStream, ReceiveStream] | None
    _popen: subprocess.Popen[bytes]
    _exit_waiter: ChildExitWaiter
    _wait_lock: Lock

    @classmethod
    def _create(
        cls,
        popen: subprocess.Popen[bytes],
        stdin: SendStream | None,
        stdout: ReceiveStream | None,
        stderr: ReceiveStream | None,
    ) -> Process:
        self = cls.__new__(cls)
        self._popen = popen
        self._exit_waiter = ChildExitWaiter(popen)
        # One waiter at a time parks on the pidfd / event; the others queue
        # here, so every concurrent wait() returns once the child exited.
        self._wait_lock = Lock()
        self.args = popen.args
        self.pid = popen.pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdio = None
        if stdin is not None and stdout is not None:
            self.stdio = StapledStream(stdin, stdout)
        return self

    def __repr__(self) -> str:
        returncode = self.returncode
        if returncode is None:
            status = f"running with PID {self.pid}"
        elif returncode < 0:
            status = f"exited with signal {-returncode}"
        else:
            status = f"exited with status {returncode}"
        return f"<tether.Process {self.args!r}: {status}>"

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while the child runs. Negative means
        killed by that signal (``-9`` for SIGKILL). Always current: no need
        to call `poll` or `wait` first. Not a checkpoint."""
        result = self._popen.poll()
        if result is not None:
            self._exit_waiter.close()
        return result

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
        async with self._wait_lock:
            if self.poll() is None:
                await self._exit_waiter.wait_until_reapable()
                # The child is a zombie by now, so this returns at once.
                self._popen.wait()
                self._exit_waiter.close()
        returncode = self._popen.returncode
        assert returncode is not None
        return returncode

    def send_signal(self, sig: signal.Signals | int) -> None:
        """Send signal `sig` to the child (e.g. ``signal.SIGUSR1``). Does
        nothing once the child has been reaped, so a reused pid is never
        signalled. Not a checkpoint."""
        self._popen.send_signal(sig)

    def terminate(self) -> None:
        """Ask the child to exit: ``SIGTERM`` on Unix (a child may catch or
        ignore it), ``TerminateProcess`` on Windows. Not a checkpoint; use
        `wait` to know when it has exited."""
        self._popen.terminate()

    def kill(self) -> None:
        """Kill the child: ``SIGKILL`` on Unix (cannot be caught),
        ``TerminateProcess`` on Windows. Delivered asynchronously: `wait`
        for it. Not a checkpoint."""
        self._popen.kill()

    async def aclose(self) -> None:
        """Close the pipes to the child, then wait for it to exit.

        If cancelled while waiting, the child is killed and waited for
        (shielded) before `Cancelled` propagates, so no zombie is left. A
        child that keeps running without reading its closed stdin is waited
        for as long as it runs: put a deadline around the call.
        """
        with CancelScope(shield=True):
            for stream in (self.stdin, self.stdout, self.stderr):
                if stream is not None:
                    await stream.aclose()
        try:
            await self.wait()
        finally:
            if self._popen.returncode is None:
                self.kill()
                with CancelScope(shield=True):
                    await self.wait()


def _is_pipe(redirect: object) -> bool:
    return isinstance(redirect, int) and redirect == subprocess.PIPE


def _check_options(command: object, options: dict[str, Any]) -> None:
    for key in _TEXT_OR_BUFFER_OPTIONS:
        if options.get(key):
            raise TypeError(
                "tether.Process only supports communicating over unbuffered byte "
                f"streams; the '{key}' option is not supported (decode the bytes "
                "you receive yourself)"
            )
    if os.name != "posix":
        return
    shell = options.get("shell")
    if isinstance(command, (str, bytes)) and not shell:
        raise TypeError(
            f"command {command!r} is a single string but shell=False: pass a list of "
            "arguments (e.g. ['ls', '-l']), or shell=True to let the shell parse it"
        )
    if shell and not isinstance(command, (str, bytes)):
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
    if os.name != "posix":
        piped = [
            n for n, r in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)) if _is_pipe(r)
        ]
        if piped:
            raise NotImplementedError(
                f"tether has no subprocess pipes on {os.name} yet ({', '.join(piped)}="
                "subprocess.PIPE): redirect to a file or subprocess.DEVNULL instead"
            )
    our_stdin: FdStream | None = None
    our_stdout: FdStream | None = None
    our_stderr: FdStream | None = None
    child_stdin: Redirect = stdin
    child_stdout: Redirect = stdout
    child_stderr: Redirect = stderr
    with ExitStack() as close_child_ends, ExitStack() as close_ours_on_failure:
        if _is_pipe(stdin):
            child_stdin, write_end = os.pipe()
            close_child_ends.callback(os.close, child_stdin)
            our_stdin = FdStream(write_end)
            close_ours_on_failure.callback(our_stdin.close)
        if _is_pipe(stdout):
            read_end, child_stdout = os.pipe()
            close_child_ends.callback(os.close, child_stdout)
            our_stdout = FdStream(read_end)
            close_ours_on_failure.callback(our_stdout.close)
        if _is_pipe(stderr):
            read_end, child_stderr = os.pipe()
            close_child_ends.callback(os.close, child_stderr)
            our_stderr = FdStream(read_end)
            close_ours_on_failure.callback(our_stderr.close)
        # stderr=subprocess.STDOUT is passed through: Popen sends it to
        # whatever stdout became (our pipe's write end, a file, or ours).
        spawned = await to_thread_run_sync(
            partial(
                subprocess.Popen,
                command,
                stdin=child_stdin,
                stdout=child_stdout,
                stderr=child_stderr,
                **options,
            )
        )
        # The text options were refused above, so this is a bytes Popen
        # (the type checker cannot tell from **options).
        popen = cast("subprocess.Popen[bytes]", spawned)
        process = Process._create(popen, our_stdin, our_stdout, our_stderr)
        close_ours_on_failure.pop_all()
    return process

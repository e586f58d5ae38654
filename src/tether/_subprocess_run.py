"""`run_process`: a child process as a supervised task.

The caller's task owns the child from spawn to exit: it feeds the input,
collects the captured output, and waits for the exit. Whatever ends that
task early (cancellation, an error in a feeding or reading task, an error in
the caller's block around ``nursery.start``) makes it stop the child with
`deliver_cancel` and wait for it to exit, shielded, before the error
propagates. So `run_process` never returns or raises while its child runs,
and never leaves a zombie.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from ._core import (
    TASK_STATUS_IGNORED,
    BrokenResourceError,
    CancelScope,
    TaskStatus,
    open_nursery,
)
from ._subprocess import Command, Process, Redirect, open_process
from ._timeouts import sleep
from .abc import ReceiveStream, SendStream

__all__ = ["run_process"]

#: Seconds the default `deliver_cancel` gives a child between SIGTERM and
#: SIGKILL (on Unix).
SIGTERM_GRACE_PERIOD = 5.0

DeliverCancel = Callable[[Process], Awaitable[object]]


async def _terminate_then_kill(process: Process) -> None:
    """Unix default `deliver_cancel`: SIGTERM, and SIGKILL (then a
    `RuntimeWarning`) if the child is still there after
    `SIGTERM_GRACE_PERIOD` seconds. Cancelled as soon as the child exits."""
    try:
        process.terminate()
        await sleep(SIGTERM_GRACE_PERIOD)
        # Kill first: if warnings are turned into errors, the warning must
        # not keep the child alive (run_process would wait for ever).
        process.kill()
        warnings.warn(
            RuntimeWarning(
                f"process {process!r} ignored SIGTERM for {SIGTERM_GRACE_PERIOD:g} "
                "seconds, so it was sent SIGKILL (pass deliver_cancel= to "
                "run_process to stop it another way)"
            ),
            stacklevel=1,
        )
    except OSError as exc:
        warnings.warn(
            RuntimeWarning(f"could not stop process {process!r} on cancellation: {exc!r}"),
            stacklevel=1,
        )


async def _terminate(process: Process) -> None:
    """Windows default `deliver_cancel`: ``TerminateProcess`` ends the
    child at once."""
    try:
        process.terminate()
    except OSError as exc:
        warnings.warn(
            RuntimeWarning(f"could not stop process {process!r} on cancellation: {exc!r}"),
            stacklevel=1,
        )


async def _feed(stream: SendStream, data: bytes | bytearray | memoryview) -> None:
    async with stream:
        try:
            await stream.send_all(data)
        except BrokenResourceError:
            # The child closed its stdin without reading all of it; that is
            # its choice, not an error of ours.
            pass


async def _collect(stream: ReceiveStream, chunks: list[bytes | bytearray]) -> None:
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)


async def _stop_and_reap(process: Process, deliver_cancel: DeliverCancel) -> None:
    """Run `deliver_cancel` next to a shielded wait for the exit; cancel
    `deliver_cancel` as soon as the child is gone. An error from
    `deliver_cancel` is raised (in a group) once the child has exited."""
    with CancelScope(shield=True):
        async with open_nursery() as nursery:
            delivering = CancelScope()

            async def deliver() -> None:
                with delivering:
                    await deliver_cancel(process)

            nursery.start_soon(deliver)
            # Shielded again: a failing deliver_cancel cancels the nursery,
            # but the exit must still be waited for.
            with CancelScope(shield=True):
                await process.wait()
            delivering.cancel()


async def run_process(
    command: Command,
    *,
    stdin: bytes | bytearray | memoryview | Redirect = b"",
    capture_stdout: bool = False,
    capture_stderr: bool = False,
    check: bool = True,
    deliver_cancel: DeliverCancel | None = None,
    task_status: TaskStatus[Process] = TASK_STATUS_IGNORED,
    **options: Any,
) -> subprocess.CompletedProcess[bytes]:
    """Run `command` in a child process and wait until it exits.

    Two ways to call it:

    * ``result = await tether.run_process(command, ...)`` treats the child
      like a function call and returns a `subprocess.CompletedProcess`.
    * ``process = await nursery.start(tether.run_process, command, ...)``
      runs it as a background task and hands you its `Process` once it has
      started (to talk to it through ``stdin=subprocess.PIPE`` /
      ``stdout=subprocess.PIPE``, send it signals, ...). The task still
      supervises the child and ends when it exits.

    The defaults differ from `subprocess.run` on purpose: the child reads an
    empty standard input (``stdin=b""``) rather than the parent's, and a
    non-zero exit status raises (``check=True``). Use ``stdin=None,
    check=False`` for `subprocess.run`'s behaviour.

    Args:
      command: a sequence of arguments (``["ls", "-l"]``), or one string
        with ``shell=True``.
      stdin: bytes to feed to the child (then its stdin is closed), or any
        `open_process` redirection (`subprocess.PIPE` only with
        `Nursery.start`, `subprocess.DEVNULL`, a file descriptor or file,
        None for the parent's stdin).
      capture_stdout: collect the child's standard output into the result's
        ``stdout`` (otherwise it goes to the parent's, and ``stdout`` is
        None).
      capture_stderr: likewise for standard error. Combine
        ``capture_stdout=True, stderr=subprocess.STDOUT`` for one
        interleaved stream.
      check: raise `subprocess.CalledProcessError` if the exit status is
        not zero.
      deliver_cancel: ``async def deliver_cancel(process)``, called when
        the call is cancelled, to make the child exit. It is itself
        cancelled as soon as the child exits. Default: on Unix, SIGTERM,
        then after 5 seconds SIGKILL with a `RuntimeWarning`; on Windows,
        ``TerminateProcess``.
      **options: other `open_process` / `subprocess.Popen` options
        (``stdout``, ``stderr``, ``cwd``, ``env``, ``shell``, ...).

    Cancellation: a checkpoint. If cancelled (or if a task feeding or
    reading the pipes fails), `run_process` calls `deliver_cancel` and
    waits, shielded, for the child to exit before raising; a
    ``deliver_cancel`` that never makes the child exit makes it wait for
    ever.

    Returns:
      A `subprocess.CompletedProcess` with ``args``, ``returncode`` and the
      captured ``stdout`` / ``stderr`` (None when not captured). Under
      `Nursery.start`, the `Process` is what ``start`` returns.

    Raises:
      subprocess.CalledProcessError: with ``check=True`` and a non-zero exit
        status; its ``stdout`` / ``stderr`` hold what was captured.
      UnicodeError: if `stdin` is a `str` (encode it).
      ValueError: for a `subprocess.PIPE` redirection without
        `Nursery.start` (nobody could use the pipe), or both
        ``capture_stdout`` and ``stdout=`` (same for stderr).
      TypeError: for a badly formed `command` (see `open_process`).
      OSError: if the child cannot be started.
      ExceptionGroup: errors from `deliver_cancel` or from feeding or reading
        the pipes.
    """
    if isinstance(stdin, str):
        raise UnicodeError("process stdin must be bytes, not str: pass text.encode() instead")
    if task_status is TASK_STATUS_IGNORED:
        if _is_pipe_constant(stdin):
            raise ValueError(
                "stdin=subprocess.PIPE is only valid with nursery.start, since that's "
                "the only way to access the pipe; use nursery.start or pass the data "
                "you want to write directly"
            )
        for name in ("stdout", "stderr"):
            if _is_pipe_constant(options.get(name)):
                raise ValueError(
                    f"{name}=subprocess.PIPE is only valid with nursery.start, since "
                    "that's the only way to access the pipe"
                )
    data: bytes | bytearray | memoryview | None = None
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        data = stdin
        options["stdin"] = subprocess.PIPE
    else:
        options["stdin"] = stdin
    for name, capture in (("stdout", capture_stdout), ("stderr", capture_stderr)):
        if capture:
            if name in options:
                raise ValueError(f"can't specify both {name} and capture_{name}")
            options[name] = subprocess.PIPE
    if deliver_cancel is None:
        deliver_cancel = _terminate_then_kill if os.name == "posix" else _terminate

    stdout_chunks: list[bytes | bytearray] = []
    stderr_chunks: list[bytes | bytearray] = []
    process = await open_process(command, **options)
    # No checkpoint between the spawn and this try: whatever happens from
    # here on, the child is stopped and reaped before we leave.
    try:
        async with open_nursery() as nursery:
            if data is not None:
                assert process.stdin is not None
                nursery.start_soon(_feed, process.stdin, data)
                process.stdin = process.stdio = None
            if capture_stdout:
                assert process.stdout is not None
                nursery.start_soon(_collect, process.stdout, stdout_chunks)
                process.stdout = process.stdio = None
            if capture_stderr:
                assert process.stderr is not None
                nursery.start_soon(_collect, process.stderr, stderr_chunks)
                process.stderr = None
            task_status.started(process)
            await process.wait()
    except BaseException as failure:
        if process.returncode is None:
            try:
                await _stop_and_reap(process, deliver_cancel)
            except BaseExceptionGroup as stop_failure:
                # Both matter: report them side by side, as one nursery
                # running the feeders, the readers and deliver_cancel would.
                raise BaseExceptionGroup(
                    "run_process failed, and deliver_cancel failed while stopping the child",
                    [*stop_failure.exceptions, *_members(failure)],
                ) from None
        raise

    returncode = process.returncode
    assert returncode is not None
    stdout = b"".join(stdout_chunks) if capture_stdout else None
    stderr = b"".join(stderr_chunks) if capture_stderr else None
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, process.args, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(process.args, returncode, stdout, stderr)


def _members(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return list(error.exceptions)
    return [error]


def _is_pipe_constant(value: object) -> bool:
    return isinstance(value, int) and value == subprocess.PIPE

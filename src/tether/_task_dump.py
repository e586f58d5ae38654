"""The task dump: print a run's task tree when the process gets a signal.

`install_task_dump` is opt-in, for looking into a program that seems stuck
(``kill -USR1 <pid>``). It installs a handler for the signal in the main
thread. Python runs that handler between two bytecodes of whatever the
main thread is doing, the kernel's own bookkeeping included, where the
task tree may be half-updated: so the handler takes no snapshot, it only
queues the dump with the run's `run_sync_soon` (which is safe there). The
tree is taken and drawn by the run loop between two batches of steps,
where it is consistent; no task's code is interrupted to do it. A system
task holds the installation: when the run ends (system tasks are cancelled
then) it puts back the handler that was there before.

A task that never gives control back to the loop (a busy loop, a blocking
call in async code) also keeps the loop from printing the dump; the
standard library's `faulthandler.register` shows every thread's stack in
that case.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TextIO

from ._core import (
    CancelScope,
    RunFinishedError,
    TetherToken,
    current_task_tree,
    current_tether_token,
    spawn_system_task,
)
from ._task_tree_text import format_task_tree
from ._timeouts import sleep_forever

#: The signal `install_task_dump` listens to by default (None on a platform
#: without it, where a signal must be given).
DEFAULT_DUMP_SIGNAL: int | None = getattr(signal, "SIGUSR1", None)


def install_task_dump(
    signum: int | None = DEFAULT_DUMP_SIGNAL, file: TextIO | None = None
) -> Callable[[], None]:
    """Print the current run's task tree (see `current_task_tree`) to `file`
    (default: `sys.stderr` at the time) each time the process receives the
    signal `signum` (default: ``SIGUSR1``), until the run ends.

    For debugging a program that seems stuck: ``kill -USR1 <pid>`` shows
    every task, the nursery it lives in, its cancel scopes, where it is
    suspended and what it waits on. The dump is printed by the run loop
    between two batches of task steps (the signal handler only asks for it
    through `TetherToken.run_sync_soon`), so it never interrupts a task. A
    task that never yields to the loop delays it too.

    Not a checkpoint. It replaces the signal's handler for as long as it is
    installed, and starts a system task (named after the signal) that puts
    the previous handler back when the run ends. (Install it once per
    signal: a second installation replaces the first, and puts it back
    only if uninstalled before the first.)

    Returns:
      A function that uninstalls it now (putting back the previous handler,
      if the signal's handler is still this one). Idempotent; call it in
      the run's thread.

    Raises:
      RuntimeError: outside a run, or in a run that is not in the main
        thread (Python runs signal handlers only in the main thread).
      ValueError: if `signum` is not a signal number.
    """
    try:
        token = current_tether_token()
    except RuntimeError:
        raise RuntimeError(
            "install_task_dump() must be called inside tether.run(): it prints the tasks "
            "of the run it is called in"
        ) from None
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "install_task_dump() must be called in the main thread: Python runs signal "
            "handlers only there, so a run in another thread cannot be dumped on a signal"
        )
    if signum is None:
        raise ValueError("this platform has no SIGUSR1: pass the signal to listen to")
    try:
        signal_name = signal.Signals(signum).name
    except ValueError:
        raise ValueError(f"signum must be a signal number, got {signum!r}") from None
    dump = _TaskDump(token, signum, signal_name, file)
    dump.install()
    try:
        spawn_system_task(dump.uninstall_at_run_end, name=f"<task dump on {signal_name}>")
    except BaseException:
        dump.uninstall()
        raise
    return dump.uninstall


class _TaskDump:
    """One installed task dump."""

    __slots__ = ("_file", "_keeper_scope", "_previous", "_signal_name", "_signum", "_token")

    def __init__(
        self, token: TetherToken, signum: int, signal_name: str, file: TextIO | None
    ) -> None:
        self._token = token
        self._signum = signum
        self._signal_name = signal_name
        self._file = file
        #: The handler before ours; None while ours is not installed.
        self._previous: Callable[[int, FrameType | None], object] | int | None = None
        #: The scope of the system task that holds the installation.
        self._keeper_scope: CancelScope | None = None

    def install(self) -> None:
        self._previous = signal.signal(self._signum, self._on_signal)

    def uninstall(self) -> None:
        previous = self._previous
        if previous is None:
            return
        self._previous = None
        if signal.getsignal(self._signum) == self._on_signal:
            signal.signal(self._signum, previous)
        if self._keeper_scope is not None:
            self._keeper_scope.cancel()

    async def uninstall_at_run_end(self) -> None:
        with CancelScope() as self._keeper_scope:
            try:
                await sleep_forever()
            finally:
                self.uninstall()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # In the main thread, between two bytecodes of whatever runs: only
        # ask the loop to do the work.
        try:
            self._token.run_sync_soon(self._print, idempotent=True)
        except RunFinishedError:
            pass  # the run is ending; its end uninstalls this handler

    def _print(self) -> None:
        # A run_sync_soon callback: if this raised, the run would crash.
        try:
            tree = current_task_tree()
            text = (
                f"tether: task dump on {self._signal_name}, run clock at {tree.now:.2f}:\n"
                f"{format_task_tree(tree)}\n"
            )
            file = self._file if self._file is not None else sys.stderr
            file.write(text)
            file.flush()
        except Exception as exc:
            stream = sys.__stderr__
            if stream is not None:
                try:
                    stream.write(f"tether: the task dump failed: {exc!r}\n")
                except Exception:
                    pass  # nowhere left to say it

"""``python -m tether``: an interactive console inside a tether run, and a
runner for scripts whose entry point is an async ``main()``.

The run owns the main thread, as in a real program (so signals, Ctrl-C and
`open_signal_receiver` behave as they do there); the console reads input in
a worker thread (`to_thread.run_sync`) and hands each statement back to the
run with `from_thread`. A statement therefore runs inside the REPL's main
task, and ``await`` works at the top level. The run lives as long as the
console: tasks started in the console's ``nursery`` keep running between
prompts, and are cancelled when the console exits.

Ctrl-C while a statement runs interrupts that statement (tether's own SIGINT
handling raises `KeyboardInterrupt` in it, at once in user code or at its
next checkpoint otherwise) and the console carries on. Ctrl-C at the prompt
discards the line being typed, as Python's own console does; because the
prompt waits in another thread, the console has to be sent a newline to
notice, which it asks the terminal to do (TIOCSTI) where that is allowed and
otherwise asks the user to press Enter.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import runpy
import signal
import sys
import threading
import traceback
import warnings
from code import InteractiveConsole
from collections.abc import Awaitable, Callable
from types import CodeType, FrameType, FunctionType
from typing import Any

import outcome

import tether
from tether import lowlevel

# The name a script or module runs under with ``python -m tether script.py``:
# not "__main__", so a script's own ``if __name__ == "__main__": tether.run(main)``
# block does not start a second run.
SCRIPT_RUN_NAME = "__tether_main__"

_USAGE = """\
usage: python -m tether                    start an interactive console with top-level await
       python -m tether SCRIPT [ARG ...]   run SCRIPT's async main() under tether
       python -m tether -m MODULE [ARG ...]
                                           run MODULE's async main() under tether
"""


class ReplNursery:
    """The ``nursery`` of the console: tasks started here keep running
    between prompts, until the console exits (then they are cancelled).

    A task's error is printed when it happens instead of cancelling the
    other tasks and ending the console, as an error in a real nursery would:
    at an interactive prompt, nobody is waiting on the block to raise it.
    So is a Ctrl-C that arrives while the task's own code runs (that task
    stops; the statement at the prompt goes on, and the next Ctrl-C reaches
    it). Cancellation of a task stays silent. Otherwise it is the `tether.Nursery`
    it wraps (`start_soon`, `start`, `cancel_scope`, `child_tasks`).
    """

    def __init__(self, nursery: tether.Nursery) -> None:
        self._nursery = nursery

    def start_soon(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: object = None
    ) -> None:
        """`tether.Nursery.start_soon`, with errors printed. Not a checkpoint."""
        self._nursery.start_soon(_reporting, async_fn, args, name=name or async_fn)

    async def start(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: object = None
    ) -> object:
        """`tether.Nursery.start`: waits until the task calls
        ``task_status.started()`` and returns its value. A checkpoint; if it
        is cancelled before the task started, the task is cancelled too."""
        return await self._nursery.start(_reporting_start, async_fn, args, name=name or async_fn)

    @property
    def cancel_scope(self) -> tether.CancelScope:
        """The scope that cancels every task started here."""
        return self._nursery.cancel_scope

    @property
    def child_tasks(self) -> frozenset[lowlevel.Task]:
        """The tasks running in it now."""
        return self._nursery.child_tasks

    def __repr__(self) -> str:
        return f"<tether console nursery, {len(self.child_tasks)} task(s) running>"


async def _reporting(async_fn: Callable[..., Awaitable[object]], args: tuple[object, ...]) -> None:
    try:
        await async_fn(*args)
    except (Exception, KeyboardInterrupt) as exc:
        _print_background_error(async_fn, exc)


async def _reporting_start(
    async_fn: Callable[..., Awaitable[object]],
    args: tuple[object, ...],
    *,
    task_status: tether.TaskStatus[object] = tether.TASK_STATUS_IGNORED,
) -> None:
    try:
        await async_fn(*args, task_status=task_status)
    except (Exception, KeyboardInterrupt) as exc:
        _print_background_error(async_fn, exc)


def _print_background_error(async_fn: object, exc: BaseException) -> None:
    # A Ctrl-C raised in a background task's own code (it was running when
    # the signal came) stops that task only: the console and its other
    # tasks go on, as after an error.
    name = getattr(async_fn, "__qualname__", repr(async_fn))
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write(f"\nbackground task {name} was running at Ctrl-C and stopped\n")
        return
    sys.stderr.write(f"\nbackground task {name} raised:\n")
    traceback.print_exception(exc, file=sys.stderr)


class TetherConsole(InteractiveConsole):
    """An `InteractiveConsole` whose statements run in a tether run, with
    ``await`` allowed at the top level. Call `interact` from a worker thread
    of the run (see `run_console`)."""

    def __init__(self, repl_locals: dict[str, Any]) -> None:
        super().__init__(locals=repl_locals)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self._interrupted_at_prompt = False

    def runcode(self, code: CodeType) -> None:
        func = FunctionType(code, self.locals)
        result: outcome.Outcome[object]
        if inspect.iscoroutinefunction(func):
            result = tether.from_thread.run(outcome.acapture, func)
        else:
            result = tether.from_thread.run_sync(outcome.capture, func)
        # A Ctrl-C that arrived after the statement's last checkpoint is
        # still pending for the main task: take it here, so that it does
        # not hit the next statement instead.
        leftover = tether.from_thread.run(outcome.acapture, lowlevel.checkpoint_if_cancelled)
        error = result.error if isinstance(result, outcome.Error) else None
        if error is None and isinstance(leftover, outcome.Error):
            error = leftover.error
        if error is None:
            return
        if isinstance(error, SystemExit):
            raise error
        sys.last_type, sys.last_value, sys.last_traceback = (
            type(error),
            error,
            error.__traceback__,
        )
        # Skip this function's frame: the user's code starts below it.
        tb = error.__traceback__
        sys.excepthook(type(error), error, tb.tb_next if tb is not None else None)

    def raw_input(self, prompt: str = "") -> str:
        # While the prompt waits, SIGINT goes to a handler of ours instead of
        # tether's (which would deliver KeyboardInterrupt to the main task,
        # blocked here until the line arrives).
        previous = tether.from_thread.run_sync(self._install_prompt_handler)
        try:
            return input(prompt)
        finally:
            tether.from_thread.run_sync(signal.signal, signal.SIGINT, previous)
            if self._interrupted_at_prompt:
                self._interrupted_at_prompt = False
                raise KeyboardInterrupt

    def _install_prompt_handler(self) -> Any:
        if not _in_main_thread():
            return signal.getsignal(signal.SIGINT)
        token = lowlevel.current_tether_token()

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            self._interrupted_at_prompt = True
            token.run_sync_soon(_send_newline_to_terminal, idempotent=True)

        return signal.signal(signal.SIGINT, on_sigint)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _send_newline_to_terminal() -> None:
    """Make the prompt's pending ``input()`` return, so the console can
    discard the line: push a newline into the terminal's input queue. Linux
    may forbid that (``dev.tty.legacy_tiocsti``); then ask for Enter."""
    try:
        # Imported here: POSIX-only modules, and the ImportError is handled.
        import fcntl
        import termios

        fcntl.ioctl(sys.stdin, termios.TIOCSTI, b"\n")
    except (ImportError, OSError, AttributeError):
        sys.stderr.write("\nKeyboardInterrupt (press Enter for a new prompt)")
        sys.stderr.flush()


def banner() -> str:
    return (
        f"tether {tether.__version__} console, Python {sys.version.split()[0]} on {sys.platform}\n"
        'Use "await" directly instead of "tether.run()". Tasks started with '
        '"nursery.start_soon(...)" keep running between prompts.\n'
        'Type "help", "copyright", "credits" or "license" for more information.\n'
        f"{getattr(sys, 'ps1', '>>> ')}import tether"
    )


async def run_console(repl_locals: dict[str, Any]) -> str | int | None:
    """The main task of ``python -m tether``: open the console's nursery
    and run the console in a worker thread until it exits (end of input,
    or ``exit(code)``, whose code it returns), then cancel what is still
    running in the nursery."""
    code: str | int | None = 0
    async with tether.open_nursery() as nursery:
        repl_locals["nursery"] = ReplNursery(nursery)
        console = TetherConsole(repl_locals)
        try:
            await tether.to_thread.run_sync(console.interact, banner(), "")
        except SystemExit as exc:
            code = exc.code
        finally:
            nursery.cancel_scope.cancel()
            # A statement abandoned by exit() leaves a coroutine unawaited.
            warnings.filterwarnings(
                "ignore", message=r"^coroutine .* was never awaited$", category=RuntimeWarning
            )
    return code


def console_main() -> str | int | None:
    """Start the interactive console (``python -m tether`` with no
    arguments); return the code it exited with."""
    with contextlib.suppress(ImportError):
        # Imported for its side effect (line editing at the prompt), and
        # only when a console starts; not every Python has it.
        import readline  # noqa: F401
    repl_locals: dict[str, Any] = {
        "__name__": "__console__",
        "__doc__": None,
        "tether": tether,
    }
    return tether.run(run_console, repl_locals)


def run_entry_point(namespace: dict[str, Any], where: str) -> Any:
    """Run the async ``main()`` found in `namespace` (a script's or module's
    globals) under `tether.run`, and return its result."""
    main = namespace.get("main")
    if main is None:
        raise SystemExit(f"python -m tether: {where} defines no main(); define 'async def main()'")
    if not inspect.iscoroutinefunction(main):
        raise SystemExit(
            f"python -m tether: main in {where} is {main!r}, not an async function; "
            "define 'async def main()'"
        )
    return tether.run(main)


def main(argv: list[str]) -> str | int | None:
    """Entry point of ``python -m tether``; `argv` excludes the program
    name. Returns the process exit status (for `sys.exit`)."""
    if not argv:
        return console_main()
    if argv[0] in ("-h", "--help"):
        sys.stdout.write(_USAGE)
        return 0
    if argv[0] == "-m":
        if len(argv) < 2:
            sys.stderr.write("python -m tether: -m needs a module name\n" + _USAGE)
            return 2
        module = argv[1]
        sys.argv = [module, *argv[2:]]
        namespace = runpy.run_module(module, run_name=SCRIPT_RUN_NAME, alter_sys=True)
        run_entry_point(namespace, f"module {module}")
        return 0
    if argv[0].startswith("-"):
        sys.stderr.write(f"python -m tether: unknown option {argv[0]}\n" + _USAGE)
        return 2
    path = argv[0]
    if not os.path.exists(path):
        sys.stderr.write(f"python -m tether: can't open file {path!r}: no such file\n")
        return 2
    sys.argv = [path, *argv[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    namespace = runpy.run_path(path, run_name=SCRIPT_RUN_NAME)
    run_entry_point(namespace, path)
    return 0

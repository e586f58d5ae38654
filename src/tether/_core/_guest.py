"""Guest mode: a tether run inside another event loop (asyncio, Tk, Qt, ...).

A program whose main thread belongs to someone else's loop (Tk's
``mainloop()``, Qt's ``exec()``, a host asyncio loop) cannot call
`tether.run`. `start_guest_run` runs tether on that thread anyway: every
part of a turn of the run loop runs in callbacks on the host's thread except
the one that blocks, the wait for I/O, which a worker thread does::

    host thread (the host loop)              worker thread
    ---------------------------              -------------
    host's own work
    tick: a turn of tether's loop
      (events, deadlines, callbacks,
       one batch of tasks), up to
       "wait for I/O for T seconds"  ───────►  epoll/select for up to T
    host's own work ...                        ...
      (host code may wake a tether
       task: that cuts the wait short)
    tick: the next turn  ◄──────────────────  done: post the next tick
                                               (run_sync_soon_threadsafe)

When tasks are runnable (T is 0) or I/O is ready already, the next tick is
posted from the host thread itself (run_sync_soon_not_threadsafe) and the
worker is not involved. Either way the host loop runs between two turns, so
neither side starves the other.

The turns are those of `Runner._run_loop`, driven through the generator of
`lifetime` exactly as `tether.run` drives them; a guest run differs only in
who waits for I/O and in what can wake that wait. In a plain run, only I/O,
a deadline or another thread (through the wakeup socket) can change what
the loop waits for. In a guest run, code on the host thread can too, between
two turns: waking a task (`GuestRunner.reschedule`), starting one, moving
a deadline earlier (`GuestDeadlines.add`), or moving the clock itself (a
`MockClock`'s ``jump()`` or ``rate``, which queue a no-op `run_sync_soon`
callback when called outside a task). Those write to the wakeup socket
while the worker waits, so the next turn comes at once.

Invariants:

* At most one tick is pending at a time, and the worker waits only while
  no tick is pending, so the loop's generator is never entered twice and
  the I/O manager is never polled from two threads at once. The worker
  only polls: `IOManager.get_events` changes none of the run's bookkeeping
  (what is registered, the waiters), which the host thread may be changing
  at the same time (host code cancelling a wait); `process_events` does
  that at the next tick.
* The `GuestRunner` holds no reference to its `GuestRun`. Only the pending
  tick (on the host) or the worker's job holds one, so a host that drops
  them (it stopped without finishing the run) lets the run be garbage
  collected, which closes its generator: the run warns that it was
  abandoned and tears down what it can.
* Thread-wide settings are the host's between ticks and the guest's during
  them: sniffio's thread-local library name, and asyncio's running loop (the
  host's, unless code in the guest set another one, such as `tether.aio`'s).

How tasks tell sniffio that they are tether's depends on the host. Usually
as in `tether.run` (_sniffio.py): each task's context says tether, and ticks
hide the host's thread-local name. On an asyncio host, though, guest code
creates asyncio tasks and callbacks (``asyncio.ensure_future``,
``loop.call_soon``) that run on the host in copies of the creating task's
context, and they must not say tether. So there, as in trio, the contexts
of the run's tasks say nothing, and the thread-local name says tether for
the length of each tick. (`tether.aio` inside a guest run needs the first
way: it cannot run on an asyncio host, whose loop is running already.)
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import outcome

from ._cancel import CancelScope
from ._clock import Clock
from ._deadlines import Deadlines
from ._entry_point import (
    HostThreadSetup,
    Turns,
    check_async_fn,
    check_no_run_here,
    final_outcome,
    lifetime,
    new_runner,
)
from ._exceptions import TetherInternalError
from ._instrumentation import Instrument
from ._loose_groups import warn_loose
from ._nursery import Nursery
from ._run import _VALUE_NONE, Runner
from ._scheduler import Scheduler
from ._sniffio import LIBRARY_NAME, forget_async_library
from ._task import Task
from ._thread_cache import start_thread_soon

#: The most turns `start_guest_run` runs before it returns: the root task
#: opens the system nursery in its first step, which is the second turn.
_START_TURNS = 5

#: The name of the worker thread while it waits for the guest run's I/O.
_IO_THREAD_NAME = "tether guest run: waiting for I/O"

_NO_EVENTS: list[tuple[int, int]] = []


class GuestDeadlines(Deadlines):
    """A guest run's deadlines: a deadline added from the host thread that
    is now the nearest one cuts the worker's wait short."""

    __slots__ = ("_runner",)

    #: The run these deadlines belong to.
    _runner: GuestRunner

    def __init__(self, runner: GuestRunner, wake: Any) -> None:
        super().__init__(wake)
        self._runner = runner

    def add(self, deadline: float, scope: CancelScope) -> Any:
        key = super().add(deadline, scope)
        if self._runner.io_wait_in_thread and key is self._scopes[0]:
            self._runner.wake_io_wait()
        return key

    def add_timer(self, deadline: float, task: Any) -> Any:
        key = super().add_timer(deadline, task)
        if self._runner.io_wait_in_thread and key is self._scopes[0]:
            self._runner.wake_io_wait()
        return key


class GuestRunner(Runner):
    """The `Runner` of a guest run: wakes the worker's wait for I/O when
    code on the host thread makes a task runnable."""

    is_guest = True

    # Slots, not instance attributes: a `Runner` has as many of those as
    # CPython keeps in its fast layout (see `Runner.__init__`).
    __slots__ = ("io_wait_in_thread", "sniffio_by_thread")

    #: True while the worker thread waits for I/O for this run (and no tick
    #: is pending on the host). Written on the host thread only.
    io_wait_in_thread: bool
    #: Whether tasks tell sniffio they are tether's by the thread-local name
    #: during ticks rather than by their contexts: on an asyncio host (see
    #: the module's docstring).
    sniffio_by_thread: bool

    def __init__(
        self,
        clock: Clock,
        instruments: Sequence[Instrument],
        scheduler: Scheduler | None,
        strict_exception_groups: bool = True,
    ) -> None:
        super().__init__(clock, instruments, scheduler, strict_exception_groups)
        self.deadlines = GuestDeadlines(self, self.deadlines._wake)
        self.io_wait_in_thread = False
        asyncio = sys.modules.get("asyncio")
        self.sniffio_by_thread = asyncio is not None and asyncio._get_running_loop() is not None

    def spawn_impl(
        self,
        async_fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        nursery: Nursery | None,
        name: object,
        *,
        system_task: bool = False,
        context: Any = None,
    ) -> Task:
        task = super().spawn_impl(
            async_fn, args, nursery, name, system_task=system_task, context=context
        )
        if self.sniffio_by_thread:
            forget_async_library(task.context)
        return task

    def wake_io_wait(self) -> None:
        """Code on the host thread changed what the loop waits for: end the
        worker's wait, so that the next turn comes now."""
        self.io_wait_in_thread = False
        self.io_manager.wakeup_threadsafe()

    def reschedule(self, task: Task, next_send: outcome.Outcome[Any] = _VALUE_NONE) -> None:
        super().reschedule(task, next_send)
        if self.io_wait_in_thread:
            self.wake_io_wait()

    def _wake(self, task: Task, next_send: Any) -> None:
        super()._wake(task, next_send)
        if self.io_wait_in_thread:
            self.wake_io_wait()

    def spawn_task(
        self,
        nursery: Nursery | None,
        task: Task,
        coro: Any,
        context: Any,
    ) -> None:
        super().spawn_task(nursery, task, coro, context)
        if self.io_wait_in_thread:
            self.wake_io_wait()


class GuestRun:
    """The state passed from callback to callback while a guest run runs:
    its turns, and the host's callbacks. (The `GuestRunner` never refers to
    it; see the module's invariants.)"""

    __slots__ = (
        "_abandoned_because",
        "_call_soon",
        "_call_soon_threadsafe",
        "_done_callback",
        "_guest_running_loop",
        "_next_events",
        "runner",
        "turns",
    )

    #: The run.
    runner: GuestRunner
    #: Its turns (`lifetime`, wrapped in `_abandonable`).
    turns: Turns
    #: The host's callbacks (see `start_guest_run`).
    _call_soon_threadsafe: Callable[[Callable[[], object]], object]
    _call_soon: Callable[[Callable[[], object]], object]
    _done_callback: Callable[[outcome.Outcome[Any]], object]
    #: What the next tick sends into the loop: the I/O events of the wait
    #: that ended, or the error that ended it.
    _next_events: outcome.Outcome[list[tuple[int, int]]]
    #: asyncio's running loop as code in the guest last left it; `_HOST`
    #: while it is the host's own.
    _guest_running_loop: object
    #: Why the run is being abandoned, for the warning (one item, or none).
    _abandoned_because: list[str]

    def __init__(
        self,
        runner: GuestRunner,
        turns: Turns,
        call_soon_threadsafe: Callable[[Callable[[], object]], object],
        call_soon: Callable[[Callable[[], object]], object],
        done_callback: Callable[[outcome.Outcome[Any]], object],
    ) -> None:
        self.runner = runner
        self._abandoned_because = []
        self.turns = _abandonable(turns, self._abandoned_because)
        self._call_soon_threadsafe = call_soon_threadsafe
        self._call_soon = call_soon
        self._done_callback = done_callback
        self._next_events = outcome.Value(_NO_EVENTS)
        self._guest_running_loop = _HOST

    def start(self) -> None:
        """Run the first turns, synchronously, until the run is set up
        (its system nursery open); no user code runs in them. Then hand
        the run to the host."""
        turns = self.turns
        try:
            timeout = next(turns)
            for _ in range(_START_TURNS):
                if self.runner.system_nursery is not None:
                    break
                timeout = turns.send(_NO_EVENTS)
            else:
                raise TetherInternalError("the guest run's root task did not start")
        except StopIteration:
            raise TetherInternalError("the guest run ended before it had started") from None
        except TetherInternalError:
            turns.close()
            raise
        except BaseException as exc:
            turns.close()
            raise TetherInternalError(
                f"the guest run could not start: {exc!r} (see the cause)"
            ) from exc
        self._after_turn(timeout)

    # -- on the host thread --------------------------------------------------

    def _tick(self) -> None:
        """One turn of the loop, as a host callback."""
        events, self._next_events = self._next_events, outcome.Value(_NO_EVENTS)
        result: outcome.Outcome[Any] | None = None
        host_state = self._enter()
        try:
            timeout = events.send(self.turns)
        except StopIteration:
            result = final_outcome(self.runner)
        except BaseException as exc:
            # What `run` would have raised (the loop's generator has torn
            # the run down already).
            result = outcome.Error(exc)
        finally:
            self._leave(host_state)
        if result is not None:
            self._done_callback(result)
            return
        self._after_turn(timeout)

    def _resume(self) -> None:
        """The tick that the worker posts when its wait has ended."""
        self.runner.io_wait_in_thread = False
        self._tick()

    def _after_turn(self, timeout: float) -> None:
        """The loop wants to wait up to `timeout` seconds for I/O: post the
        next tick now if it needs no wait, else let the worker wait."""
        runner = self.runner
        try:
            # A poll that cannot block: no thread needed if I/O is ready.
            events = runner.io_manager.get_events(0)
        except BaseException as exc:
            self._next_events = outcome.Error(_io_wait_failed(exc))
        else:
            if timeout > 0 and not events:
                runner.io_wait_in_thread = True
                start_thread_soon(
                    functools.partial(runner.io_manager.get_events, timeout),
                    self._deliver,
                    name=_IO_THREAD_NAME,
                )
                return
            self._next_events = outcome.Value(events)
        self._post(self._tick, self._call_soon, from_host=True)

    def _enter(self) -> tuple[object, object]:
        """Make the thread-wide settings the guest's (see the module's
        invariants); returns the host's, for `_leave`."""
        host_library = None
        sniffio = sys.modules.get("sniffio")
        if sniffio is not None:
            host_library = sniffio.thread_local.name
            sniffio.thread_local.name = LIBRARY_NAME if self.runner.sniffio_by_thread else None
        host_loop = None  # (without asyncio imported, nobody set one)
        asyncio = sys.modules.get("asyncio")
        if asyncio is not None:
            host_loop = asyncio._get_running_loop()
            if self._guest_running_loop is not _HOST:
                asyncio._set_running_loop(self._guest_running_loop)
        return host_library, host_loop

    def _leave(self, host_state: tuple[object, object]) -> None:
        host_library, host_loop = host_state
        sniffio = sys.modules.get("sniffio")
        if sniffio is not None:
            sniffio.thread_local.name = host_library
        asyncio = sys.modules.get("asyncio")
        if asyncio is not None:
            guest_loop = asyncio._get_running_loop()
            if guest_loop is host_loop:
                self._guest_running_loop = _HOST
            else:
                self._guest_running_loop = guest_loop
                asyncio._set_running_loop(host_loop)

    # -- on the worker thread ------------------------------------------------

    def _deliver(self, events: outcome.Outcome[list[tuple[int, int]]]) -> None:
        if isinstance(events, outcome.Error):
            events = outcome.Error(_io_wait_failed(events.error))
        self._next_events = events
        self._post(self._resume, self._call_soon_threadsafe, from_host=False)

    # -- either thread -------------------------------------------------------

    def _post(
        self,
        tick: Callable[[], None],
        post: Callable[[Callable[[], object]], object],
        from_host: bool,
    ) -> None:
        """Ask the host to run `tick`. If the host refuses (its loop is
        closed: it stopped before the run finished), nothing can run the
        run any more: abandon it now, and raise the host's error to the
        host (on the host thread; the worker thread has nobody to raise it
        to, so the warning says it)."""
        try:
            post(tick)
        except BaseException as exc:
            self._abandoned_because.append(
                f"the host refused to run its next turn ({exc!r}): the host loop "
                "stopped or broke before the run finished"
            )
            self.turns.close()
            if from_host:
                raise


class _HostsLoop:
    """Marker: asyncio's running loop in the guest is the host's own."""

    __slots__ = ()


_HOST: Any = _HostsLoop()


def _abandonable(turns: Turns, abandoned_because: list[str]) -> Turns:
    """`turns`, warning if they are closed before the run has finished
    (the host dropped the run, or refused to run it further). A function of
    its own, not a method: the generator must not refer to the `GuestRun`
    that holds it, or dropping the run would leave a cycle for the garbage
    collector instead of ending it at once."""
    try:
        yield from turns
    except GeneratorExit:
        why = (
            abandoned_because[0]
            if abandoned_because
            else "its host dropped it (the host loop stopped without running the "
            "callbacks it was given)"
        )
        warnings.warn(
            f"tether guest run got abandoned without properly finishing: {why}. Its "
            "tasks were stopped where they waited (their coroutines closed, without "
            "a cancellation). Keep the host loop running until start_guest_run's "
            "done_callback has been called",
            RuntimeWarning,
            stacklevel=1,
        )
        raise


def _io_wait_failed(error: BaseException) -> TetherInternalError:
    failure = TetherInternalError("the guest run's wait for I/O failed (the cause)")
    failure.__cause__ = error
    return failure


def start_guest_run(
    async_fn: Callable[..., Awaitable[Any]],
    *args: object,
    run_sync_soon_threadsafe: Callable[[Callable[[], object]], object],
    done_callback: Callable[[outcome.Outcome[Any]], object],
    run_sync_soon_not_threadsafe: Callable[[Callable[[], object]], object] | None = None,
    host_uses_signal_set_wakeup_fd: bool = False,
    clock: Clock | None = None,
    instruments: Sequence[Instrument] = (),
    restrict_keyboard_interrupt_to_checkpoints: bool = False,
    strict_exception_groups: bool = True,
    schedule_seed: int | None = None,
    scheduler: Scheduler | None = None,
) -> None:
    """Start ``async_fn(*args)`` as the main task of a tether run that runs
    as a *guest* of another event loop (the *host*: asyncio, Tk, Qt, ...)
    on the calling thread, which the host loop runs.

    Returns once the run is set up, before any of the run's tasks has run:
    from then on the thread is inside the run (`in_tether_run` is true), so
    code on the host may call tether's synchronous functions
    (`current_time`, `spawn_system_task`, `current_tether_token`, a
    nursery's ``start_soon``, ``CancelScope.cancel``, `Event.set` ...). The
    run itself proceeds in callbacks that the host runs, and ends by calling
    ``done_callback(outcome)`` on the host thread, with what `tether.run`
    would have returned or raised as an `outcome.Outcome`. Everything works
    as in `tether.run` (its waits for I/O happen in a worker thread); the
    host's clock is not used. One thread hosts one tether run at a time.

    Args:
      run_sync_soon_threadsafe: ``fn -> None``: have the host loop call
        ``fn()`` soon, on its thread. Must be callable from any thread
        (asyncio: ``loop.call_soon_threadsafe``).
      done_callback: called with the run's outcome when the run is over;
        typically it stops the host loop, or reports the result. If it
        raises, the error goes to whatever runs the host's callbacks.
      run_sync_soon_not_threadsafe: the same as `run_sync_soon_threadsafe`,
        called only from the host thread, if the host has a cheaper way
        (asyncio: ``loop.call_soon``). Default: `run_sync_soon_threadsafe`.
      host_uses_signal_set_wakeup_fd: whether the host loop uses
        `signal.set_wakeup_fd` (asyncio does, for ``add_signal_handler``;
        Tk and Qt do not). If false, tether points it at its own wakeup
        socket for the length of the run (so that a signal wakes its wait
        for I/O), with a `RuntimeWarning` if a wakeup fd was set already.

    The other arguments (``clock``, ``instruments``,
    ``restrict_keyboard_interrupt_to_checkpoints``,
    ``strict_exception_groups``, ``schedule_seed``, ``scheduler``) are those
    of `tether.run`. (A ``scheduler`` is never told that every task is
    blocked: in a guest run, host code can always wake one.)

    The host must keep its loop running, and run the callbacks it is given,
    until `done_callback` has been called. A guest run the host drops (the
    host loop stops first, or refuses a callback) is abandoned: it warns
    with a `RuntimeWarning`, and its tasks neither finish nor are cancelled.

    Cancellation: not a checkpoint (a synchronous function). Cancel the run
    from the host like any other work: cancel a `CancelScope` that the main
    task opened (from a host callback), and the run unwinds and ends with
    ``done_callback``.

    KeyboardInterrupt: in the main thread, a Ctrl-C while host code runs is
    delivered to the run's main task (as for `tether.run`, at its next
    checkpoint), and the run ends with `KeyboardInterrupt` as its outcome.

    Raises:
      RuntimeError: the calling thread is in a tether run already
        (`tether.run`, `tether.aio.run`, or another guest run).
      TypeError: `async_fn` is a coroutine object, or a callback is not
        callable; the same checks as `tether.run` for the other arguments.
      TetherInternalError: the run could not be set up (a clock or
        instrument that raised while the run started, as the cause).
    """
    what = "tether.lowlevel.start_guest_run"
    check_no_run_here(f"{what}()")
    check_async_fn(async_fn, what)
    for name, callback in (
        ("run_sync_soon_threadsafe", run_sync_soon_threadsafe),
        ("done_callback", done_callback),
    ):
        if not callable(callback):
            raise TypeError(f"{what}(): {name} must be callable, got {callback!r}")
    if run_sync_soon_not_threadsafe is None:
        run_sync_soon_not_threadsafe = run_sync_soon_threadsafe
    elif not callable(run_sync_soon_not_threadsafe):
        raise TypeError(
            f"{what}(): run_sync_soon_not_threadsafe must be callable or None, "
            f"got {run_sync_soon_not_threadsafe!r}"
        )
    if not strict_exception_groups:
        warn_loose(f"{what}(..., strict_exception_groups=False)")
    runner = new_runner(
        GuestRunner, clock, instruments, schedule_seed, scheduler, strict_exception_groups
    )
    assert isinstance(runner, GuestRunner)
    setup = HostThreadSetup(
        runner,
        restrict_keyboard_interrupt_to_checkpoints,
        take_over_wakeup_fd=None if host_uses_signal_set_wakeup_fd else True,
    )
    guest = GuestRun(
        runner,
        lifetime(runner, async_fn, args, setup, guest=True),
        run_sync_soon_threadsafe,
        run_sync_soon_not_threadsafe,
        done_callback,
    )
    guest.start()

"""Running blocking code in worker threads, and calling back into the run.

`to_thread.run_sync` hands a synchronous call to a worker thread and parks
the calling task until the result comes back through
`TetherToken.run_sync_soon`. Worker threads come from the process-wide
cache behind `tether.lowlevel.start_thread_soon` (`_core/_thread_cache.py`),
so a program making many short calls starts few threads.

While a worker runs a job for a task, the thread knows that task (a
thread-local `_ThreadLink`). `from_thread.run` / `from_thread.run_sync` use
it to send work back: unless the call may be abandoned, the work runs *in the
waiting task itself*, inside its cancel scopes, so cancelling the
`to_thread.run_sync` caller also cancels what the thread asked the run to do.
With ``abandon_on_cancel=True`` (the task may have gone away) or an explicit
token, the work runs in a new system task instead.

Invariants: the limiter is only touched from the run's thread; a waiting
task is rescheduled either with a `_FromThreadCall` (the thread is blocked
waiting for its reply, so no result can arrive meanwhile) or, once, with the
job's outcome. `_ActiveThreads.count` is the number of `to_thread.run_sync`
calls of the run that are waiting for their thread (what
`tether.testing.active_thread_count` reports).
"""

from __future__ import annotations

import contextvars
import inspect
import itertools
import queue
import threading
import types
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import outcome

from ._core import (
    Abort,
    RunFinishedError,
    RunVar,
    Task,
    TetherToken,
    WaitInfo,
    WouldBlock,
    cancel_shielded_checkpoint,
    check_thread_name,
    checkpoint_if_cancelled,
    current_task,
    current_tether_token,
    disable_ki_protection,
    expect_thread_report,
    forget_async_library,
    in_tether_run,
    mark_tether_context,
    register_wait_describer,
    reschedule,
    spawn_system_task,
    start_thread_soon,
    thread_report_received,
    thread_reports_due,
    wait_task_rescheduled,
)
from ._sync import CapacityLimiter, Event

T = TypeVar("T")

#: Tokens in the default limiter: at most this many `to_thread.run_sync`
#: calls run at once unless a `limiter` is passed.
DEFAULT_LIMIT = 40


# ---------------------------------------------------------------------------
# to_thread.run_sync


class _Limiter(Protocol):
    async def acquire_on_behalf_of(self, borrower: object) -> None: ...

    def release_on_behalf_of(self, borrower: object) -> None: ...


_default_limiter: RunVar[CapacityLimiter] = RunVar("tether.to_thread default limiter")


def current_default_thread_limiter() -> CapacityLimiter:
    """The `CapacityLimiter` that `to_thread.run_sync` uses when it is not
    given one: 40 tokens, one per run. Change its ``total_tokens`` to allow
    more (or fewer) threads at once."""
    try:
        return _default_limiter.get()
    except LookupError:
        limiter = CapacityLimiter(DEFAULT_LIMIT)
        _default_limiter.set(limiter)
        return limiter


class _ActiveThreads:
    """How many `to_thread.run_sync` calls of one run wait for their thread,
    and an event set when that number drops to zero."""

    __slots__ = ("_all_done", "count")

    def __init__(self) -> None:
        self.count = 0
        #: Set when `count` next drops to zero; made only when someone
        #: waits for that (`all_done`), since one caller making calls in a
        #: row drops it to zero at every call.
        self._all_done: Event | None = None

    def all_done(self) -> Event:
        """The event set when `count` next drops to zero."""
        if self._all_done is None:
            self._all_done = Event()
        return self._all_done

    def started(self) -> None:
        self.count += 1

    def finished(self) -> None:
        self.count -= 1
        if self.count == 0 and self._all_done is not None:
            self._all_done.set()
            # A fresh event (when asked for) for the next time threads run.
            self._all_done = None


_active_threads: RunVar[_ActiveThreads] = RunVar("tether.to_thread active threads")


def active_threads() -> _ActiveThreads:
    """The current run's `_ActiveThreads` (created on first use)."""
    try:
        return _active_threads.get()
    except LookupError:
        active = _ActiveThreads()
        _active_threads.set(active)
        return active


def thread_jobs_running() -> int:
    """How many worker-thread jobs of this run's `to_thread.run_sync` calls
    have not reported back yet, whatever limiter they use, abandoned calls
    included (their report still returns a limiter token). While there are
    any, the run is not deadlocked. Not a checkpoint."""
    return thread_reports_due()


class _ThreadPlaceholder:
    """Borrows the limiter's token on behalf of a worker thread's job."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<tether thread job {self.name!r}>"


class _ThreadLink:
    """What a worker thread knows about the `to_thread.run_sync` call it
    serves. Set in the thread for the duration of the job. It is also the
    waiting task's ``custom_sleep_data``: what the task tree says it waits
    on."""

    __slots__ = (
        "abandon_on_cancel",
        "from_thread_call",
        "function",
        "raise_cancel",
        "task",
        "thread_name",
        "token",
    )

    def __init__(
        self,
        token: TetherToken,
        task: Task,
        abandon_on_cancel: bool,
        thread_name: str,
        function: object,
    ) -> None:
        self.token = token
        #: The waiting task; None once the call was abandoned (only ever
        #: read and written in the run's thread).
        self.task: Task | None = task
        self.abandon_on_cancel = abandon_on_cancel
        #: Set (from the run's thread) once cancellation reached the caller.
        self.raise_cancel: Callable[[], Any] | None = None
        #: The thread's name while it runs the job, and the function it runs
        #: (for the task tree).
        self.thread_name = thread_name
        self.function = function
        #: The `from_thread` call the thread is blocked in, waiting for the
        #: run's reply; None otherwise. Written by the worker thread.
        self.from_thread_call: _FromThreadCall | None = None


class _WorkerLocal(threading.local):
    link: _ThreadLink | None = None


_worker_local = _WorkerLocal()
_job_numbers = itertools.count()


async def to_thread_run_sync(
    sync_fn: Callable[..., T],
    *args: Any,
    thread_name: str | None = None,
    abandon_on_cancel: bool = False,
    limiter: _Limiter | None = None,
) -> T:
    """Run ``sync_fn(*args)`` in a worker thread and return its result.

    Other tasks keep running while the thread works. The call runs in a copy
    of the calling task's `contextvars` context. From inside the thread,
    `tether.from_thread.run` / `run_sync` get back into the run and
    `tether.from_thread.check_cancelled` polls for cancellation.

    Args:
      sync_fn: a synchronous callable (use `functools.partial` for keyword
        arguments).
      thread_name: the thread's name while it runs the call, as
        `threading.Thread.name` and, where the platform supports it
        (``pthread_setname_np``), as the OS-level name that ``ps -T`` or a
        debugger shows (truncated to the OS limit, 15 bytes on Linux, with
        non-ASCII characters replaced by ``?``). Default:
        ``"<sync_fn.__name__> from <calling task's name>"`` (``None`` stands
        in for a callable without ``__name__``, such as a
        `functools.partial`). Afterwards the thread gets its own name back,
        ``"Tether thread N"``.
      abandon_on_cancel: what cancellation does once the thread is running;
        see below.
      limiter: an object with ``acquire_on_behalf_of`` and
        ``release_on_behalf_of`` (usually a `tether.CapacityLimiter`) that
        bounds how many threads run at once; default
        `current_default_thread_limiter()`. A token is borrowed before the
        thread starts and returned once the thread has *actually* finished.

    Cancellation: this is a checkpoint. It checks for cancellation on entry,
    and waiting for a limiter token is cancellable. Python cannot stop a
    thread, so once ``sync_fn`` runs:

    * with ``abandon_on_cancel=False`` (the default) cancellation is ignored
      and the call waits for the thread, as if ``sync_fn`` had been called
      directly; the result is returned and the next checkpoint raises
      `Cancelled`. The thread can notice the cancellation with
      `from_thread.check_cancelled`.
    * with ``abandon_on_cancel=True`` the call raises `Cancelled` at once and
      the thread keeps running in the background; its result or error is
      discarded. Only for side-effect-free work. If the run ends before such
      a thread, its limiter token is never returned.

    The call's `contextvars` changes stay in the thread: the calling task's
    context is not modified. Inside the thread, `sniffio` reports no async
    library (the thread is not running tether), even if the calling task's
    context said otherwise.

    Raises:
      Exception: whatever ``sync_fn(*args)`` raises, unchanged.
      TypeError: if ``sync_fn`` is an async function, or at once (before
        the checkpoint) if ``thread_name`` is neither a `str` nor None.
    """
    # Checked before the checkpoint (`start_thread_soon` checks too, but
    # only after the limiter's token was taken).
    check_thread_name(
        thread_name,
        "tether.to_thread.run_sync: thread_name",
        "; pass str(...) to use that value as the thread's name",
    )
    await checkpoint_if_cancelled()
    abandon = bool(abandon_on_cancel)
    token_source: _Limiter
    task = current_task()
    token = current_tether_token()
    if thread_name is None:
        thread_name = f"{getattr(sync_fn, '__name__', None)} from {task.name}"
    link = _ThreadLink(token, task, abandon, thread_name, sync_fn)
    placeholder = _ThreadPlaceholder(f"tether.to_thread.run_sync-{next(_job_numbers)}")
    context = _thread_context()

    def job_in_thread() -> T:
        _worker_local.link = link
        try:
            return context.run(_call_sync_in_thread, sync_fn, args)
        finally:
            _worker_local.link = None

    def report_back(result: outcome.Outcome[T]) -> None:
        # Runs in the run's thread. Release the token first; if the limiter's
        # release fails, that error replaces (and chains onto) the result.
        # (The outcome itself goes to the task, which unwraps it: no new
        # outcome, no closure per call.)
        thread_report_received()
        try:
            token_source.release_on_behalf_of(placeholder)
        except BaseException as exc:
            if isinstance(result, outcome.Error) and exc.__context__ is None:
                exc.__context__ = result.error
            result = outcome.Error(exc)
        if link.task is not None:
            reschedule(link.task, outcome.Value(result))

    def deliver(result: outcome.Outcome[T]) -> None:
        try:
            token.run_sync_soon(report_back, result)
        except RunFinishedError:
            # The run is over, so the task was cancelled and abandoned us.
            pass

    def abort(raise_cancel: Callable[[], Any]) -> Abort:
        link.raise_cancel = raise_cancel
        if abandon:
            link.task = None
            return Abort.SUCCEEDED
        return Abort.FAILED

    if limiter is None:
        default_limiter = current_default_thread_limiter()
        token_source = default_limiter
        try:
            # The default limiter is ours: with a token free, take it without
            # the schedule point of `acquire_on_behalf_of` (this call has its
            # cancel point above, and waiting for the thread is its schedule
            # point).
            default_limiter.acquire_on_behalf_of_nowait(placeholder)
        except WouldBlock:
            await default_limiter.acquire_on_behalf_of(placeholder)
    else:
        token_source = limiter
        await limiter.acquire_on_behalf_of(placeholder)
    active = active_threads()
    active.started()
    try:
        # (Counted even after the call is abandoned: the thread's report
        # still returns the limiter's token, which can wake a task.)
        expect_thread_report()
        try:
            start_thread_soon(job_in_thread, deliver, thread_name)
        except BaseException:
            thread_report_received()
            token_source.release_on_behalf_of(placeholder)
            raise

        while True:
            # (What the task tree shows this task waiting on; the kernel
            # clears it at each wakeup.)
            task.custom_sleep_data = link
            message = await wait_task_rescheduled(abort)
            if isinstance(message, _FromThreadCall):
                await message.run_in_host_task()
                del message
                continue
            final: outcome.Outcome[T] = message
            return final.unwrap()
    finally:
        active.finished()


def _thread_context() -> contextvars.Context:
    """A copy of the current context for a worker thread to run in. sniffio
    (if anyone uses it) reports no library there: the thread is not in async
    context, and the task's library name would otherwise follow the copy."""
    context = contextvars.copy_context()
    forget_async_library(context)
    return context


def _call_sync_in_thread(sync_fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    result = sync_fn(*args)
    if inspect.iscoroutine(result):
        result.close()
        raise TypeError(
            f"tether.to_thread.run_sync expected a sync function, but "
            f"{getattr(sync_fn, '__qualname__', sync_fn)!r} appears to be asynchronous "
            "(it returned a coroutine); to run async code from a thread use "
            "tether.from_thread.run"
        )
    return result


def _is_awaitable_call_result(value: object) -> bool:
    """Whether an async function's call gave something `await` accepts that
    tether can run: a coroutine, or a generator-based coroutine (a
    `types.coroutine` generator, as some tether primitives return)."""
    if isinstance(value, types.CoroutineType):
        return True
    return isinstance(value, types.GeneratorType) and bool(
        value.gi_code.co_flags & inspect.CO_ITERABLE_COROUTINE
    )


# ---------------------------------------------------------------------------
# from_thread


class _FromThreadCall:
    """One call a thread asked the run to make. Created in the thread; its
    outcome goes back through `reply`, for which the thread blocks."""

    __slots__ = ("args", "context", "fn", "is_async", "pauses_job", "reply")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], is_async: bool) -> None:
        self.fn = fn
        self.args = args
        self.is_async = is_async
        #: The calling thread is a `to_thread` job of the run it calls into:
        #: while the run handles the call, the thread waits for the run
        #: rather than working for it, so the run does not count its report
        #: as due (see `expect_thread_report`). Set by `send`.
        self.pauses_job = False
        # The thread's context, so contextvars it set are visible to the
        # call; the call runs in the run's thread, so sniffio says tether.
        self.context = contextvars.copy_context()
        mark_tether_context(self.context)
        self.reply: queue.SimpleQueue[outcome.Outcome[Any]] = queue.SimpleQueue()

    # -- in the run's thread -------------------------------------------------

    def _begin(self) -> None:
        """The call reached the run (a run_sync_soon callback)."""
        if self.pauses_job:
            thread_report_received()

    def _answer(self, result: outcome.Outcome[Any]) -> None:
        """Send `result` back to the thread, which works on from here."""
        if self.pauses_job:
            expect_thread_report()
        self.reply.put(result)

    @disable_ki_protection
    async def _call_async(self) -> Any:
        coro = self.fn(*self.args)
        if not _is_awaitable_call_result(coro):
            raise TypeError(
                f"tether.from_thread.run expected an async function, but "
                f"{getattr(self.fn, '__qualname__', self.fn)!r} appears to be synchronous "
                f"(it returned {coro!r}); use tether.from_thread.run_sync for "
                "synchronous functions"
            )
        return await coro

    @disable_ki_protection
    def _call_sync(self) -> Any:
        result = self.context.run(self.fn, *self.args)
        if inspect.iscoroutine(result):
            result.close()
            raise TypeError(
                f"tether.from_thread.run_sync expected a synchronous function, but "
                f"{getattr(self.fn, '__qualname__', self.fn)!r} returned a coroutine; "
                "use tether.from_thread.run for async functions"
            )
        return result

    async def run_in_host_task(self) -> None:
        """Run the call in the task waiting in `to_thread.run_sync`, inside
        its cancel scopes."""
        if not self.is_async:
            self._answer(outcome.capture(self._call_sync))
            return
        task = current_task()
        task_context = task.context
        # The kernel steps a task inside ``task.context``: switch it, and let
        # one schedule point pass so the next step runs in the new context.
        task.context = self.context
        await cancel_shielded_checkpoint()
        try:
            result = await outcome.acapture(self._call_async)
        finally:
            task.context = task_context
        await cancel_shielded_checkpoint()
        self._answer(result)

    async def _run_as_system_task(self) -> None:
        self._answer(await outcome.acapture(self._call_async))

    def start_in_system_task(self) -> None:
        # A run_sync_soon callback: must never raise.
        self._begin()
        if not self.is_async:
            self._answer(outcome.capture(self._call_sync))
            return
        try:
            spawn_system_task(self._run_as_system_task, name=self.fn, context=self.context)
        except RuntimeError:
            self._answer(
                outcome.Error(
                    RunFinishedError("the tether run is shutting down and takes no new work")
                )
            )

    # -- in the calling thread -----------------------------------------------

    def send(self, tether_token: TetherToken | None) -> Any:
        what = "run" if self.is_async else "run_sync"
        if in_tether_run():
            raise RuntimeError(
                f"tether.from_thread.{what}() was called from a thread that is running "
                "a tether run (tether.run, or the host loop of a guest run); it would "
                "block that run forever. In async code, call the function directly "
                "(await it, for an async function) instead; from a guest run's host, "
                "start a task in the run"
            )
        link = _worker_local.link
        if tether_token is None:
            if link is None:
                raise RuntimeError(
                    f"tether.from_thread.{what}() was called from a thread that was not "
                    "started by tether.to_thread.run_sync; pass "
                    "tether_token=tether.lowlevel.current_tether_token() (obtained inside "
                    "the run) to say which run to use"
                )
            token = link.token
        elif isinstance(tether_token, TetherToken):
            token = tether_token
        else:
            # A RuntimeError, as trio raises for a bad trio_token.
            raise RuntimeError(
                f"tether.from_thread.{what}() needs tether_token to be a "
                f"tether.lowlevel.TetherToken, got {tether_token!r}; get one with "
                "tether.lowlevel.current_tether_token() inside the run"
            )

        # Recorded before the call is handed over, so that whoever looks at
        # the waiting task (the task tree) sees the thread's call as soon as
        # the call can run.
        if link is not None:
            link.from_thread_call = self
            self.pauses_job = token is link.token
        try:
            if tether_token is not None or link is None or link.abandon_on_cancel:
                token.run_sync_soon(self.start_in_system_task)
            else:

                def hand_to_waiting_task() -> None:
                    assert link.task is not None, "only abandoned calls lose their task"
                    self._begin()
                    reschedule(link.task, outcome.Value(self))

                token.run_sync_soon(hand_to_waiting_task)
            return self.reply.get().unwrap()
        finally:
            if link is not None:
                link.from_thread_call = None


def from_thread_run(
    afn: Callable[..., Awaitable[T]], *args: Any, tether_token: TetherToken | None = None
) -> T:
    """From a thread, run ``await afn(*args)`` in a tether run, block until it
    finishes, and return its result (or raise its exception).

    Which run: a thread started by `tether.to_thread.run_sync` finds its run
    by itself; any other thread passes ``tether_token`` (from
    `tether.lowlevel.current_tether_token`, called inside the run).

    Cancellation: from a `to_thread.run_sync` thread (without
    ``abandon_on_cancel``), `afn` runs inside the task that waits for the
    thread, so it is cancelled when that task is: `afn` then raises
    `Cancelled`, which propagates into this thread (let it propagate; the
    `to_thread.run_sync` call re-raises it in the task). With an explicit
    token or from an ``abandon_on_cancel=True`` thread, `afn` runs in a new
    system task, cancelled only when the run shuts down.

    Raises:
      RunFinishedError: the run has finished, or is shutting down.
      RuntimeError: called from a thread running tether.run (await `afn`
        there instead), with no token from a thread tether did not start,
        or with a ``tether_token`` that is not a `TetherToken`.
      TypeError: `afn` is not an async function.
    """
    return _FromThreadCall(afn, args, True).send(tether_token)  # type: ignore[no-any-return]


def from_thread_run_sync(
    fn: Callable[..., T], *args: Any, tether_token: TetherToken | None = None
) -> T:
    """From a thread, run ``fn(*args)`` in a tether run's thread, block until
    it returns, and return its result (or raise its exception).

    `fn` runs in the run's thread between task steps, so it may use
    non-blocking tether APIs (set an `Event`, `nursery.start_soon`, ...).
    Which run is used is decided as for `from_thread.run`. Not a checkpoint
    and not cancellable: `fn` is synchronous.

    Raises:
      RunFinishedError: the run has finished.
      RuntimeError: called from a thread running tether.run (call `fn`
        directly there), with no token from a thread tether did not start,
        or with a ``tether_token`` that is not a `TetherToken`.
      TypeError: `fn` is an async function.
    """
    return _FromThreadCall(fn, args, False).send(tether_token)  # type: ignore[no-any-return]


def from_thread_check_cancelled() -> None:
    """From a thread started by `tether.to_thread.run_sync`, raise
    `Cancelled` if the task waiting for this thread has been cancelled.

    Lets a long job (started with ``abandon_on_cancel=False``) stop early
    when its caller is cancelled: poll it, and let `Cancelled` propagate out
    of the job; the caller's cancel scope then catches it as usual. Once
    cancellation has reached the waiting task this keeps raising, even if
    the cancellation was later shielded or the scope left.

    Raises:
      Cancelled: the waiting task was cancelled.
      RuntimeError: this thread was not started by `tether.to_thread.run_sync`.
    """
    link = _worker_local.link
    if link is None:
        raise RuntimeError(
            "tether.from_thread.check_cancelled() only works in a thread started by "
            "tether.to_thread.run_sync; in a task, use tether.lowlevel.checkpoint_if_cancelled"
        )
    raise_cancel = link.raise_cancel
    if raise_cancel is not None:
        raise_cancel()


# ---------------------------------------------------------------------------
# What a task in `to_thread.run_sync` waits on, for the task tree
# (`current_task_tree`): its ``custom_sleep_data`` is the `_ThreadLink`.


def _describe_thread_wait(task: Task, link: _ThreadLink, now: float) -> WaitInfo:
    function = getattr(link.function, "__qualname__", None) or repr(link.function)
    details = {
        "thread": link.thread_name,
        "function": link.function,
        "abandon_on_cancel": link.abandon_on_cancel,
    }
    call = link.from_thread_call
    if call is not None:
        what = "run" if call.is_async else "run_sync"
        called = getattr(call.fn, "__qualname__", None) or repr(call.fn)
        return WaitInfo(
            "from_thread",
            f"waiting for thread {link.thread_name!r} ({function}), which waits for "
            f"tether.from_thread.{what}({called}) to return",
            details={**details, "from_thread": call.fn},
        )
    return WaitInfo(
        "thread",
        f"waiting for thread {link.thread_name!r} to return from {function} (to_thread.run_sync)",
        details=details,
    )


register_wait_describer(_ThreadLink, _describe_thread_wait)

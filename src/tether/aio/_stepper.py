"""The stepper: what the kernel steps for every aio task of a loop.

During a segment every aio task is a kernel task whose ``coro`` is the
loop's one `_Stepper`: the kernel calls its ``send`` and ``throw``, and it
steps the coroutine of the task the kernel is stepping (what it does
around each step is listed in `_task.py`'s docstring, with the task's
states). ``send`` has a fast path for a task with nothing pending; every
other step goes through `_Stepper._step`. When the coroutine ends,
`_finish` records the outcome on the task and queues its first done
callback; the kernel task then ends normally (`lowlevel.TASK_EXIT`). At the
end of a segment the stepper ends the kernel tasks of the aio tasks that
leave the kernel (`_frozen.DETACH`).

Invariant: the stepper runs only the coroutine of the task the kernel is
stepping (``current_stepping_state().current_task``), which is asyncio's
current task for exactly the duration of the coroutine's step.
"""

from __future__ import annotations

from asyncio import CancelledError
from typing import TYPE_CHECKING, Any

import outcome

from .. import Cancelled, lowlevel
from ._callbacks import CountingHook, warn_if_slow
from ._frozen import stays_at_stop, stuck_error, wait_would_last
from ._park import PARK
from ._stdlib import Future, StdlibTask, enter_task, leave_task
from ._task import (
    _EMPTY_CONTEXT,
    DONE,
    PARKED,
    QUEUED,
    RUNNING,
    STARTING,
    WAITING,
    WAITING_DETACHED,
    Task,
    _retry_interrupt,
    _set_result,
    _Wakeup,
)

if TYPE_CHECKING:
    from ._loop_core import LoopCore

#: What the stepper gives the kernel for the coroutine's bare ``yield``.
_CHECKPOINT = lowlevel.CHECKPOINT
#: What the stepper gives the kernel when the task's kernel run ends.
_TASK_EXIT = lowlevel.TASK_EXIT
#: What only the stepper yields to start a wait (the task's wakeup, or
#: `PARKED`).
_ForeignWaitAbort = lowlevel.ForeignWaitAbort


# The stepper's own code keeps the task's state consistent: a Ctrl-C there
# is deferred (the task's coroutine itself is not protected).
_protected = lowlevel.enable_ki_protection


class _Stepper:
    """What the kernel steps for every task of one loop during one segment
    (the ``coro`` of each task; see the module docstring). Not a coroutine:
    the kernel calls its ``send`` and ``throw``, and they step the coroutine
    of the task the kernel is stepping."""

    __slots__ = ("_kernel", "_loop", "send")

    def __init__(self, loop: LoopCore) -> None:
        self._loop = loop
        #: The run (`lowlevel.current_stepping_state`): its ``current_task``
        #: is the task a step is for.
        self._kernel = lowlevel.current_stepping_state()
        #: What the kernel calls to step a task (``task.coro.send``): the
        #: bound method, made once, so that a step does not make one.
        self.send = self._send_timed if loop._debug else self._send

    def __repr__(self) -> str:
        return f"<tether.aio task stepper of {self._loop!r}>"

    def set_debug(self, enabled: bool) -> None:
        """Debug mode turned on or off while the segment runs: time each
        step (`warn_if_slow`) or not."""
        self.send = self._send_timed if enabled else self._send

    @_protected
    def _send_timed(self, value: Any) -> Any:
        """`_send`, timed: debug mode's ``send``."""
        loop = self._loop
        start = loop.time()
        result = self._send(value)
        del value  # see _send
        warn_if_slow(loop, self._kernel.current_task, start)
        return result

    def close_segment(self) -> None:
        """The segment is over: drop the bound ``send`` (it refers back to
        the stepper, a cycle only the garbage collector would break)."""
        del self.send

    def close(self) -> None:
        # The kernel closes the coroutines of tasks it cannot wake after a
        # crash; an aio task's coroutine stays with the task.
        pass

    @_protected
    def _send(self, value: Any) -> Any:
        task: Task[Any] = self._kernel.current_task  # type: ignore[assignment]
        loop = self._loop
        if task._slow or loop._frozen:
            # (The frames of a step can outlive it, as the f_back of the
            # coroutine's frame in an error's traceback (Python 3.12 and
            # later link it): the task stored in them would keep itself
            # alive, and so would the value sent in, an outcome whose
            # error's traceback holds the frames of the task's wait. So
            # the slow path reads the task again, the error paths drop both
            # before `_finish`, and the slow path drops the value before it
            # returns.)
            del task
            result = self._step(value, None)
            del value
            return result
        # The fast path: `_step` for a task with nothing pending, written
        # out. It saves a call and the tests of what is pending on every
        # step: taking `_step` for every step costs about 10% more CPU time
        # on the `checkpoints` row of benchmarks/bench_aio.py (a sleep(0) is
        # one step) and about 15% on `spawn` (measured). tests/aio/
        # test_stepper.py runs programs through both and checks that they
        # agree.
        task._fut_waiter = None
        enter_task(loop, task)
        try:
            yielded = task._coro.send(value)
        except StopIteration as stop:
            # The coroutine returned (nothing refers to `stop` afterwards).
            leave_task(loop, task)
            return _finish(task, loop, stop.value, None)
        except BaseException as exc:
            leave_task(loop, task)
            del task, value
            return _finish(self._kernel.current_task, loop, None, exc)  # type: ignore[arg-type]
        leave_task(loop, task)
        # (The first step of a task may be this fast one: STARTING with no
        # resume value.)
        task._task_state = RUNNING
        if yielded is None:
            # A bare yield: give up one iteration. The task re-enters the run
            # queue, so callbacks queued from now on run after it.
            loop._open_batch = None
            task._aio_point = True
            return _CHECKPOINT
        kind = type(yielded)
        if (
            (kind is Future or kind is Task or kind is StdlibTask)
            and yielded is not task
            and not task._must_cancel
            and yielded._asyncio_future_blocking
            and yielded._loop is loop
            and not yielded.done()
        ):
            # The common wait: a pending future (or task, ours or the
            # standard library's) of the task's loop, not the task itself,
            # awaited the normal way, with no ``cancel()`` pending
            # (asyncio's checks then all pass, and the wakeup cannot run
            # before the task waits). The kernel blocks the task on its
            # wakeup (a `lowlevel.ForeignWaitAbort`) without calling
            # `_on_foreign_yield`, which takes every other case.
            yielded._asyncio_future_blocking = False
            wakeup = task._wakeup
            if wakeup is None:
                wakeup = task._wakeup = _Wakeup(task)
            yielded.add_done_callback(wakeup, context=_EMPTY_CONTEXT)
            task._fut_waiter = yielded
            task._aio_point = True
            task._task_state = WAITING
            return wakeup
        if yielded is PARK and not task._must_cancel:
            # Parked without a future (see `_park.py`): `PARKED` is the
            # abort function and the ``_fut_waiter``.
            task._fut_waiter = PARKED
            task._aio_point = True
            task._task_state = WAITING
            return PARKED
        # Another future (`_on_foreign_yield` sets the flag back) or a
        # tether-native trap.
        task._aio_point = False
        if yielded is _TASK_EXIT or isinstance(yielded, _ForeignWaitAbort):
            return _BadYield(yielded)
        return yielded

    @_protected
    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        error = typ if isinstance(typ, BaseException) else typ(val)
        del typ, val, tb
        loop = self._loop
        start = loop.time() if loop._debug else None
        result = self._step(None, error)
        del error  # see send()
        if start is not None:
            warn_if_slow(loop, self._kernel.current_task, start)
        return result

    @_protected
    def _step(self, value: Any, error: BaseException | None) -> Any:
        """One step of the task being stepped, sending `value` (or throwing
        `error`) in, for every case: the first step in a segment of a task
        with a resume value, a pending `cancel()` or interrupt, the end of
        the segment."""
        task: Task[Any] = self._kernel.current_task  # type: ignore[assignment]
        loop = self._loop
        state = task._task_state
        if state is STARTING:
            # The first step in this segment: resume where the task left off.
            resume = getattr(task, "_resume", None)
            if resume is not None:
                del task._resume
                value, error = resume
            else:
                value = error = None
            del resume
        if loop._frozen:
            # The segment is ending: the task leaves the kernel (its kernel
            # task ends), unless it is inside tether-native code.
            if state is WAITING_DETACHED or state is QUEUED:
                # Still waiting for its future (the segment's end moved it
                # out of the kernel's wait), or already queued by the
                # future's wakeup.
                return _TASK_EXIT
            cancelled = isinstance(error, Cancelled)
            if task._aio_point and not stays_at_stop(task, cancelled):
                if cancelled:
                    # At a bare-yield checkpoint when the segment's nursery
                    # was cancelled: it resumes normally next time.
                    error = None
                task._set_resume(value, error)
                task._queue()
                return _TASK_EXIT
            if task._aio_point and not cancelled and wait_would_last(loop, task):
                # It stays, and a shield keeps the segment's cancellation
                # away: it would go on for ever.
                error = stuck_error(task)
            # Otherwise it waited in tether-native code (a tether.sleep, a
            # nursery's exit...), woken by the end of the segment or not, or
            # `stays_at_stop`: it cannot leave the kernel here, so it goes on,
            # and unwinds with the kernel's Cancelled at its next wait (the
            # segment's nursery is cancelled), or leaves at its next
            # asyncio-level await.
        task._task_state = RUNNING
        interrupt = getattr(task, "_interrupt", None)
        if interrupt is not None:
            # `cancel()` aborted the tether-native wait: it raises asyncio's
            # CancelledError instead of the kernel's Cancelled.
            del task._interrupt
            if not loop._frozen and type(value) is outcome.Error:
                value = outcome.Error(interrupt)
                # A cancel() since then is answered by this error too, as
                # asyncio's step answers it with the awaited future's.
                task._must_cancel = False
            del interrupt
        if task._must_cancel and task._aio_point:
            if error is None and value is None:
                # Woken by the future an earlier cancel() cancelled: asyncio's
                # step throws that future's CancelledError (with the first
                # cancel()'s message), not a new one.
                error = _cancelled_error_of(task._fut_waiter) or task._make_cancelled_error()
            elif not isinstance(error, CancelledError):
                error = task._make_cancelled_error()
            task._must_cancel = False
        elif error is None and value is None and type(task._fut_waiter) is Task:
            # Woken by an aio task that ended with CancelledError (`_finish`
            # took this step off the fast path): that very error is thrown
            # in, as asyncio's wakeup throws what its ``result()`` raises.
            error = _cancelled_error_of(task._fut_waiter)
        # Still pending (resumed from a tether-native wait): stay slow.
        task._slow = task._must_cancel
        task._fut_waiter = None
        enter_task(loop, task)
        try:
            if error is None:
                yielded = task._coro.send(value)
            else:
                yielded = task._coro.throw(error)
        except StopIteration as stop:
            # The coroutine returned: `_finish` applies a pending cancel().
            leave_task(loop, task)
            del error, task  # see send()
            return _finish(self._kernel.current_task, loop, stop.value, None)  # type: ignore[arg-type]
        except BaseException as exc:
            leave_task(loop, task)
            del error, task, value  # see send()
            return _finish(self._kernel.current_task, loop, None, exc)  # type: ignore[arg-type]
        leave_task(loop, task)
        if yielded is None:
            loop._open_batch = None
            task._aio_point = True
            return _CHECKPOINT
        task._aio_point = False
        if yielded is _TASK_EXIT or isinstance(yielded, _ForeignWaitAbort):
            return _BadYield(yielded)
        if task._must_cancel:
            # A cancellation is pending and this may be a tether-native wait:
            # interrupt it once the kernel has blocked the task.
            token = loop._token
            if token is not None:
                token.run_sync_soon(_retry_interrupt, task)
        return yielded


def _cancelled_error_of(waiter: Any) -> BaseException | None:
    """The `CancelledError` that asyncio's wakeup of a task would get from
    `waiter`, what the task waited for, if it is a cancelled future (an aio
    task's own, the first time: `Task._make_cancelled_error`); None if it is
    not one."""
    if isinstance(waiter, Future):
        return waiter._make_cancelled_error() if waiter.cancelled() else None  # type: ignore[attr-defined]
    if waiter is None or waiter is PARKED:
        return None
    # A future-like object of another kind: what its result() raises.
    try:
        waiter.result()
    except CancelledError as exc:
        return exc
    except BaseException:
        return None
    return None


class _BadYield:
    """Stands for a kernel object the coroutine yielded that only a stepper
    may give the kernel (`lowlevel.TASK_EXIT`, a `lowlevel.ForeignWaitAbort`):
    it reaches `Task._on_foreign_yield`, which rejects it, so the coroutine
    gets asyncio's "bad yield" error."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


@_protected
def _finish(task: Task[Any], loop: LoopCore, value: Any, exc: BaseException | None) -> Any:
    """The coroutine returned `value` (`exc` is None) or raised `exc`
    (StopIteration is a return too): record the outcome on the task, and
    return what ends its kernel run normally."""
    if exc is not None and isinstance(exc, StopIteration):
        value, exc = exc.value, None
    task._task_state = DONE
    # The task keeps no reference to itself once done (asyncio's tasks
    # are collected, and report unretrieved errors, as soon as they are
    # dropped).
    task._wakeup = None
    hook = task._done_hook
    if hook is not None:
        # The first done callback, queued where the future would queue it.
        task._done_hook = None
        if type(hook) is CountingHook:
            hook = hook.member_finished(task, exc is None and not task._must_cancel)
        if hook is not None:
            # (`LoopCore._enqueue_callback`, inlined: this runs once per
            # task.)
            batch = loop._open_batch
            if batch is not None and batch.runq is loop._kernel.runq and not loop._frozen:  # type: ignore[union-attr]
                batch.append(hook)
                batch.append(task)
            else:
                loop._enqueue((hook, task))
            del batch
    del hook
    if exc is None:
        if task._must_cancel:
            task._must_cancel = False
            Future.cancel(task, msg=task._cancel_message)
        else:
            _set_result(task, value)
        # Ends the kernel task.
        return _TASK_EXIT
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code in _STEPPER_CODES:
        # Drop the stepper's own frame: it is not the task's code (and
        # it references the task).
        exc.__traceback__ = tb.tb_next
    del tb
    if isinstance(exc, CancelledError):
        # Kept for whoever first retrieves the outcome (`result()`,
        # `exception()`, or an aio task waiting for this one, whose next step
        # `_step` throws it in), as asyncio's task keeps it
        # (`Task._make_cancelled_error`). As on asyncio, a task whose
        # frames refer to the task itself is then in a cycle until then.
        task._cancelled_exc = exc
        for callback, _ in task._callbacks or ():
            if type(callback) is _Wakeup:
                callback.task._slow = True
        # (Without a message, as asyncio's task cancels itself here: the
        # kept error has it; a later retrieval gets a CancelledError
        # without one, as on asyncio.)
        Future.cancel(task)
    elif isinstance(exc, Cancelled) or (
        isinstance(exc, BaseExceptionGroup) and exc.split(Cancelled)[1] is None
    ):
        # A trio-style scope around this task's code was cancelled (or the
        # segment ended while it was in tether-native code) and the kernel's
        # Cancelled reached the top of the task: alone, or from a nursery
        # it had open, grouped with its children's.
        Future.cancel(task)
    elif isinstance(exc, KeyboardInterrupt | SystemExit):
        Future.set_exception(task, exc)
        loop._segment_failed(exc)
    else:
        Future.set_exception(task, exc)
    return _TASK_EXIT


_STEPPER_CODES = frozenset({_Stepper._send.__code__, _Stepper._step.__code__})

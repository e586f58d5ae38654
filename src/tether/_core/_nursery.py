"""Nurseries: the only way to run tasks concurrently.

A nursery is opened by a parent task with ``async with open_nursery()``. The
nursery closes, and the ``async with`` exits, only when the block's own code
and every task started in the nursery have finished. Every error from them
is collected; the first one cancels the nursery's scope so that siblings
stop; they are raised together as an `ExceptionGroup` (always a group, even
for one error), so none is lost.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar, overload

import outcome

from ._cancel import CancelScope, CancelStatus
from ._cancel_reason import CancelReason
from ._exceptions import Cancelled, TetherInternalError
from ._loose_groups import LOOSE_GROUP_NOTE, warn_loose
from ._misnesting import log_lost_error
from ._run_context import GLOBAL_RUN_CONTEXT, current_task
from ._traps import Abort, cancel_shielded_checkpoint, wait_task_rescheduled

if TYPE_CHECKING:
    from ._task import Task, TaskResult

StatusT = TypeVar("StatusT")
# The positional arguments `Nursery.start` passes on (see `_Startable*`).
_A1 = TypeVar("_A1", contravariant=True)
_A2 = TypeVar("_A2", contravariant=True)
_A3 = TypeVar("_A3", contravariant=True)


# What `Nursery.start` accepts, written out for type checkers so that its
# result has the type the task reports through ``task_status.started(...)``:
# an async function taking ``task_status: TaskStatus[T]`` (by keyword) after
# zero to three positional arguments. Other calls (more arguments, partials)
# fall back to an untyped overload.
class _Startable0(Protocol[StatusT]):
    def __call__(self, *, task_status: TaskStatus[StatusT]) -> Awaitable[object]: ...


class _Startable1(Protocol[StatusT, _A1]):
    def __call__(self, a1: _A1, /, *, task_status: TaskStatus[StatusT]) -> Awaitable[object]: ...


class _Startable2(Protocol[StatusT, _A1, _A2]):
    def __call__(
        self, a1: _A1, a2: _A2, /, *, task_status: TaskStatus[StatusT]
    ) -> Awaitable[object]: ...


class _Startable3(Protocol[StatusT, _A1, _A2, _A3]):
    def __call__(
        self, a1: _A1, a2: _A2, a3: _A3, /, *, task_status: TaskStatus[StatusT]
    ) -> Awaitable[object]: ...


def closed_nursery_error() -> RuntimeError:
    """The error for starting a task in a nursery that is closed (its block
    has exited and every task in it has finished)."""
    # (trio's wording, which code ported from trio may match on.)
    return RuntimeError("Nursery is closed to new arrivals")


def _raise_keeping_context(error: BaseException) -> NoReturn:
    """Raise `error` with the ``__context__`` it has now. (Raised while
    another exception is being handled, Python would make that one its
    context.) This function's frame shows in the traceback: for rare
    paths only (see `CancelScope.__exit__`)."""
    saved_context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = saved_context
        # (No reference cycle through this frame and the error.)
        del error, saved_context


class _NoStatusType:
    def __repr__(self) -> str:
        return "<no status>"


_NO_STATUS: Any = _NoStatusType()


class TaskStatus(Generic[StatusT]):
    """Passed as ``task_status`` to a function run with `Nursery.start`; the
    function calls ``task_status.started(value)`` once it is ready."""

    __slots__ = ()

    def started(self, value: StatusT | None = None) -> None:
        """Tell the `Nursery.start` call that started this function that it
        is ready: `start` returns `value`, and the task carries on as a child
        of the nursery. Call it once; not a checkpoint."""
        raise NotImplementedError


class _TaskStatusIgnored(TaskStatus[Any]):
    __slots__ = ()

    def __repr__(self) -> str:
        return "TASK_STATUS_IGNORED"

    def started(self, value: Any = None) -> None:
        pass


#: Default for a ``task_status`` parameter, so a function written for
#: `Nursery.start` can also be run with `Nursery.start_soon` or awaited.
TASK_STATUS_IGNORED: TaskStatus[Any] = _TaskStatusIgnored()


class _TaskStatus(TaskStatus[StatusT]):
    """The ``task_status`` of one `Nursery.start` call."""

    __slots__ = ("_new_nursery", "_old_nursery", "_value")

    #: The private nursery the task runs in until it calls `started`.
    _old_nursery: Nursery
    #: The nursery `start` was called on, which the task then moves into.
    _new_nursery: Nursery
    #: What the task passed to `started`; `_NO_STATUS` until it does.
    _value: Any

    def __init__(self, old_nursery: Nursery, new_nursery: Nursery) -> None:
        self._old_nursery = old_nursery
        self._new_nursery = new_nursery
        self._value = _NO_STATUS

    def __repr__(self) -> str:
        return f"<task status object at {id(self):#x}>"

    def started(self, value: StatusT | None = None) -> None:
        if self._value is not _NO_STATUS:
            raise RuntimeError("called 'started' twice on the same task status")
        self._value = value
        old = self._old_nursery
        # If the start() caller was cancelled meanwhile, the task stays where
        # it is and is cancelled with it; start() then raises Cancelled.
        if old._cancel_status.effectively_cancelled:
            return
        new = self._new_nursery
        if new._closed:
            raise TetherInternalError("nursery closed while a start() was pending")
        # (Read before the children move: until then the old status finds
        # them through the old nursery.)
        status_tasks = set(old._cancel_status.members())
        status_tasks.discard(old._parent_task)
        tasks = old._children
        old._children = set()
        for task in tasks:
            task._parent_nursery = new
            task._eventual_parent_nursery = None
            new._children.add(task)
        # Move the started task's cancel statuses under the new nursery's.
        # Detach them all first so no recalculation sees a half-moved tree.
        status_children = list(old._cancel_status._children)
        for status in status_children:
            status.parent = None
        for task in status_tasks:
            task._activate_cancel_status(None)
        for status in status_children:
            status.parent = new._cancel_status
        for task in status_tasks:
            task._activate_cancel_status(new._cancel_status)
        old._check_nursery_closed()


#: The public names of `Nursery`, which an unentered `NurseryManager`
#: explains rather than lacks (see `NurseryManager.__getattr__`).
_NURSERY_API = frozenset({"start_soon", "start", "cancel_scope", "child_tasks", "parent_task"})


class NurseryManager:
    """What `open_nursery` returns: use it with ``async with``."""

    __slots__ = ("_nursery", "_scope", "_strict_exception_groups")

    #: As passed to `open_nursery`; None: the run's setting.
    _strict_exception_groups: bool | None
    #: The nursery's cancel scope, and the nursery: set by ``__aenter__``
    #: (unset before, which `__getattr__` explains for the nursery's API).
    _scope: CancelScope
    _nursery: Nursery

    def __init__(self, strict_exception_groups: bool | None) -> None:
        self._strict_exception_groups = strict_exception_groups

    async def __aenter__(self) -> Nursery:
        strict = self._strict_exception_groups
        if strict is None:
            strict = GLOBAL_RUN_CONTEXT.runner.strict_exception_groups
        self._scope = CancelScope()
        self._scope.__enter__()
        self._nursery = Nursery(current_task(), self._scope, strict)
        return self._nursery

    async def __aexit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, GeneratorExit) and GLOBAL_RUN_CONTEXT.runner.closing_tasks:
            # The task's coroutine is being closed (the run was abandoned
            # after a crash): it cannot wait for anything any more. Any other
            # GeneratorExit (an async generator closed while suspended in
            # this block) waits for the children like every other error.
            return False
        try:
            nursery = self._nursery
        except AttributeError:
            raise RuntimeError(
                "this nursery's 'async with' block was exited without being entered: "
                "call __aexit__ only after __aenter__ (or use 'async with')"
            ) from None
        if not nursery._block_running:
            # (Its list of the parent's open nurseries was already popped:
            # a second exit would pop someone else's, or an empty list.)
            raise RuntimeError(
                f"{nursery!r} was exited twice: its 'async with' block has already "
                "been exited once (call __aexit__ once per __aenter__)"
            )
        new_exc = await nursery._exit_block(exc)
        # (Named for the line a traceback shows.)
        errors_from_nursery = self._scope._close(new_exc)
        if errors_from_nursery is None:
            return True
        # Raised keeping its own context, inline rather than through
        # `_raise_keeping_context`: see `CancelScope.__exit__` for why.
        saved_context = errors_from_nursery.__context__
        try:
            raise errors_from_nursery
        finally:
            value = sys.exc_info()[1]
            if value is not None:
                value.__context__ = saved_context
            del errors_from_nursery, value, new_exc

    # Hidden from type checkers, so that they flag a plain 'with'.
    if not TYPE_CHECKING:

        def __enter__(self) -> NoReturn:
            raise RuntimeError(
                "use 'async with open_nursery(...)', not 'with open_nursery(...)': "
                "a nursery's exit waits for its tasks"
            )

        def __exit__(self, *args: object) -> NoReturn:  # pragma: no cover
            raise AssertionError("unreachable: __enter__ always raises")

        def __getattr__(self, name: str) -> NoReturn:
            if name in _NURSERY_API:
                raise AttributeError(
                    f"'{type(self).__name__}' object has no attribute {name!r}: "
                    "open_nursery() returns a context manager, not a nursery. Write "
                    f"'async with open_nursery() as nursery:' and use nursery.{name}",
                    name=name,
                    obj=self,
                )
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute {name!r}", name=name, obj=self
            )


def open_nursery(strict_exception_groups: bool | None = None) -> NurseryManager:
    """Open a nursery, the scope within which tasks can be spawned.

    ``async with open_nursery() as nursery:`` returns a `Nursery`. The block
    does not exit until every task started in the nursery has finished. If
    the block or any child raises, the nursery's cancel scope is cancelled
    (so the other children stop at their next checkpoint) and, once all have
    finished, every error is raised together in an `ExceptionGroup`.

    Cancellation: entering is not a checkpoint. Exiting always waits for the
    children; if the surrounding scope is cancelled meanwhile, the children
    are cancelled too and the exit still waits for them to finish. When the
    block had nothing to wait for, exiting is a schedule point only.

    Args:
      strict_exception_groups: None (the default) takes the value given to
        `tether.run` (True unless changed). False is deprecated (it warns
        with `TetherDeprecationWarning`, as trio does): a single error is
        then raised bare instead of in a group.
    """
    if strict_exception_groups is not None and not strict_exception_groups:
        warn_loose("open_nursery(strict_exception_groups=False)")
    return NurseryManager(strict_exception_groups)


class Nursery:
    """A collection of running child tasks; see `open_nursery`.

    Attributes:
      cancel_scope: the `CancelScope` around the nursery's block and children;
        ``nursery.cancel_scope.cancel()`` cancels them all.
    """

    __slots__ = (
        "__weakref__",
        "_block_running",
        "_cancel_status",
        "_children",
        "_closed",
        "_parent_task",
        "_parent_waiting_for_children",
        "_pending_excs",
        "_pending_starts",
        "_strict_exception_groups",
        "cancel_scope",
    )

    #: The task that opened the nursery (it runs the block). Invariant: the
    #: nursery is in its ``_child_nurseries`` until the block's exit has
    #: waited for the children.
    _parent_task: Task

    #: Whether the errors are raised in a group even when there is one.
    _strict_exception_groups: bool

    # (Public, documented in the class docstring.) The nursery's scope,
    # entered by the parent task around the block and its children.
    cancel_scope: CancelScope

    #: The status of `cancel_scope`, under which every child starts. A child
    #: directly under it is not in its ``tasks``: the status finds it in
    #: `_children` (see `CancelStatus.members`).
    _cancel_status: CancelStatus

    #: The running children. Invariant: ``task in _children`` exactly when
    #: ``task._parent_nursery is self`` and the task has not exited.
    _children: set[Task]

    #: Errors from the children and the block, for the block's exit to
    #: raise; None once the block has exited (an error that comes later has
    #: nobody to reach: see `_child_failed`).
    _pending_excs: list[BaseException] | None

    #: The block's own code is still running (its exit has not started).
    _block_running: bool

    #: The parent task is blocked in the block's exit, waiting for the
    #: children: the last one to finish reschedules it.
    _parent_waiting_for_children: bool

    #: `start` calls in progress on this nursery: their tasks will move in,
    #: so the nursery must not close yet.
    _pending_starts: int

    #: No new task may start here. Invariant: set once nothing runs in the
    #: nursery (no block, no children, no pending start), or when its
    #: parent task exits without closing it (misnesting); never cleared.
    _closed: bool

    def __init__(
        self, parent_task: Task, cancel_scope: CancelScope, strict_exception_groups: bool
    ) -> None:
        self._parent_task = parent_task
        self._strict_exception_groups = strict_exception_groups
        if parent_task._child_nurseries:
            parent_task._child_nurseries.append(self)
        else:
            parent_task._child_nurseries = [self]
        status = cancel_scope._cancel_status
        assert status is not None
        self._cancel_status = status
        # The status finds the children under it through the nursery.
        status._nursery = self
        self.cancel_scope = cancel_scope
        self._children = set()
        self._pending_excs = []
        self._block_running = True
        self._parent_waiting_for_children = False
        self._pending_starts = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<tether.Nursery at {id(self):#x}, {len(self._children)} children>"

    @property
    def child_tasks(self) -> frozenset[Task]:
        """The tasks running in this nursery now (not those still waiting
        to call ``task_status.started()``)."""
        return frozenset(self._children)

    @property
    def parent_task(self) -> Task:
        """The task that opened this nursery."""
        return self._parent_task

    def _add_exc(self, exc: BaseException, reason: CancelReason | None) -> None:
        assert self._pending_excs is not None
        self._pending_excs.append(exc)
        self.cancel_scope._cancel(reason)

    def _child_finished(self, task: Task, result: TaskResult) -> None:
        """`task`, a child of this nursery, exited with `result` (called by
        the kernel's `Runner.task_exited`; the exception it raised, or its
        value in an `outcome.Value`): forget it, keep its error, and close
        the nursery if nothing runs in it any more."""
        children = self._children
        children.remove(task)
        if type(result) is not outcome.Value:
            self._child_failed(task, result)
        if not children:
            self._check_nursery_closed()

    def _child_failed(self, task: Task, error: BaseException) -> None:
        """A child task exited with `error`: keep it for the block's exit,
        and cancel the other children (unless that was done already)."""
        if self._pending_excs is None:
            # The block already exited while children still ran: only a
            # nursery abandoned by misnesting (see `_misnesting.py`) gets
            # here. Nobody is left to raise the error to. (The Cancelled of
            # the abandonment itself is expected.)
            if not isinstance(error, Cancelled):
                log_lost_error(task, error)
            return
        reason = None
        if not self.cancel_scope._cancel_called:
            reason = CancelReason(
                "nursery",
                source_task=repr(task),
                reason=f"child task raised exception {error!r}",
            )
        self._add_exc(error, reason)

    def _check_nursery_closed(self) -> None:
        if not (self._block_running or self._children or self._pending_starts):
            self._closed = True
            if self._parent_waiting_for_children:
                self._parent_waiting_for_children = False
                GLOBAL_RUN_CONTEXT.runner.reschedule(self._parent_task)

    async def _exit_block(self, block_error: BaseException | None) -> BaseException | None:
        """The parent task has left the nursery's block, with `block_error`
        (None if the block finished normally). Wait until nothing runs in
        the nursery, take it off the parent task's open nurseries, and
        return what the ``async with`` must raise: None, or every error
        collected, as a group (see `_collected_errors`)."""
        if block_error is not None:
            self._block_failed(block_error)
        self._block_running = False
        self._check_nursery_closed()
        if self._closed:
            # Nothing to wait for: the exit is a schedule point only.
            try:
                await cancel_shielded_checkpoint()
            except BaseException as exc:
                # (A KeyboardInterrupt. No children left to cancel: no
                # reason needed.)
                self._add_exc(exc, None)
        else:
            await self._wait_for_children()
        self._leave_parent_task()
        return self._collected_errors()

    def _block_failed(self, error: BaseException) -> None:
        """The block's own code raised `error`: keep it, and cancel the
        children (unless that was done already)."""
        reason = None
        if not self.cancel_scope._cancel_called:
            # (The reason's text is trio's, which code ported from trio may
            # match on.)
            reason = CancelReason(
                "nursery",
                source_task=repr(self._parent_task),
                reason=f"Code block inside nursery contextmanager raised exception {error!r}",
            )
        self._add_exc(error, reason)

    async def _wait_for_children(self) -> None:
        """Block the parent task until the last child has finished (that
        child's exit reschedules it, see `_check_nursery_closed`)."""

        def refuse_but_keep_interrupt(raise_cancel: Callable[[], Any]) -> Abort:
            # The wait cannot be given up: a cancellation reaches the children
            # through the nursery's scope, and the block exits once they have
            # unwound. A KeyboardInterrupt sent here is kept, though: it
            # cancels the children and is raised with the block's errors.
            delivered = outcome.capture(raise_cancel).error
            if not isinstance(delivered, Cancelled):
                self._add_exc(
                    delivered,
                    CancelReason("KeyboardInterrupt", source_task=repr(self._parent_task)),
                )
            del delivered
            return Abort.FAILED

        self._parent_waiting_for_children = True
        await wait_task_rescheduled(refuse_but_keep_interrupt)

    def _leave_parent_task(self) -> None:
        """Take this nursery off its parent task's list of open nurseries,
        which must end with it."""
        still_open = self._parent_task._child_nurseries
        if not still_open or still_open[-1] is not self:
            # A nursery the task opened inside this one is still open. Both
            # stay on the list: the task's exit reports the misnesting and
            # abandons them ("Nursery stack corrupted", see _misnesting.py).
            # (The message is trio's, which code ported from trio may match.)
            raise AssertionError("Nursery misnesting detected!")
        still_open.pop()

    def _collected_errors(self) -> BaseException | None:
        """What the block's exit raises: None if nothing failed, else the
        errors in one group (or, for a loose nursery, a single error bare).
        From now on `_pending_excs` is None: a later error is known to be
        late (see `_child_failed`), and no reference cycle runs through the
        errors' frames."""
        errors, self._pending_excs = self._pending_excs, None
        if not errors:
            return None
        try:
            if not self._strict_exception_groups and len(errors) == 1:
                return errors[0]
            group = BaseExceptionGroup("Exceptions from tether nursery", errors)
            if not self._strict_exception_groups:
                group.add_note(LOOSE_GROUP_NOTE)
            return group
        finally:
            del errors

    def start_soon(
        self,
        async_fn: Callable[..., Awaitable[Any]],
        *args: object,
        name: object = None,
    ) -> None:
        """Create a child task running ``await async_fn(*args)``.

        Returns at once; the new task runs at the next schedule point. Not a
        checkpoint. Raises `RuntimeError` if the nursery is closed (its
        block has exited and all its tasks finished) and `TypeError` if
        `async_fn` is not an async function (for example, a coroutine object:
        pass ``fn, arg`` rather than ``fn(arg)``).

        Args:
          name: the task's name, for debugging; by default, the function's
            qualified name.
        """
        GLOBAL_RUN_CONTEXT.runner.spawn_impl(async_fn, args, self, name)

    @overload
    async def start(self, async_fn: _Startable0[StatusT], /, *, name: object = None) -> StatusT: ...
    @overload
    async def start(
        self, async_fn: _Startable1[StatusT, _A1], a1: _A1, /, *, name: object = None
    ) -> StatusT: ...
    @overload
    async def start(
        self,
        async_fn: _Startable2[StatusT, _A1, _A2],
        a1: _A1,
        a2: _A2,
        /,
        *,
        name: object = None,
    ) -> StatusT: ...
    @overload
    async def start(
        self,
        async_fn: _Startable3[StatusT, _A1, _A2, _A3],
        a1: _A1,
        a2: _A2,
        a3: _A3,
        /,
        *,
        name: object = None,
    ) -> StatusT: ...
    @overload
    async def start(
        self, async_fn: Callable[..., Awaitable[object]], /, *args: object, name: object = None
    ) -> Any: ...

    async def start(
        self,
        async_fn: Callable[..., Awaitable[Any]],
        /,
        *args: object,
        name: object = None,
    ) -> Any:
        """Start a child task and wait until it reports that it is ready.

        ``async_fn`` is called with ``task_status=`` as an extra keyword
        argument and must call ``task_status.started(value)`` when it is
        initialized; ``start`` then returns that value, and the task moves
        into this nursery and runs on. Until then it runs "inside" the
        ``start`` call: an exception it raises before `started` propagates out
        of ``start`` (not through the nursery), and cancelling the caller of
        ``start`` cancels it. If it returns without calling `started`,
        ``start`` raises `RuntimeError`.

        This is a checkpoint: it always waits for the new task to start.
        """
        if self._closed:
            raise closed_nursery_error()
        try:
            self._pending_starts += 1
            try:
                # (Strict whatever the run says: its one error is unwrapped
                # below.)
                async with NurseryManager(True) as old_nursery:
                    task_status: _TaskStatus[Any] = _TaskStatus(old_nursery, self)

                    def thunk(*thunk_args: object) -> Awaitable[Any]:
                        return async_fn(*thunk_args, task_status=task_status)

                    task = GLOBAL_RUN_CONTEXT.runner.spawn_impl(
                        thunk, args, old_nursery, name if name is not None else async_fn
                    )
                    task._eventual_parent_nursery = self
            except BaseExceptionGroup as group:
                if len(group.exceptions) == 1:
                    # The one task's own error, unwrapped so that start()
                    # raises what the task raised.
                    _raise_keeping_context(group.exceptions[0])
                raise TetherInternalError(
                    "start()'s private nursery held more than one task"
                ) from group
            if task_status._value is _NO_STATUS:
                raise RuntimeError("child exited without calling task_status.started()")
            return task_status._value
        finally:
            self._pending_starts -= 1
            self._check_nursery_closed()

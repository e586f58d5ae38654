"""A snapshot of a run's task tree: `current_task_tree`.

The tree starts at the run's root task. Under each task are the nurseries it
has open, and under each nursery the tasks running in it. For each task the
snapshot records its state (running, runnable, blocked), the cancel scopes
it is inside, where it is suspended (its await frames) and, if it is
blocked, what it waits on (a `WaitInfo`, see _waits.py).

Everything is copied into frozen dataclasses when the snapshot is taken, so
it stays as it was while the run goes on. The objects it names (tasks,
scopes, nurseries, what a task waits on) are the live ones, for identity
and further inspection.

Taking a snapshot is not a checkpoint and changes nothing in the run: it
reads the kernel's fields (never a property that may act, such as
`CancelScope.cancel_called`, which cancels a scope whose deadline passed),
so it can be taken from a task, an instrument or a `run_sync_soon`
callback. Not from a signal handler: the handler may interrupt the kernel
half way through building a task, whose fields are then missing (that is
why `install_task_dump`'s handler only queues the dump for the run loop).
From another thread it is a best effort: the run keeps changing the tree
while it is read.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Literal

from ._cancel import CancelScope, CancelStatus
from ._cancel_reason import CancelReason
from ._run_context import GLOBAL_RUN_CONTEXT, current_runner
from ._task import Task
from ._waits import RunWaits, WaitInfo, describe_wait, safe_repr

if TYPE_CHECKING:
    from ._nursery import Nursery

#: What a task is doing when the snapshot is taken: being stepped now
#: (``"running"``), queued for a step (``"runnable"``), or waiting for
#: something (``"blocked"``).
TaskState = Literal["running", "runnable", "blocked"]


@dataclass(frozen=True)
class FrameInfo:
    """One frame of a task's await chain (or of its stack, for the task
    that is running)."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}"


@dataclass(frozen=True)
class CancelScopeInfo:
    """A cancel scope a task is inside, as it was at the snapshot.

    Attributes:
      scope: the live `CancelScope`.
      deadline: its absolute deadline on the run's clock (``inf``: none).
      shield: whether it keeps out the cancellation of outer scopes.
      cancel_called: `cancel()` was called on it, or its deadline was
        processed by the run loop.
      cancelled: the code inside is cancelled now (by this scope, or by an
        outer one that it does not shield from): it raises `Cancelled` at
        its next checkpoint.
      cancel_reason: why it is cancelled (kind, reason, and the task that
        cancelled it), or None.
      nursery: the `Nursery` this is the scope of, or None for a scope of
        the code's own.
    """

    scope: CancelScope
    deadline: float
    shield: bool
    cancel_called: bool
    cancelled: bool
    cancel_reason: str | None
    nursery: Nursery | None


@dataclass(frozen=True)
class TaskInfo:
    """One task, as it was at the snapshot.

    Attributes:
      task: the live `Task`.
      name: its name (an asyncio task's name for a `tether.aio` task).
      state: ``"running"``, ``"runnable"`` or ``"blocked"``.
      system: whether it is a system task (the root task, the kernel's and
        `spawn_system_task`'s tasks).
      frames: where it is: the frames of its await chain, outermost first
        (for the task that took the snapshot, its stack up to that call).
      cancel_scopes: the cancel scopes it is inside, innermost first, up to
        the nursery it runs in (whose scopes belong to the task that opened
        it); its own nurseries' scopes are among them.
      effective_deadline: when a deadline cancels it, counting every scope
        around it up to the nearest shield: ``inf`` for never, ``-inf`` if
        it is cancelled already.
      waiting_for: what it waits on if it is blocked, else None.
      nurseries: the nurseries it has open, outermost first.
    """

    task: Task
    name: str
    state: TaskState
    system: bool
    frames: tuple[FrameInfo, ...]
    cancel_scopes: tuple[CancelScopeInfo, ...]
    effective_deadline: float
    waiting_for: WaitInfo | None
    nurseries: tuple[NurseryInfo, ...]

    @property
    def location(self) -> FrameInfo | None:
        """The innermost frame: where the task is suspended (or running)."""
        return self.frames[-1] if self.frames else None

    def walk(self) -> Iterator[TaskInfo]:
        """This task, then every task under it, depth first, in the order
        they were started."""
        todo: list[TaskInfo] = [self]
        while todo:
            info = todo.pop()
            yield info
            for nursery in reversed(info.nurseries):
                todo.extend(reversed(nursery.children))


@dataclass(frozen=True)
class NurseryInfo:
    """An open nursery, as it was at the snapshot.

    Attributes:
      nursery: the live `Nursery`.
      cancel_scope: its cancel scope.
      children: the tasks running in it, in the order they were started
        (a task in `Nursery.start` that has not called
        ``task_status.started()`` yet is in the private nursery of the
        ``start`` call instead).
      block_exited: the block of the ``async with`` has ended: its task
        waits for the children.
    """

    nursery: Nursery
    cancel_scope: CancelScopeInfo
    children: tuple[TaskInfo, ...]
    block_exited: bool


@dataclass(frozen=True)
class TaskTree:
    """A snapshot of a run's tasks (see `current_task_tree`).

    Attributes:
      root: the task at the top (the run's root task, ``<init>``, unless the
        snapshot was taken from another task).
      now: the run's clock when the snapshot was taken (the deadlines are
        on the same clock).
    """

    root: TaskInfo
    now: float

    def tasks(self) -> Iterator[TaskInfo]:
        """Every task of the tree, depth first, in the order started."""
        return self.root.walk()

    def find(self, name: str) -> TaskInfo:
        """The first task (in `tasks` order) called `name`.

        Raises:
          LookupError: if no task has that name.
        """
        for info in self.tasks():
            if info.name == name:
                return info
        raise LookupError(f"no task named {name!r} in the tree")


def current_task_tree(root: Task | None = None) -> TaskTree:
    """A snapshot of the tasks of the current run: every task under `root`
    (default: the run's root task, so every task of the run), with its
    nurseries, cancel scopes, where it is suspended and what it waits on.
    See `TaskTree`.

    Not a checkpoint, and it changes nothing: it can be called from a task,
    an instrument or a `run_sync_soon` callback, but not from a signal
    handler (it may find a task half built; queue the work with
    `TetherToken.run_sync_soon` instead, as `install_task_dump` does).
    Given a `root`, it may also be called from another thread
    (a watchdog), as a best effort: the run goes on changing the tree while
    it is read.

    Raises:
      RuntimeError: outside a run (without `root`), or before the run's root
        task exists.
    """
    return take_task_tree(root, sys._getframe(1))


def take_task_tree(root: Task | None, caller: FrameType | None) -> TaskTree:
    """`current_task_tree`, for tools that wrap it: the running task's stack
    is shown down to `caller` (their own caller's frame)."""
    if root is None:
        runner = current_runner()
        if runner.init_task is None:
            raise RuntimeError("the run has not started its root task yet")
        root = runner.init_task
    runner = root._runner
    now = runner.clock.current_time()
    if getattr(GLOBAL_RUN_CONTEXT, "runner", None) is not runner:
        caller = None  # another thread: the running task's stack is not ours
    # (While a face runs code of no task in a step, the task being stepped
    # is still the one running.)
    running = runner.current_task or runner.no_task_stepping
    builder = _Builder(RunWaits(runner, now), running, caller)
    return TaskTree(root=builder.build(root), now=now)


class _Builder:
    """Builds the `TaskInfo` tree bottom up, without recursion (task trees
    can be deeper than Python's recursion limit)."""

    __slots__ = ("caller", "running", "waits")

    def __init__(self, waits: RunWaits, running: Task | None, caller: FrameType | None) -> None:
        self.waits = waits
        #: The task being stepped now, if any.
        self.running = running
        #: The frame that asked for the snapshot, in the run's thread (the
        #: running task's stack is read from it); None in another thread.
        self.caller = caller

    def build(self, root: Task) -> TaskInfo:
        done: dict[Task, TaskInfo] = {}
        # Each task's nurseries and their children, as read when it was
        # first reached: it is built from exactly these.
        layout: dict[Task, list[tuple[Nursery, list[Task]]]] = {}
        todo: list[Task] = [root]
        order: list[Task] = []
        while todo:
            task = todo.pop()
            order.append(task)
            opened = [
                (nursery, sorted(nursery._children, key=_spawn_index))
                for nursery in list(task._child_nurseries)
            ]
            layout[task] = opened
            for _, children in opened:
                todo.extend(children)
        for task in reversed(order):
            nurseries = tuple(
                NurseryInfo(
                    nursery=nursery,
                    cancel_scope=_scope_info(nursery.cancel_scope, nursery),
                    children=tuple(done.pop(child) for child in children if child in done),
                    block_exited=not nursery._block_running,
                )
                for nursery, children in layout[task]
            )
            done[task] = self._task_info(task, nurseries)
        return done[root]

    def _task_info(self, task: Task, nurseries: tuple[NurseryInfo, ...]) -> TaskInfo:
        if task is self.running:
            state: TaskState = "running"
        elif task._abort_func is not None:
            state = "blocked"
        else:
            state = "runnable"
        try:
            waiting_for = describe_wait(task, self.waits) if state == "blocked" else None
        except Exception as exc:
            # A snapshot is for debugging: say what went wrong, keep going.
            waiting_for = WaitInfo("unknown", f"(could not describe the wait: {exc!r})")
        status = task._cancel_status
        return TaskInfo(
            task=task,
            name=_task_name(task),
            state=state,
            system=bool(getattr(task, "_system", False)),
            frames=self._frames(task, state),
            cancel_scopes=_scopes_of(task),
            effective_deadline=math.inf if status is None else status.effective_deadline(),
            waiting_for=waiting_for,
            nurseries=nurseries,
        )

    def _frames(self, task: Task, state: TaskState) -> tuple[FrameInfo, ...]:
        frames: list[FrameType] | None = None
        if state == "running" and self.caller is not None:
            frames = _stack_of_running_task(task, self.caller)
        if frames is None:
            frames = [frame for frame, _ in task.iter_await_frames()]
        return tuple(
            FrameInfo(frame.f_code.co_filename, frame.f_lineno or 0, frame.f_code.co_name)
            for frame in frames
        )


def _spawn_index(task: Task) -> int:
    return getattr(task, "_spawn_index", 0)


def _task_name(task: Task) -> str:
    try:
        return str(task.name)
    except Exception:
        return safe_repr(task)


def _stack_of_running_task(task: Task, caller: FrameType) -> list[FrameType] | None:
    """The frames from the task's own first frame down to `caller`, if the
    task is on this thread's stack (it took the snapshot itself); else
    None."""
    root = task._root_frame()
    if root is None:
        return None
    frames = []
    frame: FrameType | None = caller
    while frame is not None:
        frames.append(frame)
        if frame is root:
            frames.reverse()
            return frames
        frame = frame.f_back
    return None


def _scopes_of(task: Task) -> tuple[CancelScopeInfo, ...]:
    """The scopes `task` is inside, innermost first, up to its nursery's."""
    parent = task._parent_nursery
    stop: CancelStatus | None = parent._cancel_status if parent is not None else None
    nursery_of = {nursery.cancel_scope: nursery for nursery in list(task._child_nurseries)}
    scopes = []
    status = task._cancel_status
    while status is not None and status is not stop:
        scopes.append(_scope_info(status._scope, nursery_of.get(status._scope), status))
        status = status._parent
    return tuple(scopes)


def _scope_info(
    scope: CancelScope, nursery: Nursery | None, status: CancelStatus | None = None
) -> CancelScopeInfo:
    if status is None:
        status = scope._cancel_status
    return CancelScopeInfo(
        scope=scope,
        deadline=scope._deadline,
        shield=scope._shield,
        cancel_called=scope._cancel_called,
        cancelled=status is not None and status.effectively_cancelled,
        cancel_reason=(
            format_cancel_reason(scope._cancel_reason)
            if status is not None and status.effectively_cancelled
            else None
        ),
        nursery=nursery,
    )


def format_cancel_reason(reason: CancelReason | None) -> str:
    """One line saying why a scope was cancelled."""
    if reason is None:
        return "unknown (scopes exited out of order)"
    text: str = reason.source
    if reason.reason:
        text += f": {reason.reason}"
    if reason.source_task:
        text += f" (by {reason.source_task})"
    return text

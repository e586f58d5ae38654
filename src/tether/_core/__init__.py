"""tether's kernel. Other layers import from here, never from its modules."""

from ._cancel import CancelScope
from ._clock import Clock, SystemClock
from ._detach import (
    permanently_detach_coroutine_object,
    reattach_detached_coroutine_object,
    temporarily_detach_coroutine_object,
)
from ._entry_queue import TetherToken
from ._exceptions import (
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    ClosedResourceError,
    EndOfChannel,
    RunFinishedError,
    TetherDeprecationWarning,
    TetherInternalError,
    WouldBlock,
)
from ._instrumentation import Instrument
from ._io import IOStatistics, fd_of
from ._ki import currently_ki_protected, disable_ki_protection, enable_ki_protection
from ._local import RunVar, RunVarToken
from ._nursery import TASK_STATUS_IGNORED, Nursery, NurseryManager, TaskStatus, open_nursery
from ._parking_lot import (
    ParkingLot,
    ParkingLotStatistics,
    add_parking_lot_breaker,
    remove_parking_lot_breaker,
)
from ._run import (
    RunStatistics,
    SteppingState,
    abort_wait,
    add_instrument,
    checkpoint_if_cancelled,
    current_clock,
    current_effective_deadline,
    current_root_task,
    current_statistics,
    current_stepping_state,
    current_tether_token,
    current_time,
    in_tether_run,
    in_tether_task,
    remove_instrument,
    reschedule,
    run,
    spawn_coroutine,
    spawn_system_task,
    spawn_task,
    wait_all_tasks_blocked,
)
from ._run_context import GLOBAL_RUN_CONTEXT, current_task
from ._scheduler import Scheduler, SeededScheduler, enclosing_deadline_scope
from ._sniffio import forget_async_library, mark_tether_context
from ._task import TASK_SLOTS, Task
from ._thread_cache import start_thread_soon
from ._traps import (
    CHECKPOINT,
    TASK_EXIT,
    Abort,
    RaiseCancelT,
    cancel_shielded_checkpoint,
    checkpoint,
    park_unless_set,
    wait_task_rescheduled,
)
from ._unbounded_queue import UnboundedQueue, UnboundedQueueStatistics


async def wait_readable(fd: object) -> None:
    """Block until `fd` (an int or an object with ``fileno()``) is readable.

    Cancellable. Raises `BusyResourceError` if another task already waits to
    read it, `ClosedResourceError` if `notify_closing` is called for it while
    waiting, and the OS's `OSError` (EBADF) if it is not open: closed before
    the wait, or closed without `notify_closing` while a task waited on it
    in the other direction. `ValueError` for a negative fd (a closed socket
    object's)."""
    try:
        runner = GLOBAL_RUN_CONTEXT.runner
    except AttributeError:
        raise RuntimeError("must be called from inside tether.run()") from None
    await runner.io_manager.wait_readable(fd)  # type: ignore[arg-type]


async def wait_writable(fd: object) -> None:
    """Block until `fd` is writable; otherwise like `wait_readable`."""
    try:
        runner = GLOBAL_RUN_CONTEXT.runner
    except AttributeError:
        raise RuntimeError("must be called from inside tether.run()") from None
    await runner.io_manager.wait_writable(fd)  # type: ignore[arg-type]


def notify_closing(fd: object) -> None:
    """Call before closing `fd`: every task waiting on it wakes with
    `ClosedResourceError`. Not a checkpoint. A negative fd (a socket object
    that is already closed) is ignored: nothing can be waiting on it."""
    try:
        runner = GLOBAL_RUN_CONTEXT.runner
    except AttributeError:
        raise RuntimeError("must be called from inside tether.run()") from None
    runner.io_manager.notify_closing(fd)  # type: ignore[arg-type]


__all__ = [
    "CHECKPOINT",
    "TASK_EXIT",
    "GLOBAL_RUN_CONTEXT",
    "TASK_STATUS_IGNORED",
    "Abort",
    "BrokenResourceError",
    "BusyResourceError",
    "CancelScope",
    "Cancelled",
    "Clock",
    "ClosedResourceError",
    "EndOfChannel",
    "IOStatistics",
    "Instrument",
    "Nursery",
    "NurseryManager",
    "ParkingLot",
    "ParkingLotStatistics",
    "RaiseCancelT",
    "RunFinishedError",
    "RunStatistics",
    "RunVar",
    "RunVarToken",
    "Scheduler",
    "SeededScheduler",
    "SteppingState",
    "SystemClock",
    "TASK_SLOTS",
    "Task",
    "TaskStatus",
    "TetherDeprecationWarning",
    "TetherInternalError",
    "TetherToken",
    "UnboundedQueue",
    "UnboundedQueueStatistics",
    "WouldBlock",
    "abort_wait",
    "add_instrument",
    "add_parking_lot_breaker",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "current_clock",
    "current_effective_deadline",
    "current_root_task",
    "current_statistics",
    "current_stepping_state",
    "current_task",
    "current_tether_token",
    "current_time",
    "currently_ki_protected",
    "disable_ki_protection",
    "enable_ki_protection",
    "enclosing_deadline_scope",
    "fd_of",
    "forget_async_library",
    "in_tether_run",
    "in_tether_task",
    "mark_tether_context",
    "notify_closing",
    "open_nursery",
    "park_unless_set",
    "permanently_detach_coroutine_object",
    "reattach_detached_coroutine_object",
    "remove_instrument",
    "remove_parking_lot_breaker",
    "reschedule",
    "run",
    "spawn_coroutine",
    "spawn_task",
    "spawn_system_task",
    "start_thread_soon",
    "temporarily_detach_coroutine_object",
    "wait_all_tasks_blocked",
    "wait_readable",
    "wait_task_rescheduled",
    "wait_writable",
]

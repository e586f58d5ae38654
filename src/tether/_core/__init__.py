"""tether's kernel: tasks, traps, cancel scopes, nurseries, deadlines, I/O
waits and wakeups (docs/design.md has the map of its modules).

This module only re-exports. Its names are the kernel's interface for the
layers built right on it: the primitives (`tether._sync`, `tether._channel`,
`tether._timeouts`), the I/O and thread layers, and the two public
namespaces, `tether` and `tether.lowlevel`. They import from here, never
from the kernel's own modules. Code further out (the faces such as
`tether.aio`, the testing tools, users) is meant to come in through
`tether.lowlevel` and the public API instead: the one door into the kernel.
"""

from ._cancel import CancelScope
from ._clock import Clock, SystemClock
from ._current_run import (
    IOStatistics,
    RunStatistics,
    add_instrument,
    current_clock,
    current_effective_deadline,
    current_root_task,
    current_statistics,
    current_tether_token,
    current_time,
    expect_thread_report,
    in_tether_run,
    in_tether_task,
    remove_instrument,
    reschedule,
    spawn_system_task,
    thread_report_received,
    thread_reports_due,
    wait_all_tasks_blocked,
)
from ._deadlines import sleep_until
from ._detach import (
    permanently_detach_coroutine_object,
    reattach_detached_coroutine_object,
    temporarily_detach_coroutine_object,
)
from ._entry_point import forget_run_after_fork, run
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
from ._faces import (
    SteppingState,
    abort_wait,
    cancelled_by_own_scope,
    current_stepping_state,
    has_open_nurseries,
    init_unstarted_task,
    make_cancelled,
    set_signal_listener,
    spawn_coroutine,
    spawn_order,
    spawn_task,
)
from ._fd_watch import FdWatchSet
from ._guest import start_guest_run
from ._instrumentation import Instrument
from ._io import fd_of, notify_closing, wait_readable, wait_writable
from ._ki import currently_ki_protected, disable_ki_protection, enable_ki_protection
from ._local import RunVar, RunVarToken
from ._nursery import TASK_STATUS_IGNORED, Nursery, NurseryManager, TaskStatus, open_nursery
from ._parking_lot import (
    ParkingLot,
    ParkingLotStatistics,
    add_parking_lot_breaker,
    remove_parking_lot_breaker,
)
from ._run_context import GLOBAL_RUN_CONTEXT, current_task
from ._scheduler import Scheduler, SeededScheduler, enclosing_deadline_scope
from ._sniffio import forget_async_library, mark_tether_context
from ._task import TASK_SLOTS, Task
from ._task_tree import (
    CancelScopeInfo,
    FrameInfo,
    NurseryInfo,
    TaskInfo,
    TaskTree,
    current_task_tree,
    format_cancel_reason,
    take_task_tree,
)
from ._thread_cache import check_thread_name, start_thread_soon
from ._traps import (
    CANCEL_SHIELDED_CHECKPOINT,
    CHECKPOINT,
    TASK_EXIT,
    Abort,
    ForeignWaitAbort,
    RaiseCancelT,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    park_unless_set,
    wait_task_rescheduled,
)
from ._unbounded_queue import UnboundedQueue, UnboundedQueueStatistics
from ._waits import (
    WaitInfo,
    effective_deadline_of,
    format_time,
    register_wait_describer,
    safe_repr,
)

__all__ = [
    "CANCEL_SHIELDED_CHECKPOINT",
    "take_task_tree",
    "safe_repr",
    "register_wait_describer",
    "format_time",
    "format_cancel_reason",
    "effective_deadline_of",
    "current_task_tree",
    "WaitInfo",
    "TaskTree",
    "TaskInfo",
    "NurseryInfo",
    "FrameInfo",
    "CancelScopeInfo",
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
    "FdWatchSet",
    "ForeignWaitAbort",
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
    "cancelled_by_own_scope",
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
    "expect_thread_report",
    "currently_ki_protected",
    "disable_ki_protection",
    "enable_ki_protection",
    "enclosing_deadline_scope",
    "forget_run_after_fork",
    "fd_of",
    "forget_async_library",
    "in_tether_run",
    "has_open_nurseries",
    "in_tether_task",
    "init_unstarted_task",
    "make_cancelled",
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
    "set_signal_listener",
    "sleep_until",
    "spawn_coroutine",
    "spawn_order",
    "spawn_task",
    "spawn_system_task",
    "thread_report_received",
    "thread_reports_due",
    "start_guest_run",
    "check_thread_name",
    "start_thread_soon",
    "temporarily_detach_coroutine_object",
    "wait_all_tasks_blocked",
    "wait_readable",
    "wait_task_rescheduled",
    "wait_writable",
]

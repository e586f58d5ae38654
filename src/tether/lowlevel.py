"""Low-level tools for building primitives on tether's kernel.

This is the only door into the kernel for the rest of tether, and the place
for users who write their own synchronization primitives or integrate other
event sources. Most programs never need it.
"""

import signal

from ._core import (
    CHECKPOINT,
    GLOBAL_RUN_CONTEXT,
    TASK_EXIT,
    TASK_SLOTS,
    Abort,
    IOStatistics,
    ParkingLot,
    ParkingLotStatistics,
    RunStatistics,
    RunVar,
    RunVarToken,
    SteppingState,
    Task,
    TetherToken,
    abort_wait,
    add_instrument,
    add_parking_lot_breaker,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_clock,
    current_root_task,
    current_statistics,
    current_stepping_state,
    current_task,
    current_tether_token,
    currently_ki_protected,
    disable_ki_protection,
    enable_ki_protection,
    in_tether_run,
    in_tether_task,
    notify_closing,
    remove_instrument,
    remove_parking_lot_breaker,
    reschedule,
    spawn_coroutine,
    spawn_system_task,
    spawn_task,
    wait_readable,
    wait_task_rescheduled,
    wait_writable,
)
from ._core import Instrument as Instrument


def forget_run_after_fork() -> None:
    """In a child process that `os.fork` made while a tether run was running
    in the forking thread, forget that run: it belongs to the parent, and
    the child can start runs of its own (``tether.run`` would otherwise say
    it is called inside a running one). Also stops signals in the child
    from being written to the parent's wakeup socket. Call it only in a
    forked child (``os.register_at_fork(after_in_child=...)``), never in a
    process whose run is live. Not a checkpoint."""
    if getattr(GLOBAL_RUN_CONTEXT, "runner", None) is None:
        return
    del GLOBAL_RUN_CONTEXT.runner
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # pragma: no cover - forked from a non-main thread
        pass


__all__ = [
    "CHECKPOINT",
    "TASK_EXIT",
    "Abort",
    "IOStatistics",
    "Instrument",
    "ParkingLot",
    "ParkingLotStatistics",
    "RunStatistics",
    "RunVar",
    "RunVarToken",
    "SteppingState",
    "TASK_SLOTS",
    "Task",
    "TetherToken",
    "abort_wait",
    "add_instrument",
    "add_parking_lot_breaker",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "current_clock",
    "current_root_task",
    "current_statistics",
    "current_stepping_state",
    "current_task",
    "current_tether_token",
    "currently_ki_protected",
    "disable_ki_protection",
    "enable_ki_protection",
    "forget_run_after_fork",
    "in_tether_run",
    "in_tether_task",
    "notify_closing",
    "remove_instrument",
    "remove_parking_lot_breaker",
    "reschedule",
    "spawn_coroutine",
    "spawn_task",
    "spawn_system_task",
    "wait_readable",
    "wait_task_rescheduled",
    "wait_writable",
]

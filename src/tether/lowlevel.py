"""Low-level tools for building primitives on tether's kernel.

This is the only door into the kernel for the rest of tether, and the place
for users who write their own synchronization primitives or integrate other
event sources. Most programs never need it.
"""

from ._core import (
    Abort,
    IOStatistics,
    ParkingLot,
    ParkingLotStatistics,
    RunStatistics,
    RunVar,
    RunVarToken,
    Task,
    TetherToken,
    add_instrument,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_clock,
    current_root_task,
    current_statistics,
    current_task,
    current_tether_token,
    in_tether_run,
    in_tether_task,
    notify_closing,
    remove_instrument,
    reschedule,
    spawn_system_task,
    wait_readable,
    wait_task_rescheduled,
    wait_writable,
)
from ._core import Instrument as Instrument

__all__ = [
    "Abort",
    "IOStatistics",
    "Instrument",
    "ParkingLot",
    "ParkingLotStatistics",
    "RunStatistics",
    "RunVar",
    "RunVarToken",
    "Task",
    "TetherToken",
    "add_instrument",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "current_clock",
    "current_root_task",
    "current_statistics",
    "current_task",
    "current_tether_token",
    "in_tether_run",
    "in_tether_task",
    "notify_closing",
    "remove_instrument",
    "reschedule",
    "spawn_system_task",
    "wait_readable",
    "wait_task_rescheduled",
    "wait_writable",
]

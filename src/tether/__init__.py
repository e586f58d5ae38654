"""tether: structured concurrency for Python.

The trio-style face: nurseries, cancel scopes, timeouts and primitives. See
`tether.lowlevel` for kernel-level tools, `tether.testing` for test helpers,
and `tether.aio` for running asyncio-style code.
"""

from . import abc, from_thread, lowlevel, to_thread
from ._channel import (
    MemoryChannelStatistics,
    MemoryReceiveChannel,
    MemorySendChannel,
    open_memory_channel,
)
from ._core import (
    TASK_STATUS_IGNORED,
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    CancelScope,
    ClosedResourceError,
    EndOfChannel,
    Nursery,
    RunFinishedError,
    TaskStatus,
    TetherDeprecationWarning,
    TetherInternalError,
    WouldBlock,
    current_effective_deadline,
    current_time,
    open_nursery,
    run,
)
from ._signals import open_signal_receiver
from ._sync import (
    CapacityLimiter,
    CapacityLimiterStatistics,
    Condition,
    ConditionStatistics,
    Event,
    EventStatistics,
    Lock,
    LockStatistics,
    Semaphore,
    StrictFIFOLock,
)
from ._timeouts import (
    TooSlowError,
    fail_after,
    fail_at,
    move_on_after,
    move_on_at,
    sleep,
    sleep_forever,
    sleep_until,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "TASK_STATUS_IGNORED",
    "BrokenResourceError",
    "BusyResourceError",
    "CancelScope",
    "Cancelled",
    "CapacityLimiter",
    "CapacityLimiterStatistics",
    "ClosedResourceError",
    "Condition",
    "ConditionStatistics",
    "EndOfChannel",
    "Event",
    "EventStatistics",
    "Lock",
    "LockStatistics",
    "MemoryChannelStatistics",
    "MemoryReceiveChannel",
    "MemorySendChannel",
    "Nursery",
    "RunFinishedError",
    "Semaphore",
    "StrictFIFOLock",
    "TaskStatus",
    "TetherDeprecationWarning",
    "TetherInternalError",
    "TooSlowError",
    "WouldBlock",
    "abc",
    "current_effective_deadline",
    "current_time",
    "fail_after",
    "fail_at",
    "from_thread",
    "lowlevel",
    "move_on_after",
    "move_on_at",
    "open_memory_channel",
    "open_nursery",
    "open_signal_receiver",
    "run",
    "sleep",
    "sleep_forever",
    "sleep_until",
    "to_thread",
]

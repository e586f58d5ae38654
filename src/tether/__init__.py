"""tether: structured concurrency for Python.

The trio-style face: nurseries, cancel scopes, timeouts and primitives. See
`tether.lowlevel` for kernel-level tools, `tether.testing` for test helpers,
and `tether.aio` for running asyncio-style code.
"""

from . import abc, lowlevel
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
    TetherInternalError,
    WouldBlock,
    current_effective_deadline,
    current_time,
    open_nursery,
    run,
)
from ._sync import Event, EventStatistics
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
    "ClosedResourceError",
    "EndOfChannel",
    "Event",
    "EventStatistics",
    "Nursery",
    "RunFinishedError",
    "TaskStatus",
    "TetherInternalError",
    "TooSlowError",
    "WouldBlock",
    "abc",
    "current_effective_deadline",
    "current_time",
    "fail_after",
    "fail_at",
    "lowlevel",
    "move_on_after",
    "move_on_at",
    "open_nursery",
    "run",
    "sleep",
    "sleep_forever",
    "sleep_until",
]

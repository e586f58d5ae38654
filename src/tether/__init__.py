"""tether: structured concurrency for Python.

The trio-style face: nurseries, cancel scopes, timeouts, primitives, and
networking (`tether.socket`, `SocketStream`, `open_tcp_stream`,
`serve_tcp`). See `tether.lowlevel` for kernel-level tools,
`tether.testing` for test helpers, and `tether.aio` for running
asyncio-style code.
"""

from . import _ipython, abc, from_thread, lowlevel, socket, to_thread
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
from ._file_io import open_file, wrap_file
from ._highlevel_generic import StapledStream, aclose_forcefully
from ._highlevel_open_tcp_listeners import open_tcp_listeners, serve_tcp
from ._highlevel_open_tcp_stream import open_tcp_stream
from ._highlevel_open_unix_stream import open_unix_socket
from ._highlevel_serve_listeners import serve_listeners
from ._highlevel_socket import SocketListener, SocketStream
from ._path import Path, PosixPath, WindowsPath
from ._safe_channel import as_safe_channel
from ._signals import open_signal_receiver
from ._ssl import NeedHandshakeError, SSLListener, SSLStream
from ._ssl_helpers import (
    open_ssl_over_tcp_listeners,
    open_ssl_over_tcp_stream,
    serve_ssl_over_tcp,
)
from ._subprocess import Process
from ._subprocess_run import run_process
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

# ``%autoawait tether`` in IPython and Jupyter (see _ipython.py); a no-op
# outside IPython.
_ipython.register_if_running()
load_ipython_extension = _ipython.load_ipython_extension

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
    "NeedHandshakeError",
    "Nursery",
    "Path",
    "PosixPath",
    "Process",
    "RunFinishedError",
    "SSLListener",
    "SSLStream",
    "Semaphore",
    "SocketListener",
    "SocketStream",
    "StapledStream",
    "StrictFIFOLock",
    "TaskStatus",
    "TetherDeprecationWarning",
    "TetherInternalError",
    "TooSlowError",
    "WindowsPath",
    "WouldBlock",
    "abc",
    "as_safe_channel",
    "aclose_forcefully",
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
    "open_file",
    "open_signal_receiver",
    "open_ssl_over_tcp_listeners",
    "open_ssl_over_tcp_stream",
    "open_tcp_listeners",
    "open_tcp_stream",
    "open_unix_socket",
    "run",
    "run_process",
    "serve_listeners",
    "serve_ssl_over_tcp",
    "serve_tcp",
    "sleep",
    "sleep_forever",
    "sleep_until",
    "socket",
    "to_thread",
    "wrap_file",
]

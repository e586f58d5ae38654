"""tether.aio: asyncio's API, running on tether's kernel.

A program written for asyncio runs on tether by changing ``import asyncio``
to ``from tether import aio as asyncio``. Tasks are kernel tasks owned by the
loop's root nursery; the event loop is an `asyncio.AbstractEventLoop` that
the standard library recognises as the running loop, so stdlib and
third-party asyncio code (``asyncio.timeout``, ``asyncio.Queue``,
``asyncio.current_task()``, sniffio) works inside `tether.aio.run` too. The
exception classes are the standard library's own.

Tether extensions: ``clock=`` on `run`, `Runner` and `new_event_loop`
(virtual time with ``tether.testing.MockClock``). See docs/aio.md for what
differs from asyncio and why.
"""

from asyncio import (
    AbstractEventLoop,
    AbstractEventLoopPolicy,
    AbstractServer,
    BaseProtocol,
    BaseTransport,
    BufferedProtocol,
    CancelledError,
    DatagramProtocol,
    DatagramTransport,
    Handle,
    IncompleteReadError,
    InvalidStateError,
    LimitOverrunError,
    Protocol,
    ReadTransport,
    SendfileNotAvailableError,
    Server,
    SubprocessProtocol,
    SubprocessTransport,
    TimerHandle,
    Transport,
    WriteTransport,
    get_event_loop_policy,
    iscoroutine,
    iscoroutinefunction,
    set_event_loop_policy,
)
from typing import Any

from . import _asyncio_names, subprocess
from . import _fork as _fork  # registers the forked-child reset (see _fork.py)
from ._events import (
    EventLoopPolicy,
    get_event_loop,
    get_running_loop,
    new_event_loop,
    set_event_loop,
)
from ._futures import Future, isfuture, wrap_future
from ._gather import gather, shield
from ._locks import (
    Barrier,
    BoundedSemaphore,
    BrokenBarrierError,
    Condition,
    Event,
    LifoQueue,
    Lock,
    PriorityQueue,
    Queue,
    QueueEmpty,
    QueueFull,
    Semaphore,
)
from ._loop import TetherEventLoop
from ._runners import Runner, run, run_hosted
from ._streams import (
    StreamReader,
    StreamReaderProtocol,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)
from ._task import Task
from ._task_functions import all_tasks, create_task, current_task, ensure_future
from ._taskgroup import TaskGroup
from ._threads import run_coroutine_threadsafe, to_thread
from ._timeouts import Timeout, sleep, timeout, timeout_at, wait_for
from ._wait import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, as_completed, wait
from .subprocess import create_subprocess_exec, create_subprocess_shell

TimeoutError = TimeoutError

# asyncio's names for the policy and loop classes: tether's own.
DefaultEventLoopPolicy = EventLoopPolicy
SelectorEventLoop = TetherEventLoop
EventLoop = TetherEventLoop


def __getattr__(name: str) -> Any:
    # asyncio's other names (the child watchers, BaseEventLoop, the hooks
    # for event loops such as _get_running_loop): the standard library's
    # own objects; see _asyncio_names.py.
    return _asyncio_names.lookup(name)


__all__ = [
    "set_event_loop_policy",
    "get_event_loop_policy",
    "EventLoopPolicy",
    "DefaultEventLoopPolicy",
    "SelectorEventLoop",
    "EventLoop",
    "run_hosted",
    "Server",
    "subprocess",
    "create_subprocess_shell",
    "create_subprocess_exec",
    "start_unix_server",
    "start_server",
    "open_unix_connection",
    "open_connection",
    "StreamWriter",
    "StreamReaderProtocol",
    "StreamReader",
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "AbstractEventLoop",
    "AbstractEventLoopPolicy",
    "AbstractServer",
    "Barrier",
    "BaseProtocol",
    "BaseTransport",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "BufferedProtocol",
    "CancelledError",
    "Condition",
    "DatagramProtocol",
    "DatagramTransport",
    "Event",
    "Future",
    "Handle",
    "IncompleteReadError",
    "InvalidStateError",
    "LifoQueue",
    "LimitOverrunError",
    "Lock",
    "PriorityQueue",
    "Protocol",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "ReadTransport",
    "Runner",
    "Semaphore",
    "SendfileNotAvailableError",
    "SubprocessProtocol",
    "SubprocessTransport",
    "Task",
    "TaskGroup",
    "TetherEventLoop",
    "TimeoutError",
    "Timeout",
    "TimerHandle",
    "Transport",
    "WriteTransport",
    "all_tasks",
    "as_completed",
    "create_task",
    "current_task",
    "ensure_future",
    "gather",
    "get_event_loop",
    "get_running_loop",
    "iscoroutine",
    "iscoroutinefunction",
    "isfuture",
    "new_event_loop",
    "run",
    "run_coroutine_threadsafe",
    "set_event_loop",
    "shield",
    "sleep",
    "timeout",
    "timeout_at",
    "to_thread",
    "wait",
    "wait_for",
    "wrap_future",
]

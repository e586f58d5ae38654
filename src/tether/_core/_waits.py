"""What a blocked task waits on, described for people: `WaitInfo`.

Recording a wait must cost the primitive that blocks nothing, so a
description is *derived*, only when someone takes a snapshot of the task
tree, from what the kernel already holds for every blocked task:

* a task parked in a `ParkingLot` has the lot as its ``custom_sleep_data``;
  the primitive that owns the lot (an `Event`, a `Lock`, ...) is found among
  the locals of the task's await chain, where the code that parked keeps it
  (``self`` of `Lock.acquire`, the event that `park_unless_set` checks);
* a task waiting for a file descriptor is in the I/O manager's table;
* a task in `wait_all_tasks_blocked` is among the run's idle waiters;
* a task in its nursery's exit is that nursery's waiting parent;
* a face's task blocked at a foreign yield (an asyncio future) has that
  object at the bottom of its await chain;
* any other `wait_task_rescheduled` has its abort function, and whatever
  its primitive stored in ``custom_sleep_data``.

The layers above the kernel register a *describer* for their own types (the
owner of a lot, or what they store in ``custom_sleep_data``) and for their
abort functions with `register_wait_describer`. Code outside tether can
store a `WaitInfo` (or a string) in ``custom_sleep_data`` before it waits. A
wait that nobody describes is "unknown (custom wait)".

Invariant: describing only reads. It never writes to a task, a primitive or
the run, and calls no property with side effects, so a snapshot can be taken
from a task, an instrument, or a signal handler in the run's thread. (It
does call ``repr`` on the objects waited on.)
"""

from __future__ import annotations

import gc
import math
import os
import socket
import stat
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._parking_lot import ParkingLot
from ._task import Task
from ._traps import ABORT_BY_LEAVING_LOT

if TYPE_CHECKING:
    from ._nursery import Nursery
    from ._run import Runner


@dataclass(frozen=True)
class WaitInfo:
    """What a blocked task waits on (part of `TaskInfo`, see
    `current_task_tree`).

    Attributes:
      kind: a short, stable name for the kind of wait: ``"sleep"``,
        ``"event"``, ``"lock"``, ``"semaphore"``, ``"condition"``,
        ``"capacity_limiter"``, ``"channel_send"``, ``"channel_receive"``,
        ``"parking_lot"``, ``"wait_readable"``, ``"wait_writable"``,
        ``"thread"``, ``"from_thread"``, ``"subprocess"``,
        ``"all_tasks_blocked"``, ``"nursery"`` (a nursery's exit waiting for
        its tasks), ``"start"`` (`Nursery.start` waiting for
        ``task_status.started()``), ``"asyncio_future"`` (an aio task's
        asyncio-level wait: for a future, or parked on a tether.aio
        `Event` or `StreamReader`), ``"custom"`` (a description the
        waiting code gave) or ``"unknown"``.
      description: one line for people, such as ``"sleeping until 12.50
        (in 2.50 s)"`` or ``"acquiring Lock at 0x7f..., held by task
        'writer'"``.
      target: the object waited on (the `Event`, the channel, the file
        descriptor, the future), or None. The live object: its state may
        have changed since the snapshot.
      details: more facts, by name, that depend on the kind (``"until"``
        for a sleep, ``"owner"`` for a lock, ``"fd"`` and ``"peer"`` for a
        socket, ``"thread"`` for a worker thread, ``"pid"`` for a
        process, ...). Read-only.
    """

    kind: str
    description: str
    target: object = None
    details: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.details, types.MappingProxyType):
            # (Frozen: the one way to store a read-only copy.)
            object.__setattr__(self, "details", types.MappingProxyType(dict(self.details)))


#: A describer (see `register_wait_describer`): called with the blocked
#: task, the object or abort function it was registered for, and the run's
#: current time; returns the description, or None to leave the wait to the
#: generic description.
WaitDescriber = Callable[[Task, Any, float], "WaitInfo | None"]

# Keys: types (matched along the MRO of the object waited on), functions and
# code objects (matched against a wait's abort function).
_describers: dict[object, WaitDescriber] = {}


def register_wait_describer(key: object, describer: WaitDescriber) -> None:
    """Have `describer` say what a task waits on. `key` is a class (for an
    object of that class, or a subclass, that owns the `ParkingLot` the task
    is parked in, or that the waiting code stored in ``custom_sleep_data``),
    or an abort function passed to `wait_task_rescheduled` (a plain function,
    or the code object of a closure or method: every closure made from that
    code matches). Registering a key again replaces its describer. Not a
    checkpoint; called when a module is imported."""
    _describers[key] = describer


def format_time(when: float, now: float) -> str:
    """`when` on the run's clock, with how far it is from `now`."""
    if when == math.inf:
        return "never"
    left = when - now
    if left >= 0:
        return f"{when:.2f} (in {left:.2f} s)"
    return f"{when:.2f} ({-left:.2f} s ago)"


def effective_deadline_of(task: Task) -> float:
    """When cancellation reaches `task` by a deadline: the earliest deadline
    of the scopes around it, up to the nearest shield (``-inf`` if it is
    cancelled already, ``inf`` if none): `current_effective_deadline` for
    any task. Not a checkpoint; needs no run; only reads.

    For a face that must know whether a task's wait can still end by a
    cancellation or a deadline (`tether.aio`, after its loop stopped), and
    for the task tree.

    Raises:
      TypeError: if `task` is not a `Task`."""
    try:
        status = task._cancel_status
    except AttributeError:
        raise TypeError(
            f"effective_deadline_of() expected a tether.lowlevel.Task, got {task!r}"
        ) from None
    return math.inf if status is None else status.effective_deadline()


def safe_repr(obj: object) -> str:
    """``repr(obj)``, or a plain description if that raises: describing a
    wait must not fail because of someone's ``__repr__``."""
    try:
        return repr(obj)
    except Exception:
        return f"<{type(obj).__qualname__} object at {id(obj):#x}>"


class RunWaits:
    """The run-wide facts that describing the waits of many tasks needs,
    gathered once per snapshot: who waits for which file descriptor, who
    waits in `wait_all_tasks_blocked`."""

    __slots__ = ("fd_waiters", "idle_waiters", "now")

    def __init__(self, runner: Runner, now: float) -> None:
        self.now = now
        self.fd_waiters: dict[Task, tuple[int, str]] = {}
        # (Copied first: from another thread, the table may change while
        # it is read.)
        for fd, waiters in list(runner.io_manager._waiters.items()):
            if waiters.read_task is not None:
                self.fd_waiters[waiters.read_task] = (fd, "readable")
            if waiters.write_task is not None:
                self.fd_waiters[waiters.write_task] = (fd, "writable")
        self.idle_waiters: dict[Task, float] = {
            task: cushion for (cushion, _), task in list(runner.waiting_for_idle.items())
        }


def describe_wait(task: Task, run: RunWaits) -> WaitInfo | None:
    """What `task` waits on, or None if it is not blocked."""
    abort_func = task._abort_func
    if abort_func is None:
        return None
    if abort_func is ABORT_BY_LEAVING_LOT:
        return _describe_lot_wait(task, task.custom_sleep_data, run.now)
    nursery_wait = _describe_nursery_wait(task)
    if nursery_wait is not None:
        return nursery_wait
    fd_wait = run.fd_waiters.get(task)
    if fd_wait is not None:
        return describe_fd_wait(*fd_wait)
    cushion = run.idle_waiters.get(task)
    if cushion is not None:
        return WaitInfo(
            "all_tasks_blocked",
            f"in wait_all_tasks_blocked(cushion={cushion:g}): until every other task is blocked",
            details={"cushion": cushion},
        )
    if task._foreign_wait:
        foreign = _describe_foreign_wait(task, run.now)
        if foreign is not None:
            return foreign
    data = task.custom_sleep_data
    if data is not None:
        if isinstance(data, WaitInfo):
            return data
        if isinstance(data, str):
            return WaitInfo("custom", data)
        described = _call_describer(_describer_for_type(type(data)), task, data, run.now)
        if described is not None:
            return described
    described = _call_describer(_describer_for_abort(abort_func), task, abort_func, run.now)
    if described is not None:
        return described
    name = getattr(abort_func, "__qualname__", None) or safe_repr(abort_func)
    return WaitInfo(
        "unknown",
        f"unknown (custom wait; abort function {name})",
        details={"abort_func": abort_func, "custom_sleep_data": data},
    )


def _describer_for_type(cls: type) -> WaitDescriber | None:
    for klass in cls.__mro__:
        describer = _describers.get(klass)
        if describer is not None:
            return describer
    return None


def _describer_for_abort(abort_func: object) -> WaitDescriber | None:
    describer = _describers.get(abort_func)
    if describer is not None:
        return describer
    function = getattr(abort_func, "__func__", abort_func)  # a bound method's function
    return _describers.get(getattr(function, "__code__", None))


def _call_describer(
    describer: WaitDescriber | None, task: Task, obj: object, now: float
) -> WaitInfo | None:
    if describer is None:
        return None
    try:
        return describer(task, obj, now)
    except Exception as exc:
        # A snapshot is for debugging: say what went wrong, keep going.
        return WaitInfo("unknown", f"(could not describe the wait on {safe_repr(obj)}: {exc!r})")


# -- parking lots -------------------------------------------------------------


def _describe_lot_wait(task: Task, lot: ParkingLot, now: float) -> WaitInfo:
    owner = lot_owner(task, lot)
    if owner is not None:
        described = _call_describer(_describer_for_type(type(owner)), task, owner, now)
        if described is not None:
            return described
        return WaitInfo(
            "parking_lot",
            f"parked in the ParkingLot of {safe_repr(owner)} ({len(lot)} waiting)",
            target=lot,
            details={"owner": owner},
        )
    return WaitInfo("parking_lot", f"parked in {safe_repr(lot)}", target=lot)


#: Types whose instances never own a parking lot as a primitive does; their
#: references are not searched (a task's ``custom_sleep_data`` holds the lot
#: it is parked in, a container would have to be searched element by
#: element).
_NOT_OWNERS = (
    Task,
    ParkingLot,
    type,
    types.ModuleType,
    types.FunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
    # The await chain's own links: a coroutine holds the lot as a local.
    types.CoroutineType,
    types.GeneratorType,
    types.AsyncGeneratorType,
    str,
    bytes,
    int,
)


def lot_owner(task: Task, lot: ParkingLot) -> object | None:
    """The object that holds `lot` as an attribute (the primitive that parks
    its waiters there), found among the locals of `task`'s await chain,
    innermost first; None if none is. Reads references only
    (`gc.get_referents`): no attribute access that could run code."""
    chain = [awaitable for awaitable, _ in task._iter_await_chain()]
    for awaitable in reversed(chain):
        for local in gc.get_referents(awaitable):
            if isinstance(local, _NOT_OWNERS) or type(local) in _CONTAINERS:
                continue
            if _holds(local, lot):
                owner: object = local
                return owner
    return None


_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})


def _holds(obj: object, target: object) -> bool:
    """Whether `obj` refers to `target` directly: in a slot or an instance
    attribute (``__dict__``, materialized or not)."""
    for ref in gc.get_referents(obj):
        if ref is target:
            return True
        if type(ref) is dict and any(value is target for value in ref.values()):
            return True
    return False


# -- nurseries ----------------------------------------------------------------


def _describe_nursery_wait(task: Task) -> WaitInfo | None:
    nurseries = task._child_nurseries
    if not nurseries:
        return None
    nursery: Nursery = nurseries[-1]
    if not nursery._parent_waiting_for_children:
        return None
    children = sorted(nursery._children, key=_spawn_index)
    starting = [child for child in children if getattr(child, "_eventual_parent_nursery", None)]
    if starting:
        names = ", ".join(repr(child.name) for child in starting)
        return WaitInfo(
            "start",
            f"in Nursery.start, until task {names} calls task_status.started()",
            target=nursery,
            details={"tasks": tuple(starting)},
        )
    count = len(children)
    tasks = "its task finishes" if count == 1 else f"its {count} tasks finish"
    return WaitInfo(
        "nursery",
        f"at the end of its nursery's block, until {tasks}",
        target=nursery,
        details={"tasks": tuple(children)},
    )


def _spawn_index(task: Task) -> int:
    return getattr(task, "_spawn_index", 0)


# -- file descriptors ---------------------------------------------------------


def describe_fd_wait(fd: int, which: str) -> WaitInfo:
    """A wait until `fd` is readable or writable (`which`), with what the
    descriptor is: a socket and its addresses, a process (a pidfd, what
    `Process.wait` waits on), a pipe. Only queries the descriptor."""
    kind = f"wait_{which}"
    details: dict[str, Any] = {"fd": fd}
    what = f"fd {fd}"
    pid = _pidfd_pid(fd)
    if pid is not None:
        return WaitInfo(
            "subprocess",
            f"waiting for process {pid} to exit (pidfd {fd})",
            target=fd,
            details={"fd": fd, "pid": pid},
        )
    try:
        is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        is_socket = False
    if is_socket:
        details.update(_socket_facts(fd))
        addresses = ""
        if "local" in details:
            addresses = f" {_format_address(details['local'])}"
            if "peer" in details:
                addresses += f" -> {_format_address(details['peer'])}"
        what = f"socket fd {fd} ({details.get('type', 'socket')}{addresses})"
    else:
        link = _proc_fd_link(fd)
        if link is not None:
            details["file"] = link
            what = f"fd {fd} ({link})"
    return WaitInfo(kind, f"waiting until {what} is {which}", target=fd, details=details)


def _proc_fd_link(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _pidfd_pid(fd: int) -> int | None:
    """The process a pidfd refers to (Linux), or None if `fd` is not one."""
    link = _proc_fd_link(fd)
    if link is None or "pidfd" not in link:
        return None
    try:
        with open(f"/proc/self/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _socket_facts(fd: int) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    try:
        # Wraps the descriptor without taking it over: detached below, so
        # it is never closed here.
        sock = socket.socket(fileno=fd)
    except OSError:
        return facts
    try:
        family = getattr(sock.family, "name", str(sock.family))
        kind = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "datagram"}.get(
            sock.type, str(sock.type)
        )
        facts["type"] = f"{family.removeprefix('AF_')} {kind}"
        try:
            facts["local"] = sock.getsockname()
            facts["peer"] = sock.getpeername()
        except OSError:
            pass  # not connected (a listener, an unconnected datagram socket)
    finally:
        sock.detach()
    return facts


def _format_address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if address in ("", b""):
        return "(unnamed)"
    return str(address)


# -- foreign waits (a face's tasks: asyncio futures) ----------------------------


def _describe_foreign_wait(task: Task, now: float) -> WaitInfo | None:
    """A face's task blocked at a foreign yield: describe the object at the
    bottom of its await chain (an asyncio future) and the coroutine that
    awaits it."""
    chain = list(task._iter_await_chain())
    if not chain:
        return None
    bottom, frame = chain[-1]
    if frame is not None:
        # The innermost coroutine yielded the object itself (a bare
        # ``yield fut``): it is not in the chain.
        return None
    awaited = _unwrap_future_iterator(bottom)
    awaiting = next((aw for aw, fr in reversed(chain) if fr is not None), None)
    described = _call_describer(_describer_for_type(type(awaited)), task, awaited, now)
    if described is not None:
        return described
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        if isinstance(awaited, asyncio.Future):
            return _describe_asyncio_wait(asyncio, awaited, awaiting, now)
        # A wait without a future (tether.aio parks a task waiting on its
        # Event or StreamReader): say which primitive's method waits.
        where, _, primitive = _asyncio_primitive_of(asyncio, awaiting)
        if primitive is not None:
            return WaitInfo(
                "asyncio_future",
                f"in asyncio {where}() on {safe_repr(primitive)}",
                target=primitive,
                details={"primitive": primitive},
            )
    return WaitInfo(
        "unknown", f"unknown (awaiting {safe_repr(awaited)} in a face's task)", target=awaited
    )


def _unwrap_future_iterator(obj: object) -> object:
    """The future behind what ``await future`` awaits (a C future's
    iterator, or the generator of a Python future's ``__await__``)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or isinstance(obj, asyncio.Future):
        return obj
    for ref in gc.get_referents(obj):
        if isinstance(ref, asyncio.Future):
            return ref
    return obj


#: asyncio's own primitives, by class name in `asyncio`: a coroutine that
#: has one among its locals waits on it (``Queue.get``, ``Lock.acquire``).
_ASYNCIO_PRIMITIVES = (
    "Queue",
    "Event",
    "Lock",
    "Semaphore",
    "Condition",
    "Barrier",
    "StreamReader",
)


def _asyncio_primitive_of(
    asyncio: Any, awaiting: object
) -> tuple[str, list[object], object | None]:
    """Where `awaiting` (the coroutine at the bottom of a wait) is, by
    qualified name; what its frame refers to (its locals); and the asyncio
    primitive among those (None if there is none)."""
    code = getattr(awaiting, "cr_code", None) or getattr(awaiting, "gi_code", None)
    where = getattr(code, "co_qualname", None) or "?"
    primitives = tuple(
        getattr(asyncio, name) for name in _ASYNCIO_PRIMITIVES if hasattr(asyncio, name)
    )
    locals_ = gc.get_referents(awaiting) if awaiting is not None else []
    return where, locals_, next((ref for ref in locals_ if isinstance(ref, primitives)), None)


def _describe_asyncio_wait(asyncio: Any, future: Any, awaiting: object, now: float) -> WaitInfo:
    where, locals_, primitive = _asyncio_primitive_of(asyncio, awaiting)
    timer = next((ref for ref in locals_ if isinstance(ref, asyncio.TimerHandle)), None)
    if timer is not None and not timer.cancelled():
        # A timed wait: asyncio.sleep keeps the timer that completes its
        # future in a local (tether.aio's loop time is the run's clock).
        until = timer.when()
        return WaitInfo(
            "sleep",
            f"sleeping until {format_time(until, now)}, in {where}()",
            target=future,
            details={"until": until, "future": future},
        )
    if isinstance(future, asyncio.Task | Task):
        # (A face's task may be a kernel task and a future at once.)
        name = future.name if isinstance(future, Task) else future.get_name()
        return WaitInfo(
            "asyncio_future",
            f"awaiting asyncio task {name!r}, in {where}()",
            target=future,
            details={"future": future},
        )
    if primitive is not None:
        return WaitInfo(
            "asyncio_future",
            f"in asyncio {where}() on {safe_repr(primitive)}",
            target=future,
            details={"future": future, "primitive": primitive},
        )
    return WaitInfo(
        "asyncio_future",
        f"awaiting an asyncio future ({_future_state(future)}, at {id(future):#x}), in {where}()",
        target=future,
        details={"future": future},
    )


def _future_state(future: Any) -> str:
    if future.cancelled():
        return "cancelled"
    return "done" if future.done() else "pending"

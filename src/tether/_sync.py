"""Synchronization primitives built on `ParkingLot`.

Each primitive keeps its state in plain attributes and parks waiters in a
`ParkingLot`. Names and semantics follow trio's.

Invariants shared by every primitive here:

* Every blocking call (``acquire``, ``wait``) is a checkpoint, whether or not
  it blocks, and if it raises `Cancelled` it did nothing: no token taken, no
  lock held.
* Nothing is ever *barged*: when a holder releases and a task is waiting,
  the release hands the lock (token, unit) straight to the longest-waiting
  task, which owns it from that moment, before it even runs again. A task
  that arrives later queues behind it.

How an acquire is shaped (trio's pattern, the same in each primitive):
`checkpoint_if_cancelled()`, then, if the resource is free, take it at once
and pass a `cancel_shielded_checkpoint()`; if it is not, park (a full
checkpoint: the kernel delivers a pending cancellation the moment a task
parks) until a release hands it over. Taking before the schedule point, not
after, keeps the order strict: tasks get the resource in the order they
asked for it, whatever order the scheduler runs them in afterwards (even
with a shuffled ``schedule_seed``). The fast path allocates no waiter.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import NoReturn, final

from ._core import (
    BrokenResourceError,
    CancelScope,
    ParkingLot,
    ParkingLotStatistics,
    Task,
    WaitInfo,
    WouldBlock,
    add_parking_lot_breaker,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    park_unless_set,
    register_wait_describer,
    remove_parking_lot_breaker,
)

__all__ = [
    "CapacityLimiter",
    "CapacityLimiterStatistics",
    "Condition",
    "ConditionStatistics",
    "Event",
    "EventStatistics",
    "Lock",
    "LockStatistics",
    "Semaphore",
    "StrictFIFOLock",
]


# ---------------------------------------------------------------------------
# Event


@dataclass(frozen=True)
class EventStatistics:
    """``tasks_waiting``: the number of tasks blocked in `Event.wait`."""

    tasks_waiting: int


@final
class Event:
    """A flag that starts unset and can be set once; tasks can wait for it.

    There is no ``clear()``: an event that can be reset invites races where a
    waiter misses a set-then-clear. Create a new `Event` instead. An Event has
    no truth value (``if event:`` raises `NotImplementedError`, as in trio);
    call `is_set()`.
    """

    __slots__ = ("__weakref__", "_flag", "_lot")

    def __init__(self) -> None:
        self._lot = ParkingLot()
        self._flag = False

    def __repr__(self) -> str:
        state = "set" if self._flag else f"unset, {len(self._lot)} waiting"
        return f"<tether.Event at {id(self):#x}, {state}>"

    def __bool__(self) -> NoReturn:
        raise NotImplementedError("an Event has no truth value; use event.is_set()")

    def is_set(self) -> bool:
        """Whether the event has been set."""
        return self._flag

    def set(self) -> None:
        """Set the event and wake every waiting task. Idempotent; not a
        checkpoint."""
        if not self._flag:
            self._flag = True
            self._lot.unpark_all()

    def wait(self) -> Awaitable[None]:
        """``await event.wait()``: wait until the event is set. A checkpoint
        even when it is already set; cancellable while waiting.

        Whether to wait is decided when the returned awaitable is awaited,
        not when ``wait()`` is called. (A plain method returning a one-frame
        awaitable rather than an ``async def``: one frame fewer for each
        waiting task.)"""
        return park_unless_set(self._lot, self)

    def statistics(self) -> EventStatistics:
        """``tasks_waiting``: the number of tasks blocked in `wait`."""
        return EventStatistics(tasks_waiting=len(self._lot))


# ---------------------------------------------------------------------------
# Lock and StrictFIFOLock


class _ReleaseOnExit:
    """``async with primitive:`` for the acquire/release primitives. Each sets
    ``__aenter__ = acquire`` itself (one frame fewer than a wrapper); leaving
    the block calls ``release()``, which is not a checkpoint."""

    __slots__ = ()

    def release(self) -> None:
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


@dataclass(frozen=True)
class LockStatistics:
    """What `Lock.statistics` reports.

    ``locked``: whether the lock is held; ``owner``: the `Task` holding it,
    or None; ``tasks_waiting``: the number of tasks blocked in `acquire`.
    """

    locked: bool
    owner: Task | None
    tasks_waiting: int


class _LockImpl(_ReleaseOnExit):
    """The shared implementation of `Lock` and `StrictFIFOLock`.

    If the owner exits holding the lock, its waiters get `BrokenResourceError`
    instead of waiting forever: the owner is registered to break the lot
    (`add_parking_lot_breaker`), but only once a task is about to wait, so
    that taking and releasing a free lock, the common case, pays neither for
    that registration and its removal nor for the check that the owner is
    alive."""

    __slots__ = ("__weakref__", "_lot", "_owner", "_owner_breaks_lot")

    def __init__(self) -> None:
        self._lot = ParkingLot()
        self._owner: Task | None = None
        #: Whether `_owner` is registered to break `_lot`. Invariant: True
        #: whenever a task is parked in `_lot`.
        self._owner_breaks_lot = False

    def __repr__(self) -> str:
        if self._owner is None:
            state = "unlocked"
        else:
            state = f"locked by {self._owner!r}, {len(self._lot)} waiting"
        return f"<tether.{type(self).__name__} at {id(self):#x}, {state}>"

    def locked(self) -> bool:
        """Whether some task holds the lock."""
        return self._owner is not None

    def _owner_must_break_lot(self) -> None:
        """Before a task waits in the lot: have the owner break it if the
        owner exits holding the lock. `BrokenResourceError` if the owner
        has exited already (nobody would ever release the lock)."""
        owner = self._owner
        if self._owner_breaks_lot or owner is None:
            return
        try:
            add_parking_lot_breaker(owner, self._lot)
        except BrokenResourceError:
            raise BrokenResourceError(
                f"Owner of this lock exited without releasing: {owner!r}"
            ) from None
        self._owner_breaks_lot = True

    def acquire_nowait(self) -> None:
        """Take the lock without blocking. Not a checkpoint.

        Raises:
          WouldBlock: if another task holds the lock, or tasks are queued
            for it.
          RuntimeError: if the calling task already holds it (locks are not
            re-entrant).
        """
        task = current_task()
        owner = self._owner
        if owner is None and not self._lot:
            self._owner = task
            return
        if owner is task:
            raise RuntimeError(f"attempt to re-acquire a {type(self).__name__} this task holds")
        raise WouldBlock

    async def acquire(self) -> None:
        """Take the lock, waiting for it if another task holds it.

        A checkpoint, always. Cancellable while waiting; if it raises
        `Cancelled`, the lock was not taken. Waiters get the lock in the order
        they started waiting: `release` hands it straight to the
        longest-waiting task.

        Raises:
          RuntimeError: if the calling task already holds the lock.
          BrokenResourceError: if the owner exits without releasing the lock.
        """
        await checkpoint_if_cancelled()
        task = current_task()
        owner = self._owner
        if owner is None and not self._lot:
            self._owner = task
            await cancel_shielded_checkpoint()
            return
        if owner is task:
            raise RuntimeError(f"attempt to re-acquire a {type(self).__name__} this task holds")
        # `release` makes the woken task the owner before it runs again. If
        # the owner exits without releasing, the kernel breaks the lot and
        # this raises BrokenResourceError instead of waiting forever.
        self._owner_must_break_lot()
        try:
            await self._lot.park()
        except BrokenResourceError:
            raise BrokenResourceError(
                f"Owner of this lock exited without releasing: {self._owner!r}"
            ) from None

    def release(self) -> None:
        """Release the lock, handing it to the longest-waiting task if any.
        Not a checkpoint.

        Raises:
          RuntimeError: if the calling task does not hold the lock (a lock
            belongs to the task that acquired it).
        """
        owner = current_task()
        if owner is not self._owner:
            raise RuntimeError(
                f"can't release a {type(self).__name__} that this task does not hold"
            )
        lot = self._lot
        if self._owner_breaks_lot:
            remove_parking_lot_breaker(owner, lot)
            self._owner_breaks_lot = False
        if lot:
            (new_owner,) = lot.unpark()
            self._owner = new_owner
            if lot:
                # Others still wait, now for the new owner.
                self._owner_must_break_lot()
        else:
            self._owner = None

    def statistics(self) -> LockStatistics:
        """``locked``, ``owner`` (a `Task` or None) and ``tasks_waiting``."""
        return LockStatistics(
            locked=self._owner is not None, owner=self._owner, tasks_waiting=len(self._lot)
        )

    # ``async with lock:`` acquires on entry (a checkpoint) and releases on
    # exit (not a checkpoint). Entering is `acquire` itself: one frame fewer.
    __aenter__ = acquire


@final
class Lock(_LockImpl):
    """A mutex: at most one task holds it at a time.

    Not re-entrant, and owned by the task that acquired it: only that task
    may release it. ``async with lock:`` acquires on entry (a checkpoint) and
    releases on exit (not a checkpoint).

    Fair: when a task releases the lock while others wait, the
    longest-waiting task gets it, even if the releasing task immediately
    tries to take it again.
    """

    __slots__ = ()


@final
class StrictFIFOLock(_LockImpl):
    """A `Lock` that guarantees tasks acquire it strictly in the order they
    asked for it.

    Today `Lock` gives the same guarantee; use this class when your code
    *relies* on it (for example, several tasks sending chunks produced by a
    shared state machine, which must go out in the order they were made), so
    that the reliance is written down and stays true if `Lock` ever changes.
    """

    __slots__ = ()


# ---------------------------------------------------------------------------
# Condition


@dataclass(frozen=True)
class ConditionStatistics:
    """``tasks_waiting``: tasks blocked in `Condition.wait`;
    ``lock_statistics``: the underlying lock's `LockStatistics`."""

    tasks_waiting: int
    lock_statistics: LockStatistics


@final
class Condition:
    """A condition variable, like `threading.Condition`: tasks holding the
    lock wait for another task to `notify` them.

    ``async with condition:`` acquires and releases the underlying lock.

    Args:
      lock: the `Lock` to use (exactly a `Lock`); a new one by default.
    """

    __slots__ = ("__weakref__", "_lock", "_lot")

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is None:
            lock = Lock()
        if type(lock) is not Lock:
            raise TypeError(f"lock must be a tether.Lock, got {lock!r}")
        self._lock = lock
        self._lot = ParkingLot()

    def __repr__(self) -> str:
        return f"<tether.Condition at {id(self):#x}, {len(self._lot)} waiting, lock {self._lock!r}>"

    def locked(self) -> bool:
        """Whether the underlying lock is held."""
        return self._lock.locked()

    def acquire_nowait(self) -> None:
        """Take the underlying lock without blocking; see `Lock.acquire_nowait`."""
        self._lock.acquire_nowait()

    def acquire(self) -> Awaitable[None]:
        """``await condition.acquire()``: take the underlying lock; see
        `Lock.acquire` (a checkpoint; cancellable while waiting)."""
        return self._lock.acquire()

    def release(self) -> None:
        """Release the underlying lock; see `Lock.release`."""
        self._lock.release()

    async def wait(self) -> None:
        """Release the lock, wait to be notified, and take the lock back.

        The caller must hold the lock. A checkpoint. Cancellable while
        waiting, but it *always* takes the lock back before returning or
        raising, even when cancelled (shielded while it waits for the lock),
        so that ``async with condition: await condition.wait()`` never
        releases a lock it does not hold. Cancellation can therefore take
        effect only once the lock is free again.

        Raises:
          RuntimeError: if the calling task does not hold the lock.
        """
        lock = self._lock
        if current_task() is not lock._owner:
            raise RuntimeError("must hold the Condition's lock to wait")
        lock.release()
        try:
            # `notify` moves this task into the lock's queue, so it wakes up
            # holding the lock.
            await self._lot.park()
        except BaseException:
            with CancelScope(shield=True):
                await lock.acquire()
            raise

    def notify(self, n: int = 1) -> None:
        """Wake up to `n` tasks blocked in `wait`, longest-waiting first.
        They take the lock in turn once the caller releases it. Not a
        checkpoint.

        Raises:
          RuntimeError: if the calling task does not hold the lock.
        """
        if current_task() is not self._lock._owner:
            raise RuntimeError("must hold the Condition's lock to notify")
        self._lot.repark(self._lock._lot, count=n)
        # They wait for the lock now: see `_LockImpl._owner_must_break_lot`.
        if self._lock._lot:
            self._lock._owner_must_break_lot()

    def notify_all(self) -> None:
        """Wake every task blocked in `wait`; see `notify`.

        Raises:
          RuntimeError: if the calling task does not hold the lock.
        """
        if current_task() is not self._lock._owner:
            raise RuntimeError("must hold the Condition's lock to notify")
        self._lot.repark_all(self._lock._lot)
        if self._lock._lot:
            self._lock._owner_must_break_lot()

    def statistics(self) -> ConditionStatistics:
        """``tasks_waiting`` (in `wait`) and ``lock_statistics``."""
        return ConditionStatistics(
            tasks_waiting=len(self._lot), lock_statistics=self._lock.statistics()
        )

    def __aenter__(self) -> Awaitable[None]:
        return self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()


# ---------------------------------------------------------------------------
# Semaphore


@final
class Semaphore(_ReleaseOnExit):
    """A counter that `acquire` decrements and `release` increments, and
    that never goes below zero: `acquire` waits while it is zero.

    ``async with semaphore:`` acquires on entry (a checkpoint) and releases
    on exit. Unlike a lock, any task may release. To limit how many tasks do
    something at once, `CapacityLimiter` is usually the better tool.

    Args:
      initial_value: the starting value, a non-negative int.
      max_value: if given, `release` raises `ValueError` instead of taking
        the value above it (a "bounded" semaphore).
    """

    __slots__ = ("__weakref__", "_lot", "_max_value", "_value")

    def __init__(self, initial_value: int, *, max_value: int | None = None) -> None:
        if not isinstance(initial_value, int):
            raise TypeError(f"initial_value must be an int, got {initial_value!r}")
        if initial_value < 0:
            # trio's wording, which code may match on.
            raise ValueError("initial value must be >= 0")
        if max_value is not None:
            if not isinstance(max_value, int):
                raise TypeError(f"max_value must be None or an int, got {max_value!r}")
            if max_value < initial_value:
                # trio's wording (sic), which code may match on.
                raise ValueError("max_values must be >= initial_value")
        self._lot = ParkingLot()
        self._value = initial_value
        self._max_value = max_value

    def __repr__(self) -> str:
        bound = "" if self._max_value is None else f", max_value={self._max_value}"
        return f"<tether.Semaphore({self._value}{bound}) at {id(self):#x}>"

    @property
    def value(self) -> int:
        """The current value."""
        return self._value

    @property
    def max_value(self) -> int | None:
        """The bound given to the constructor, or None."""
        return self._max_value

    def acquire_nowait(self) -> None:
        """Decrement the value without blocking. Not a checkpoint.

        Raises:
          WouldBlock: if the value is zero.
        """
        if self._value > 0:
            self._value -= 1
        else:
            raise WouldBlock

    async def acquire(self) -> None:
        """Decrement the value, waiting while it is zero.

        A checkpoint, always. Cancellable while waiting; if it raises
        `Cancelled`, the value was not decremented. Waiters are served in
        the order they started waiting.
        """
        await checkpoint_if_cancelled()
        if self._value > 0:
            self._value -= 1
            await cancel_shielded_checkpoint()
            return
        # `release` hands its unit straight to the woken task.
        await self._lot.park()

    def release(self) -> None:
        """Increment the value, or hand the unit straight to the
        longest-waiting task. Not a checkpoint.

        Raises:
          ValueError: if the value would exceed `max_value`.
        """
        if self._lot:
            # While tasks wait the value is zero: give the unit to one.
            self._lot.unpark()
        elif self._max_value is not None and self._value >= self._max_value:
            # trio's wording, which code may match on.
            raise ValueError("semaphore released too many times")
        else:
            self._value += 1

    def statistics(self) -> ParkingLotStatistics:
        """``tasks_waiting``: the number of tasks blocked in `acquire`."""
        return self._lot.statistics()

    __aenter__ = acquire


# ---------------------------------------------------------------------------
# CapacityLimiter


@dataclass(frozen=True)
class CapacityLimiterStatistics:
    """What `CapacityLimiter.statistics` reports.

    ``borrowed_tokens``: tokens in use; ``total_tokens``: the capacity (it
    can be below ``borrowed_tokens`` just after `total_tokens` was lowered);
    ``borrowers``: who holds the tokens (tasks or other objects);
    ``tasks_waiting``: tasks blocked in `acquire`/`acquire_on_behalf_of`.
    """

    borrowed_tokens: int
    total_tokens: int | float
    borrowers: list[object]
    tasks_waiting: int


@final
class CapacityLimiter(_ReleaseOnExit):
    """A sack of `total_tokens` tokens: a task borrows one to do something
    and puts it back after, so at most `total_tokens` things happen at once.

    ``async with limiter:`` borrows a token on entry (a checkpoint) and
    returns it on exit. Each borrower (by default the current task) holds at
    most one token of a given limiter, which catches accidental nesting.
    Waiters get tokens in the order they started waiting.

    Args:
      total_tokens: the capacity, a non-negative int or `math.inf`; can be
        changed later by assigning `total_tokens`.
    """

    __slots__ = ("__weakref__", "_borrowers", "_lot", "_pending_borrowers", "_total_tokens")

    def __init__(self, total_tokens: int | float) -> None:
        self._lot = ParkingLot()
        self._borrowers: set[object] = set()
        # The borrower each task parked in `_lot` is waiting on behalf of.
        self._pending_borrowers: dict[Task, object] = {}
        self._total_tokens: int | float = 0
        self.total_tokens = total_tokens

    def __repr__(self) -> str:
        return (
            f"<tether.CapacityLimiter at {id(self):#x}, {len(self._borrowers)}/"
            f"{self._total_tokens} borrowed, {len(self._lot)} waiting>"
        )

    @property
    def total_tokens(self) -> int | float:
        """The capacity. Assigning a larger value wakes as many waiters as
        there are new tokens; a smaller one lets current borrowers carry on
        but admits nobody new until borrowers drop below it."""
        return self._total_tokens

    @total_tokens.setter
    def total_tokens(self, new_total_tokens: int | float) -> None:
        if not isinstance(new_total_tokens, int) and new_total_tokens != math.inf:
            raise TypeError(f"total_tokens must be an int or math.inf, got {new_total_tokens!r}")
        if new_total_tokens < 0:
            # trio's wording, which code may match on.
            raise ValueError("total_tokens must be >= 0")
        self._total_tokens = new_total_tokens
        self._wake_waiters()

    @property
    def borrowed_tokens(self) -> int:
        """How many tokens are borrowed now."""
        return len(self._borrowers)

    @property
    def available_tokens(self) -> int | float:
        """How many more tokens could be borrowed now (negative just after
        `total_tokens` was lowered below `borrowed_tokens`)."""
        return self._total_tokens - len(self._borrowers)

    def _wake_waiters(self) -> None:
        available = self._total_tokens - len(self._borrowers)
        if available > 0 and self._lot:
            for task in self._lot.unpark(count=available):
                self._borrowers.add(self._pending_borrowers.pop(task))

    def acquire_nowait(self) -> None:
        """Borrow a token for the current task without blocking; see
        `acquire_on_behalf_of_nowait`."""
        self.acquire_on_behalf_of_nowait(current_task())

    def acquire_on_behalf_of_nowait(self, borrower: object) -> None:
        """Borrow a token for `borrower` (a task or any hashable object, such
        as a thread handle) without blocking. Not a checkpoint.

        Raises:
          WouldBlock: if no token is free (or tasks are queued for one).
          RuntimeError: if `borrower` already holds a token of this limiter.
        """
        if borrower in self._borrowers:
            raise RuntimeError(f"{borrower!r} already holds one of this CapacityLimiter's tokens")
        if len(self._borrowers) < self._total_tokens and not self._lot:
            self._borrowers.add(borrower)
        else:
            raise WouldBlock

    async def acquire(self) -> None:
        """Borrow a token for the current task; see `acquire_on_behalf_of`
        (a checkpoint; cancellable while waiting).

        An ``async def`` on purpose: the borrower is the task that *awaits*,
        so ``nursery.start_soon(limiter.acquire)`` borrows for the new task,
        not for the one that called ``start_soon``."""
        await self.acquire_on_behalf_of(current_task())

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        """Borrow a token for `borrower`, waiting until one is free.

        A checkpoint, always. Cancellable while waiting; if it raises
        `Cancelled`, no token was borrowed.

        Raises:
          RuntimeError: if `borrower` already holds a token of this limiter.
        """
        await checkpoint_if_cancelled()
        borrowers = self._borrowers
        if borrower in borrowers:
            raise RuntimeError(f"{borrower!r} already holds one of this CapacityLimiter's tokens")
        if len(borrowers) < self._total_tokens and not self._lot:
            borrowers.add(borrower)
            await cancel_shielded_checkpoint()
            return
        task = current_task()
        self._pending_borrowers[task] = borrower
        try:
            # `_wake_waiters` moves `borrower` into `_borrowers` as it wakes us.
            await self._lot.park()
        except BaseException:
            del self._pending_borrowers[task]
            raise

    def release(self) -> None:
        """Return the current task's token; see `release_on_behalf_of`."""
        self.release_on_behalf_of(current_task())

    def release_on_behalf_of(self, borrower: object) -> None:
        """Return `borrower`'s token, handing it straight to the
        longest-waiting task if there is room. Not a checkpoint.

        Raises:
          RuntimeError: if `borrower` holds no token of this limiter.
        """
        try:
            self._borrowers.remove(borrower)
        except KeyError:
            raise RuntimeError(
                f"{borrower!r} isn't holding any of this CapacityLimiter's tokens"
            ) from None
        self._wake_waiters()

    def statistics(self) -> CapacityLimiterStatistics:
        """``borrowed_tokens``, ``total_tokens``, ``borrowers`` and
        ``tasks_waiting``."""
        return CapacityLimiterStatistics(
            borrowed_tokens=len(self._borrowers),
            total_tokens=self._total_tokens,
            borrowers=list(self._borrowers),
            tasks_waiting=len(self._lot),
        )

    __aenter__ = acquire


# ---------------------------------------------------------------------------
# What a waiting task waits on, for the task tree (`current_task_tree`). The
# kernel finds the primitive that owns the lot a task is parked in; these
# say what that means. Called only when a snapshot is taken.


def _waiting(queued: int) -> str:
    return f"{queued} task{'s' if queued != 1 else ''} waiting"


def _describe_event_wait(task: Task, event: Event, now: float) -> WaitInfo:
    return WaitInfo(
        "event",
        f"waiting for Event at {id(event):#x} to be set ({_waiting(len(event._lot))})",
        target=event,
    )


def _describe_lock_wait(task: Task, lock: _LockImpl, now: float) -> WaitInfo:
    owner = lock._owner
    held = "held by nobody" if owner is None else f"held by task {owner.name!r}"
    return WaitInfo(
        "lock",
        f"acquiring {type(lock).__name__} at {id(lock):#x}, {held} ({_waiting(len(lock._lot))})",
        target=lock,
        details={"owner": owner},
    )


def _describe_condition_wait(task: Task, condition: Condition, now: float) -> WaitInfo:
    return WaitInfo(
        "condition",
        f"in Condition.wait() at {id(condition):#x}, until notified "
        f"({_waiting(len(condition._lot))})",
        target=condition,
        details={"lock": condition._lock},
    )


def _describe_semaphore_wait(task: Task, semaphore: Semaphore, now: float) -> WaitInfo:
    return WaitInfo(
        "semaphore",
        f"acquiring Semaphore at {id(semaphore):#x}, value {semaphore._value} "
        f"({_waiting(len(semaphore._lot))})",
        target=semaphore,
        details={"value": semaphore._value, "max_value": semaphore._max_value},
    )


def _describe_limiter_wait(task: Task, limiter: CapacityLimiter, now: float) -> WaitInfo:
    borrowers = list(limiter._borrowers)
    names = ", ".join(
        repr(borrower.name) if isinstance(borrower, Task) else repr(borrower)
        for borrower in borrowers[:_BORROWERS_SHOWN]
    )
    if len(borrowers) > _BORROWERS_SHOWN:
        names += ", ..."
    return WaitInfo(
        "capacity_limiter",
        f"borrowing from CapacityLimiter at {id(limiter):#x}, "
        f"{len(borrowers)}/{limiter._total_tokens} tokens borrowed (by {names or 'nobody'}; "
        f"{_waiting(len(limiter._lot))})",
        target=limiter,
        details={
            "borrowed_tokens": len(borrowers),
            "total_tokens": limiter._total_tokens,
            "borrowers": tuple(borrowers),
            "borrower": limiter._pending_borrowers.get(task),
        },
    )


#: How many of a limiter's borrowers a description names.
_BORROWERS_SHOWN = 3

register_wait_describer(Event, _describe_event_wait)
register_wait_describer(_LockImpl, _describe_lock_wait)
register_wait_describer(Condition, _describe_condition_wait)
register_wait_describer(Semaphore, _describe_semaphore_wait)
register_wait_describer(CapacityLimiter, _describe_limiter_wait)

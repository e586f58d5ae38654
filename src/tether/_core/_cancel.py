"""Cancel scopes and the cancel-status tree.

Each entered `CancelScope` owns a `CancelStatus`. Statuses form a tree that
mirrors how scopes nest, across tasks: a child task's status hangs under the
status of the nursery that spawned it. Each task points at exactly one status
(its innermost scope). A status is *effectively cancelled* when its own scope
was cancelled, or when its parent is and the scope does not shield.

Invariant: ``status.effectively_cancelled`` is always up to date. Whatever
changes an input (``cancel()``, ``shield``, re-parenting) calls
`CancelStatus.recalculate`, which walks the affected subtree and tries to
deliver the cancellation to every blocked task that became cancelled. So a
checkpoint only has to read one boolean.

The run counts its statuses that are effectively cancelled
(``Runner.cancelled_statuses``): each one counts from the moment it is so
until it turns back (a shield) or is closed cleanly (an abandoned one stays
counted). At 0 no task can be in a cancelled scope, which lets the fastest
primitives skip their cancel check (see `SteppingState.cancel_pending`).
Every change of ``effectively_cancelled`` happens in this class and goes
through `_count`.
"""

from __future__ import annotations

import math
import numbers
import sys
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn

from ._cancel_reason import DEADLINE, CancelReason
from ._deadlines import DeadlineEntry
from ._exceptions import Cancelled
from ._loose_groups import collapse_loose_groups
from ._misnesting import MISNESTING_ADVICE
from ._run_context import GLOBAL_RUN_CONTEXT, current_task

if TYPE_CHECKING:
    from typing import Self

    from ._nursery import Nursery
    from ._task import Task


class CancelStatus:
    """The cancellation state of one entered `CancelScope`, as a node of the
    run's status tree (see the module docstring). Made when the scope is
    entered, closed when it exits; the scope object itself only records
    what the user asked for (deadline, shield, cancel)."""

    __slots__ = (
        "_children",
        "_nursery",
        "_parent",
        "_scope",
        "abandoned_by_misnesting",
        "effectively_cancelled",
        "tasks",
    )

    #: The scope this status belongs to (one status per entry of a scope).
    _scope: CancelScope

    #: The status this one nests in: the enclosing scope's in the same
    #: task, or, for the outermost status of a child task's code, the
    #: status of the nursery that spawned it. None for the root of a tree
    #: and once closed. Invariant: ``self in _parent._children``.
    _parent: CancelStatus | None

    #: The statuses whose `_parent` is this one.
    _children: set[CancelStatus]

    #: The nursery whose scope this status belongs to (set by the
    #: `Nursery`), None for a scope that is not a nursery's. Cleared when
    #: the status closes (the nursery refers to its status: no cycle left
    #: for the garbage collector).
    _nursery: Nursery | None

    #: The tasks whose innermost status this is, except the children of
    #: `_nursery` (see `members`): they would all be here, so they are found
    #: through the nursery's own set, one set entry per task instead of two.
    #: Invariant: ``task._cancel_status is status`` exactly when ``task in
    #: status.tasks``, or the task is a child of `_nursery` (its
    #: ``_parent_nursery._cancel_status is status``), in which case it is
    #: not in `tasks`.
    tasks: set[Task]

    #: Whether code under this status must raise `Cancelled` at a
    #: checkpoint: the scope was cancelled, or the parent is effectively
    #: cancelled and the scope does not shield. Invariant: always up to date
    #: (whatever changes an input calls `recalculate`), so that a checkpoint
    #: reads one boolean.
    effectively_cancelled: bool

    #: Part of a subtree that a misnested exit left behind (see
    #: _misnesting.py): it stays cancelled, and its scope catches the
    #: resulting `Cancelled` whoever exits it.
    abandoned_by_misnesting: bool

    def __init__(self, scope: CancelScope, parent: CancelStatus | None) -> None:
        self._scope = scope
        self._parent = None
        self._children = set()
        self._nursery = None
        self.tasks = set()
        self.abandoned_by_misnesting = False
        # A fresh status has no tasks or children yet, so its state can be
        # computed directly instead of through recalculate().
        self.effectively_cancelled = scope._cancel_called
        if not self.effectively_cancelled and (
            parent is not None and not scope._shield and parent.effectively_cancelled
        ):
            self.effectively_cancelled = True
            _borrow_reason(scope, parent)
        if self.effectively_cancelled:
            _count(1)
        if parent is not None:
            self._parent = parent
            parent._children.add(self)

    @property
    def parent(self) -> CancelStatus | None:
        return self._parent

    @parent.setter
    def parent(self, parent: CancelStatus | None) -> None:
        if self._parent is not None:
            self._parent._children.remove(self)
        self._parent = parent
        if parent is not None:
            parent._children.add(self)
            self.recalculate()

    @property
    def children(self) -> frozenset[CancelStatus]:
        return frozenset(self._children)

    @property
    def parent_cancellation_is_visible_to_us(self) -> bool:
        return (
            self._parent is not None
            and not self._scope._shield
            and self._parent.effectively_cancelled
        )

    def members(self) -> list[Task]:
        """The tasks whose innermost status this is: `tasks`, and the
        children of `_nursery` that are not inside a scope of their own."""
        members = list(self.tasks)
        nursery = self._nursery
        if nursery is not None:
            members.extend(task for task in nursery._children if task._cancel_status is self)
        return members

    def encloses(self, other: CancelStatus | None) -> bool:
        """Whether `other` is this status or one of its descendants."""
        while other is not None:
            if other is self:
                return True
            other = other._parent
        return False

    def recalculate(self) -> None:
        # Iterative walk: deep scope trees must not hit the recursion limit.
        todo = [self]
        while todo:
            current = todo.pop()
            inherited = current.parent_cancellation_is_visible_to_us
            new_state = current._scope._cancel_called or inherited
            if new_state != current.effectively_cancelled:
                if new_state and not current._scope._cancel_called:
                    assert current._parent is not None
                    _borrow_reason(current._scope, current._parent)
                elif not new_state:
                    _return_borrowed_reason(current._scope)
                current.effectively_cancelled = new_state
                _count(1 if new_state else -1)
                if new_state:
                    for task in current.members():
                        task._attempt_delivery_of_any_pending_cancel()
                todo.extend(current._children)

    def _mark_abandoned(self) -> None:
        todo = [self]
        while todo:
            current = todo.pop()
            current.abandoned_by_misnesting = True
            todo.extend(current._children)

    def effective_deadline(self) -> float:
        deadline = math.inf
        status: CancelStatus | None = self
        while status is not None:
            if status.effectively_cancelled:
                return -math.inf
            deadline = min(deadline, status._scope._deadline)
            if status._scope._shield:
                break
            status = status._parent
        return deadline

    def close(self) -> None:
        self.parent = None
        nursery = self._nursery
        if nursery is not None:
            # (Its children, if any are left, are found here for the last
            # time: an abandoned status needs no more deliveries after this
            # one; see below.)
            self._nursery = None
            orphans = [task for task in nursery._children if task._cancel_status is self]
        else:
            orphans = []
        if self.tasks or self._children or orphans:
            # Scopes were exited out of order. CancelScope._close reports the
            # error; here we leave the orphaned subtree cancelled and marked,
            # so the code still inside it unwinds instead of running on.
            self._mark_abandoned()
            if not self.effectively_cancelled:
                self.effectively_cancelled = True
                _count(1)
            for task in [*self.tasks, *orphans]:
                task._attempt_delivery_of_any_pending_cancel()
            for child in list(self._children):
                child.recalculate()
        elif self.effectively_cancelled:
            # Closed for good: nothing can be under it any more.
            _count(-1)


# A scope cancelled only because an outer one is has no reason of its own:
# it shows the outer scope's while that cancellation reaches in. When it
# stops reaching in (a shield, a move under another nursery), the scope
# gives the reason back, so that a later cause of its own (its deadline)
# is reported as itself rather than as the outer scope's old one.


def _borrow_reason(scope: CancelScope, outer: CancelStatus) -> None:
    """`scope` becomes cancelled through `outer`, the status it nests in."""
    if not scope._cancel_called:
        scope._cancel_reason = outer._scope._cancel_reason


def _return_borrowed_reason(scope: CancelScope) -> None:
    """`scope` is no longer cancelled (so the outer cancellation no longer
    reaches it, and it was never cancelled itself)."""
    if not scope._cancel_called:
        scope._cancel_reason = None


def _count(change: int) -> None:
    """Keep ``Runner.cancelled_statuses`` (see the module docstring)."""
    GLOBAL_RUN_CONTEXT.runner.cancelled_statuses += change


def _check_deadline(value: float, name: str) -> float:
    """`value` as a float, or the error for a deadline that is not a number
    or is NaN (messages as trio words them: ``relative deadline must not
    be NaN``)."""
    if type(value) is int:
        return float(value)
    if type(value) is not float:
        if not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {value!r}")
        value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name.replace('_', ' ')} must not be NaN")
    return value


class CancelScope:
    """A cancellation boundary around a block of code.

    ``with CancelScope() as scope:`` associates the block with the scope;
    calling ``scope.cancel()``, or reaching ``scope.deadline``, makes every
    checkpoint inside the block (in this task and in tasks of nurseries opened
    inside it) raise `Cancelled`, until the block exits. Cancellation is
    level-triggered: it keeps firing at each checkpoint, not just once. On
    exit, the scope catches the `Cancelled` it caused and sets
    ``cancelled_caught``; outer code carries on normally.

    ``shield=True`` protects the block from cancellation of *outer* scopes
    (its own `cancel()` and deadline still work). A scope can be entered only
    once. The class cannot be subclassed (wrap a scope instead).

    Entering and exiting are not checkpoints.

    Args:
      deadline: absolute time (by `current_time`) at which the scope cancels
        itself.
      relative_deadline: seconds after entering at which it cancels itself;
        cannot be combined with ``deadline``.
      shield: whether to block cancellation from outer scopes.

    Raises:
      ValueError: for a NaN deadline, a negative or NaN relative deadline,
        or both kinds of deadline at once.
      TypeError: if a deadline is not a number or `shield` not a bool.
    """

    __slots__ = (
        "_cancel_called",
        "_cancel_reason",
        "_cancel_status",
        "_deadline",
        "_deadline_key",
        "_has_been_entered",
        "_registered_deadline",
        "_relative_deadline",
        "_shield",
        "cancelled_caught",
    )

    #: Absolute deadline on the run's clock; ``inf`` for none. Before
    #: entering a relative scope: ``inf`` (see `_relative_deadline`).
    _deadline: float

    #: Seconds from entering to the deadline, for a scope made with
    #: ``relative_deadline`` and not entered yet; ``inf`` otherwise.
    #: Invariant: `_deadline` and this are never both finite.
    _relative_deadline: float

    #: Whether outer cancellation is kept out (the ``shield`` property).
    _shield: bool

    #: The status while the scope is entered; None before and after.
    _cancel_status: CancelStatus | None

    #: Entered once (a scope cannot be entered twice).
    _has_been_entered: bool

    #: The deadline the run's `Deadlines` holds for this scope; ``inf`` for
    #: none. Invariant: equals `_deadline` while the scope is entered and
    #: not cancelled, ``inf`` otherwise (`_update_registered_deadline`
    #: restores it after each change).
    _registered_deadline: float

    #: The key of that registration (to remove it); None when there is none.
    _deadline_key: DeadlineEntry | None

    #: `cancel()` was called, or the deadline passed (the
    #: ``cancel_called`` property). Never goes back to False.
    _cancel_called: bool

    #: Why the scope is cancelled: its first cause, or the reason of the
    #: outer scope whose cancellation reached it; None while it is not.
    _cancel_reason: CancelReason | None

    #: Public: the scope caught a `Cancelled` on exit.
    cancelled_caught: bool

    def __init__(
        self,
        *,
        deadline: float = math.inf,
        relative_deadline: float = math.inf,
        shield: bool = False,
    ) -> None:
        # (Checked inline for the usual float: scopes are made often.)
        if type(deadline) is not float or deadline != deadline:
            deadline = _check_deadline(deadline, "deadline")
        if type(relative_deadline) is not float or relative_deadline != relative_deadline:
            relative_deadline = _check_deadline(relative_deadline, "relative_deadline")
        if relative_deadline < 0:
            raise ValueError("timeout must be non-negative")
        if deadline != math.inf and relative_deadline != math.inf:
            raise ValueError("Cannot specify both a deadline and a relative deadline")
        if not isinstance(shield, bool):
            raise TypeError(f"shield must be a bool, got {shield!r}")
        self._deadline = deadline
        self._relative_deadline = relative_deadline
        self._shield = shield
        self._cancel_status = None
        self._has_been_entered = False
        self._registered_deadline = math.inf
        self._deadline_key = None
        self._cancel_called = False
        self._cancel_reason = None
        self.cancelled_caught = False

    def __init_subclass__(cls, **kwargs: object) -> NoReturn:
        raise TypeError(
            "tether.CancelScope cannot be subclassed; to add behaviour, wrap a "
            "CancelScope in a class or context manager of your own"
        )

    def __repr__(self) -> str:
        if self._cancel_status is not None:
            binding = "active"
        elif self._has_been_entered:
            binding = "exited"
        else:
            binding = "unbound"
        state = ""
        if self._cancel_called:
            state = ", cancelled"
        elif self._deadline != math.inf:
            # The time left needs the run's clock: outside the run's thread
            # the deadline is left out.
            runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
            if runner is not None:
                left = self._deadline - runner.clock.current_time()
                when = "from now" if left >= 0 else "ago"
                state = f", deadline is {abs(left):.2f} seconds {when}"
        return f"<tether.CancelScope at {id(self):#x}, {binding}{state}>"

    # -- entering and leaving ------------------------------------------------

    def __enter__(self) -> Self:
        task = current_task()
        if self._has_been_entered:
            raise RuntimeError(
                "Each CancelScope may only be used for a single 'with' block; "
                "create a new CancelScope for each block"
            )
        self._has_been_entered = True
        runner = GLOBAL_RUN_CONTEXT.runner
        if self._relative_deadline != math.inf:
            self._deadline = runner.clock.current_time() + self._relative_deadline
            self._relative_deadline = math.inf
        if self._deadline != math.inf and runner.clock.current_time() >= self._deadline:
            self._cancel_called = True
            if self._cancel_reason is None:
                self._cancel_reason = DEADLINE
        self._cancel_status = CancelStatus(self, task._cancel_status)
        task._activate_cancel_status(self._cancel_status)
        self._update_registered_deadline()
        return self

    def __exit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # (Named for the line a traceback shows: ``raise
        # error_leaving_cancel_scope``, read without the code around it.)
        error_leaving_cancel_scope = self._close(exc)
        if error_leaving_cancel_scope is None:
            return True
        if error_leaving_cancel_scope is exc:
            return False
        # A new exception (a misnesting error, or a group with the Cancelled
        # taken out): raise it but keep the context it already carries.
        # Raising it here, while `exc` is being handled, sets its
        # ``__context__`` to `exc`, so the old value is put back after the
        # ``raise``, in a ``finally`` around it. That is why this cannot be a
        # helper function as in `Nursery.start`: the helper would have to
        # do the raising, and its frame would then sit in the traceback of
        # every error that leaves a cancel scope. (The same code stands in
        # `NurseryManager.__aexit__`, for the same reason.)
        saved_context = error_leaving_cancel_scope.__context__
        try:
            raise error_leaving_cancel_scope
        finally:
            value = sys.exc_info()[1]
            if value is not None:
                value.__context__ = saved_context
            # (No reference cycle through this frame and the errors.)
            del error_leaving_cancel_scope, value, exc

    def _close(self, exc: BaseException | None) -> BaseException | None:
        status = self._cancel_status
        if status is None:
            new_exc = RuntimeError(
                f"Cancel scope stack corrupted: {self!r} is a scope which had already "
                "been exited; a scope is left once"
            )
            new_exc.__context__ = exc
            return new_exc
        task = current_task()
        if task._cancel_status is not status:
            if status.abandoned_by_misnesting:
                # An outer scope already reported the misnesting.
                pass
            elif not status.encloses(task._cancel_status):
                new_exc = RuntimeError(
                    f"Cancel scope stack corrupted: {self!r} was exited from unrelated "
                    f"{task!r}, which is not inside it; nothing was changed"
                    f"\n{MISNESTING_ADVICE}"
                )
                new_exc.__context__ = exc
                return new_exc
            else:
                inner = task._cancel_status
                inner_scope = inner._scope if inner is not None else None
                new_exc = RuntimeError(
                    f"Cancel scope stack corrupted: {self!r} was exited while "
                    f"{task!r} is still within its child {inner_scope!r}, which should "
                    "have been left first; the child is now cancelled so that the code "
                    f"in it unwinds\n{MISNESTING_ADVICE}"
                )
                new_exc.__context__ = exc
                exc = new_exc
                task._activate_cancel_status(status._parent)
        else:
            task._activate_cancel_status(status._parent)
        if (
            exc is not None
            and status.effectively_cancelled
            and not status.parent_cancellation_is_visible_to_us
        ) or (task._cancel_status is not status and status.abandoned_by_misnesting):
            # (The second case: an abandoned scope, left cancelled by the
            # misnesting that an outer scope reported; its Cancelled stop
            # here.)
            if isinstance(exc, Cancelled):
                self.cancelled_caught = True
                exc = None
            elif isinstance(exc, BaseExceptionGroup):
                matched, rest = exc.split(Cancelled)
                exc = rest
                if matched is not None:
                    self.cancelled_caught = True
                    if rest is not None:
                        exc = collapse_loose_groups(rest)
        status.close()
        self._cancel_status = None
        self._update_registered_deadline()
        return exc

    # -- deadline bookkeeping ------------------------------------------------

    def _update_registered_deadline(self) -> None:
        if self._cancel_status is not None and not self._cancel_called:
            wanted = self._deadline
        else:
            wanted = math.inf
        old = self._registered_deadline
        if wanted != old:
            deadlines = GLOBAL_RUN_CONTEXT.runner.deadlines
            if self._deadline_key is not None:
                deadlines.remove(self._deadline_key)
                self._deadline_key = None
            if wanted != math.inf:
                self._deadline_key = deadlines.add(wanted, self)
            self._registered_deadline = wanted

    # -- public state --------------------------------------------------------

    def cancel(self, reason: str | None = None) -> None:
        """Cancel this scope now. Idempotent; safe to call before entering
        (the scope is then cancelled on entry) or after exiting (no effect).
        Not a checkpoint: the code inside raises `Cancelled` at its next
        checkpoint (a task blocked inside is woken at once).

        Args:
          reason: text for the `Cancelled` raised inside (its ``reason``
            and message), with the calling task; a scope keeps the reason
            of its first cancellation.
        """
        if self._cancel_called:
            return
        runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
        # (The task, not its repr: the reason builds the text only if a
        # Cancelled or a task tree needs it.)
        task = runner.current_task if runner is not None else None
        self._cancel(CancelReason("explicit", by_task=task, reason=reason))

    def _cancel(self, reason: CancelReason | None) -> None:
        """`cancel` for the kernel's own causes, which say why."""
        if self._cancel_called:
            return
        if self._cancel_reason is None:
            self._cancel_reason = reason
        self._cancel_called = True
        if self._cancel_status is not None:
            self._update_registered_deadline()
            self._cancel_status.recalculate()

    @property
    def cancel_called(self) -> bool:
        """Whether `cancel()` was called or the deadline passed. True does not
        mean the code inside was affected (it may have had no checkpoint
        left); see `cancelled_caught` for that."""
        if (self._cancel_status is not None or not self._has_been_entered) and (
            not self._cancel_called and self._deadline != math.inf
        ):
            runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
            if runner is not None and runner.clock.current_time() >= self._deadline:
                self._cancel(DEADLINE)
        return self._cancel_called

    @property
    def deadline(self) -> float:
        """Absolute time (by `current_time`) at which this scope cancels itself;
        ``inf`` for none. Read-write, also while the scope is active."""
        if self._relative_deadline != math.inf:
            raise RuntimeError(
                "Unentered relative cancel scope does not have an absolute deadline "
                "(it counts from entering); read or set relative_deadline instead"
            )
        return self._deadline

    @deadline.setter
    def deadline(self, new_deadline: float) -> None:
        new_deadline = _check_deadline(new_deadline, "deadline")
        if self._relative_deadline != math.inf:
            raise RuntimeError(
                "Unentered relative cancel scope does not have an absolute deadline "
                "(it counts from entering); set relative_deadline instead"
            )
        self._deadline = new_deadline
        if self._cancel_status is not None:
            self._update_registered_deadline()

    @property
    def relative_deadline(self) -> float:
        """Seconds until the deadline. Before entering, the delay to count
        from the moment of entering; afterwards, the time left from now."""
        if self._has_been_entered:
            return self._deadline - GLOBAL_RUN_CONTEXT.runner.clock.current_time()
        if self._deadline != math.inf:
            raise RuntimeError(
                "Unentered non-relative cancel scope does not have a relative deadline"
            )
        return self._relative_deadline

    @relative_deadline.setter
    def relative_deadline(self, new_relative_deadline: float) -> None:
        new_relative_deadline = _check_deadline(new_relative_deadline, "relative_deadline")
        if new_relative_deadline < 0:
            raise ValueError("relative deadline must be non-negative")
        if self._has_been_entered:
            now = GLOBAL_RUN_CONTEXT.runner.clock.current_time()
            self._deadline = now + new_relative_deadline
            if self._cancel_status is not None:
                self._update_registered_deadline()
        elif self._deadline != math.inf:
            raise RuntimeError(
                "Unentered non-relative cancel scope does not have a relative deadline"
            )
        else:
            self._relative_deadline = new_relative_deadline

    @property
    def is_relative(self) -> bool | None:
        """None once entered; otherwise whether the deadline is relative."""
        if self._has_been_entered:
            return None
        return self._relative_deadline != math.inf

    @property
    def shield(self) -> bool:
        """Whether cancellation of outer scopes is kept out of this block.
        Read-write; changing it takes effect at once."""
        return self._shield

    @shield.setter
    def shield(self, new_value: bool) -> None:
        if not isinstance(new_value, bool):
            raise TypeError(f"shield must be a bool, got {new_value!r}")
        self._shield = new_value
        if self._cancel_status is not None:
            self._cancel_status.recalculate()

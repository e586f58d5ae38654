"""Property tests: random trees of nurseries, cancel scopes and leaf tasks.

A program is drawn as a tree:

* ``Leaf``: sleeps until an absolute virtual time, then returns or raises
  ``LeafError(id)``;
* ``Scope``: a ``CancelScope`` with an optional absolute deadline, an optional
  explicit ``cancel()`` at an absolute virtual time (done by a helper task),
  and an optional shield, around one child node (same task);
* ``Nursery``: a nursery whose children each run in their own task.

Everything starts at virtual time 0 on ``MockClock(autojump_threshold=0)``
and every timed thing (leaf wake-up, deadline, explicit cancel) gets a
distinct time, so the outcome does not depend on how simultaneous events are
ordered. A small discrete-event oracle computes the expected outcome
independently of the kernel; the run uses a hypothesis-drawn schedule_seed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tether
from tether import lowlevel
from tether.testing import MockClock

INF = math.inf
SLOTS = 10
DENOM = 128  # times are slot + k/DENOM: exact in binary floating point


class LeafError(Exception):
    def __init__(self, leaf_id):
        super().__init__(leaf_id)
        self.leaf_id = leaf_id


# ---- program model


@dataclass(eq=False)
class Leaf:
    slot: int
    raises: bool
    id: int = -1
    t: float = 0.0
    parent: object = None


@dataclass(eq=False)
class Scope:
    deadline_slot: int | None
    cancel_slot: int | None
    shield: bool
    child: object
    id: int = -1
    deadline: float = INF
    cancel_at: float = INF
    parent: object = None


@dataclass(eq=False)
class Nursery:
    children: list
    id: int = -1
    parent: object = None


leaves = st.builds(Leaf, slot=st.integers(0, SLOTS), raises=st.booleans())


def _extend(children):
    slot = st.none() | st.integers(0, SLOTS)
    return st.one_of(
        st.builds(
            Scope, deadline_slot=slot, cancel_slot=slot, shield=st.booleans(), child=children
        ),
        st.builds(Nursery, children=st.lists(children, min_size=0, max_size=3)),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)
# bias toward bigger programs: often a root nursery with several subtrees
programs = st.one_of(trees, st.builds(Nursery, children=st.lists(trees, min_size=2, max_size=4)))


def finalize(spec):
    """Copy the drawn tree into fresh nodes with ids, parents and unique times."""
    ids = itertools.count()
    fracs = itertools.count(1)

    def unique(slot):
        return slot + next(fracs) / DENOM

    def copy(node, parent):
        if isinstance(node, Leaf):
            new = Leaf(node.slot, node.raises, id=next(ids), parent=parent)
            new.t = unique(node.slot)
        elif isinstance(node, Scope):
            new = Scope(node.deadline_slot, node.cancel_slot, node.shield, None, id=next(ids))
            new.parent = parent
            if node.deadline_slot is not None:
                new.deadline = unique(node.deadline_slot)
            if node.cancel_slot is not None:
                new.cancel_at = unique(node.cancel_slot)
            new.child = copy(node.child, new)
        else:
            new = Nursery([], id=next(ids), parent=parent)
            new.children = [copy(c, new) for c in node.children]
        return new

    root = copy(spec, None)
    used = next(fracs) - 1
    return root, used


def walk(node):
    yield node
    if isinstance(node, Scope):
        yield from walk(node.child)
    elif isinstance(node, Nursery):
        for child in node.children:
            yield from walk(child)


def visible_chain(node, include_self):
    """Scopes whose cancellation reaches ``node``: up to and including the
    first shielded scope. Scopes are keyed ('s', id) / ('n', id)."""
    chain = []
    current = node if include_self else node.parent
    while current is not None:
        if isinstance(current, Scope):
            chain.append(("s", current.id))
            if current.shield:
                break
        elif isinstance(current, Nursery):
            chain.append(("n", current.id))
        current = current.parent
    return chain


# ---- oracle


@dataclass
class Expected:
    leaf: dict = field(default_factory=dict)  # id -> (kind, time)
    eff_deadline: dict = field(default_factory=dict)  # leaf id -> deadline
    finish: dict = field(default_factory=dict)  # node id -> time
    errors: dict = field(default_factory=dict)  # node id -> frozenset of leaf ids
    scope_cancel_called: dict = field(default_factory=dict)  # scope id -> bool


def oracle(root):
    nodes = list(walk(root))
    leaf_nodes = [n for n in nodes if isinstance(n, Leaf)]
    cancel_time = {}
    for n in nodes:
        if isinstance(n, Scope):
            cancel_time[("s", n.id)] = min(n.deadline, n.cancel_at)
        elif isinstance(n, Nursery):
            cancel_time[("n", n.id)] = INF
    chains = {leaf.id: visible_chain(leaf, include_self=False) for leaf in leaf_nodes}
    exp = Expected()

    def eff(leaf):
        return min((cancel_time[k] for k in chains[leaf.id]), default=INF)

    def done(node):
        return all(leaf.id in exp.leaf for leaf in walk(node) if isinstance(leaf, Leaf))

    def finish(node):
        return max((exp.leaf[x.id][1] for x in walk(node) if isinstance(x, Leaf)), default=0.0)

    def errors(node):
        return frozenset(
            x.id for x in walk(node) if isinstance(x, Leaf) and exp.leaf[x.id][0] == "raised"
        )

    pending = set(leaf_nodes)
    while pending:
        now = min(min(leaf.t, eff(leaf)) for leaf in pending)
        # the one primary event at `now`, then the same-tick cascade:
        # errors cancel their nursery, which cancels more leaves, ...
        changed = True
        while changed:
            changed = False
            for leaf in list(pending):
                e = eff(leaf)
                if leaf.t == now and leaf.t < e:
                    exp.leaf[leaf.id] = ("raised" if leaf.raises else "ok", now)
                elif e == now:
                    exp.leaf[leaf.id] = ("cancelled", now)
                else:
                    continue
                pending.discard(leaf)
                changed = True
            for n in nodes:
                if isinstance(n, Nursery) and cancel_time[("n", n.id)] == INF:
                    for child in n.children:
                        if done(child) and errors(child):
                            cancel_time[("n", n.id)] = finish(child)
                            assert finish(child) == now
                            changed = True
                            break

    for n in nodes:
        exp.finish[n.id] = finish(n)
        exp.errors[n.id] = errors(n)
        if isinstance(n, Leaf):
            exp.eff_deadline[n.id] = min(
                (x.deadline for x in _scope_nodes(n) if isinstance(x, Scope)),
                default=INF,
            )
        elif isinstance(n, Scope):
            exp.scope_cancel_called[n.id] = min(n.deadline, n.cancel_at) <= exp.finish[n.id]
    return exp


def _scope_nodes(leaf):
    by_key = {}
    for node in _ancestors(leaf):
        by_key[("s" if isinstance(node, Scope) else "n", node.id)] = node
    return [by_key[k] for k in visible_chain(leaf, include_self=False)]


def _ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


# ---- running a program


def contains_cancelled(exc):
    if exc is None:
        return False
    if isinstance(exc, tether.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(contains_cancelled(e) for e in exc.exceptions)
    return False


def leaves_of(exc):
    """Every non-group exception in an exception tree (with repeats)."""
    if exc is None:
        return []
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in leaves_of(e)]
    return [exc]


class Runtime:
    def __init__(self, root):
        self.root = root
        self.nodes = list(walk(root))
        self.seq = itertools.count()
        self.scopes = {}
        self.nurseries = {}
        self.leaf = {}
        self.eff_deadline = {}
        self.raised = []
        self.task_finish = {}  # node id -> (time, seq)
        self.exits = {}  # node id -> dict
        self.violations = []
        self.trace = []

    def live_scope(self, key):
        kind, node_id = key
        if kind == "s":
            return self.scopes[node_id]
        return self.nurseries[node_id].cancel_scope

    def outer_cancel_visible(self, node):
        chain = [] if isinstance(node, Scope) and node.shield else visible_chain(node, False)
        return any(self.live_scope(k).cancel_called for k in chain)

    async def leaf_task(self, node):
        self.eff_deadline[node.id] = tether.current_effective_deadline()
        state = lowlevel.current_stepping_state()
        try:
            await tether.sleep_until(node.t)
        except tether.Cancelled:
            # The run's count of cancelled scopes is never low (channels
            # skip their cancel check when it is 0).
            if not state.cancelled_statuses:
                self.violations.append(f"leaf {node.id}: cancelled with a count of 0")
            self.leaf[node.id] = ("cancelled", tether.current_time())
            self.trace.append(("cancelled", node.id, tether.current_time()))
            raise
        if node.raises:
            self.leaf[node.id] = ("raised", tether.current_time())
            self.raised.append(node.id)
            self.trace.append(("raised", node.id, tether.current_time()))
            raise LeafError(node.id)
        if state.cancel_pending() and not state.cancelled_statuses:
            self.violations.append(f"leaf {node.id}: cancel pending with a count of 0")
        self.leaf[node.id] = ("ok", tether.current_time())
        self.trace.append(("ok", node.id, tether.current_time()))

    async def run_node(self, node):
        if isinstance(node, Leaf):
            await self.leaf_task(node)
        elif isinstance(node, Scope):
            await self.scope_node(node)
        else:
            await self.nursery_node(node)

    async def scope_node(self, node):
        cs = self.scopes[node.id]
        escaped = None
        try:
            with cs:
                await self.run_node(node.child)
        except BaseException as exc:
            escaped = exc
            raise
        finally:
            info = {
                "time": tether.current_time(),
                "cancel_called": cs.cancel_called,
                "cancelled_caught": cs.cancelled_caught,
                "escaped": escaped,
            }
            self.exits[node.id] = info
            self.trace.append(("scope-exit", node.id, info["time"]))
            if cs.cancelled_caught and not cs.cancel_called:
                self.violations.append(f"scope {node.id}: caught without cancel_called")
            if contains_cancelled(escaped):
                if cs.cancelled_caught:
                    self.violations.append(f"scope {node.id}: caught Cancelled yet it escaped")
                if not self.outer_cancel_visible(node):
                    self.violations.append(
                        f"scope {node.id}: Cancelled escaped with no cancelled outer scope"
                    )

    async def nursery_node(self, node):
        escaped = None
        try:
            async with tether.open_nursery() as nursery:
                self.nurseries[node.id] = nursery
                for child in node.children:
                    nursery.start_soon(self.task_root, child)
        except BaseException as exc:
            escaped = exc
            raise
        finally:
            info = {
                "time": tether.current_time(),
                "seq": next(self.seq),
                "escaped": escaped,
                "children_left": len(nursery.child_tasks),
            }
            self.exits[node.id] = info
            self.trace.append(("nursery-exit", node.id, info["time"]))
            if contains_cancelled(escaped) and not self.outer_cancel_visible(node):
                self.violations.append(
                    f"nursery {node.id}: Cancelled escaped with no cancelled outer scope"
                )

    async def task_root(self, node):
        try:
            await self.run_node(node)
        finally:
            self.task_finish[node.id] = (tether.current_time(), next(self.seq))

    async def canceller(self, node):
        await tether.sleep_until(node.cancel_at)
        self.trace.append(("cancel", node.id, tether.current_time()))
        self.scopes[node.id].cancel()

    async def main(self):
        for node in self.nodes:
            if isinstance(node, Scope):
                self.scopes[node.id] = tether.CancelScope(
                    deadline=node.deadline, shield=node.shield
                )
        try:
            async with tether.open_nursery() as helpers:
                for node in self.nodes:
                    if isinstance(node, Scope) and node.cancel_at < INF:
                        helpers.start_soon(self.canceller, node)
                try:
                    await self.run_node(self.root)
                finally:
                    helpers.cancel_scope.cancel()
        finally:
            # Every scope is closed: the count is back to 0.
            if lowlevel.current_stepping_state().cancelled_statuses:
                self.violations.append("cancelled scopes still counted at the end")
        return "completed"


def execute(root, seed):
    rt = Runtime(root)
    try:
        result = tether.run(rt.main, clock=MockClock(autojump_threshold=0), schedule_seed=seed)
        final = None
        assert result == "completed"
    except BaseException as exc:  # the program's errors, as an exception tree
        final = exc
    return rt, final


# ---- the properties


seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=programs, seed=seeds)
def test_random_cancellation_trees_match_oracle(spec, seed):
    root, used = finalize(spec)
    assume(used < DENOM)
    exp = oracle(root)
    rt, final = execute(root, seed)

    # Cancelled never escapes tether.run, and nothing but our errors comes out
    assert not isinstance(final, tether.Cancelled)
    assert not contains_cancelled(final)
    assert rt.violations == []
    final_leaves = leaves_of(final)
    assert all(isinstance(e, LeafError) for e in final_leaves), final_leaves

    # every leaf behaves as the oracle says, at the virtual time it says:
    # deadlines and explicit cancels fire exactly at their time, shielded
    # leaves are not cancelled by outer scopes, errors cancel their nursery
    assert rt.leaf == exp.leaf
    assert rt.eff_deadline == exp.eff_deadline

    # no child error is lost, none is duplicated
    raised_ids = sorted(rt.raised)
    assert sorted(e.leaf_id for e in final_leaves) == raised_ids
    assert set(raised_ids) == exp.errors[root.id]
    if not exp.errors[root.id]:
        assert final is None

    for node in rt.nodes:
        if isinstance(node, Nursery):
            info = rt.exits[node.id]
            # a nursery never exits before its children finished
            assert info["children_left"] == 0
            for child in node.children:
                assert rt.task_finish[child.id][1] < info["seq"]
                assert rt.task_finish[child.id][0] <= info["time"]
            assert info["time"] == exp.finish[node.id]
            # strict exception groups carrying exactly this subtree's errors
            errs = exp.errors[node.id]
            escaped = info["escaped"]
            if errs:
                assert isinstance(escaped, BaseExceptionGroup)
                got = [e for e in leaves_of(escaped) if not isinstance(e, tether.Cancelled)]
                assert sorted(e.leaf_id for e in got) == sorted(errs)
            else:
                assert escaped is None or not [
                    e for e in leaves_of(escaped) if not isinstance(e, tether.Cancelled)
                ]
        elif isinstance(node, Scope):
            info = rt.exits[node.id]
            assert info["time"] == exp.finish[node.id]
            # a scope is cancelled by its own deadline/cancel() only: outer
            # cancellation never sets cancel_called, shielded or not
            assert info["cancel_called"] == exp.scope_cancel_called[node.id], node.id
            if node.shield:
                assert not contains_cancelled(info["escaped"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=programs, seed=seeds)
def test_same_seed_replays_same_interleaving(spec, seed):
    root, used = finalize(spec)
    assume(used < DENOM)
    first, _ = execute(root, seed)
    second, _ = execute(root, seed)
    assert first.trace == second.trace

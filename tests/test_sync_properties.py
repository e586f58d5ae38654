"""Property tests for channels, locks, semaphores and capacity limiters.

Each example is a few worker tasks running random scripts of operations on a
shared primitive, every blocking operation under a random timeout (0 means
"already cancelled"), on `MockClock(autojump_threshold=0)` with a
hypothesis-drawn ``schedule_seed``. What is checked:

* channels: no value is received twice; only values whose send returned are
  received; every such value is received, except those discarded from the
  buffer when the last receive handle closed; each receiver sees each
  sender's values in send order; every operation ends in a documented
  outcome, and the channel ends in the documented errors
  (`EndOfChannel`, `BrokenResourceError`, `ClosedResourceError`);
* locks: never held by two tasks, and the lock's owner is the task inside;
* semaphores: the value stays within ``[0, max_value]`` and the number of
  holders never exceeds the units that exist;
* capacity limiters: never more borrowers than tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

import tether
from tether.testing import MockClock

EXAMPLES = settings(max_examples=150, deadline=None)
# The channel has the most states to reach (a close racing a blocked task,
# a nowait call meeting a parked task): give it more examples.
CHANNEL_EXAMPLES = settings(max_examples=600, deadline=None)

timeouts = st.sampled_from([0, 0.5, 1, 1.5, 3, 7, 20])
sleeps = st.sampled_from([0, 0.5, 1, 2, 4])
handle_index = st.integers(0, 5)


def run_mock(async_fn, seed):
    return tether.run(async_fn, clock=MockClock(autojump_threshold=0), schedule_seed=seed)


# ---------------------------------------------------------------------------
# Channels

channel_op = st.one_of(
    st.tuples(st.just("send"), handle_index, timeouts),
    st.tuples(st.just("send"), handle_index, timeouts),
    st.tuples(st.just("send"), handle_index, timeouts),
    st.tuples(st.just("receive"), handle_index, timeouts),
    st.tuples(st.just("receive"), handle_index, timeouts),
    st.tuples(st.just("receive"), handle_index, timeouts),
    st.tuples(st.just("send_nowait"), handle_index),
    st.tuples(st.just("receive_nowait"), handle_index),
    st.tuples(st.just("receive_nowait"), handle_index),
    st.tuples(st.just("sleep"), sleeps),
    st.tuples(st.just("clone_send"), handle_index),
    st.tuples(st.just("clone_receive"), handle_index),
    st.tuples(st.just("clone_receive"), handle_index),
    st.tuples(st.just("close_send"), handle_index, st.booleans()),
    st.tuples(st.just("close_receive"), handle_index, st.booleans()),
    st.tuples(st.just("close_receive"), handle_index, st.booleans()),
)


@dataclass
class ChannelLog:
    sent: set = field(default_factory=set)
    not_sent: set = field(default_factory=set)
    received: list = field(default_factory=list)
    # received values per receiving worker, in order
    received_by: dict = field(default_factory=dict)
    dropped: int = 0


@CHANNEL_EXAMPLES
@given(
    max_buffer_size=st.sampled_from([0, 1, 2, 3, math.inf]),
    scripts=st.lists(st.lists(channel_op, max_size=10), min_size=2, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_memory_channel_never_loses_or_duplicates(max_buffer_size, scripts, seed):
    log = ChannelLog()

    async def main():
        send, receive = tether.open_memory_channel(max_buffer_size)
        sends = [send]
        receives = [receive]
        stats = send.statistics
        closed = set()

        def close_receive(handle):
            # Closing the last receive handle discards the buffer; count it.
            was_open = handle not in closed
            before = stats()
            handle.close()
            closed.add(handle)
            if was_open and before.open_receive_channels == 1:
                assert stats().open_receive_channels == 0
                log.dropped += before.current_buffer_used
                assert stats().current_buffer_used == 0

        async def worker(worker_id, script):
            mine = log.received_by.setdefault(worker_id, [])
            seq = 0
            for op in script:
                kind = op[0]
                if kind in ("send", "send_nowait"):
                    handle = sends[op[1] % len(sends)]
                    seq += 1
                    value = (worker_id, seq)
                    try:
                        if kind == "send":
                            with tether.move_on_after(op[2]) as scope:
                                await handle.send(value)
                        else:
                            handle.send_nowait(value)
                    except tether.WouldBlock:
                        assert kind == "send_nowait"
                        log.not_sent.add(value)
                    except tether.ClosedResourceError:
                        log.not_sent.add(value)
                    except tether.BrokenResourceError:
                        assert stats().open_receive_channels == 0
                        log.not_sent.add(value)
                    else:
                        if kind == "send" and scope.cancelled_caught:
                            log.not_sent.add(value)
                        else:
                            log.sent.add(value)
                elif kind in ("receive", "receive_nowait"):
                    handle = receives[op[1] % len(receives)]
                    try:
                        if kind == "receive":
                            value = None
                            with tether.move_on_after(op[2]) as scope:
                                value = await handle.receive()
                        else:
                            value = handle.receive_nowait()
                    except tether.WouldBlock:
                        assert kind == "receive_nowait"
                    except tether.ClosedResourceError:
                        pass
                    except tether.EndOfChannel:
                        now = stats()
                        assert now.open_send_channels == 0
                        assert now.current_buffer_used == 0
                    else:
                        if kind == "receive_nowait" or not scope.cancelled_caught:
                            log.received.append(value)
                            mine.append(value)
                elif kind == "sleep":
                    await tether.sleep(op[1])
                elif kind == "clone_send":
                    try:
                        sends.append(sends[op[1] % len(sends)].clone())
                    except tether.ClosedResourceError:
                        pass
                elif kind == "clone_receive":
                    try:
                        receives.append(receives[op[1] % len(receives)].clone())
                    except tether.ClosedResourceError:
                        pass
                elif kind == "close_send":
                    handle = sends[op[1] % len(sends)]
                    closed.add(handle)
                    if op[2]:
                        await handle.aclose()
                    else:
                        handle.close()
                else:
                    assert kind == "close_receive"
                    close_receive(receives[op[1] % len(receives)])
                # Between operations the channel is consistent.
                now = stats()
                assert 0 <= now.current_buffer_used <= max_buffer_size
                assert not (now.tasks_waiting_send and now.tasks_waiting_receive)
                if now.tasks_waiting_send:
                    assert now.current_buffer_used == max_buffer_size

        async with tether.open_nursery() as nursery:
            for worker_id, script in enumerate(scripts):
                nursery.start_soon(worker, worker_id, script)

        # Every worker is done: nobody waits any more.
        final = stats()
        assert final.tasks_waiting_send == final.tasks_waiting_receive == 0

        # Drain what is left through any open receive handle.
        open_receives = [r for r in receives if r not in closed]
        open_sends = [s for s in sends if s not in closed]
        if open_receives:
            drain = open_receives[0]
            while True:
                try:
                    value = drain.receive_nowait()
                except tether.WouldBlock:
                    assert open_sends
                    break
                except tether.EndOfChannel:
                    assert not open_sends
                    break
                log.received.append(value)
                log.received_by.setdefault("drain", []).append(value)
        elif open_sends:
            for handle in open_sends:
                try:
                    await handle.send("late")
                except tether.BrokenResourceError:
                    pass
                else:  # pragma: no cover
                    raise AssertionError("send with no receivers did not raise")

        # Closing every send handle ends the channel for receivers...
        for handle in sends:
            handle.close()
        for handle in open_receives:
            try:
                await handle.receive()
            except tether.EndOfChannel:
                pass
            else:  # pragma: no cover
                raise AssertionError("receive after every sender closed did not end")
        # ...and every closed handle refuses to be used.
        for handle in receives:
            close_receive(handle)
            try:
                await handle.receive()
            except tether.ClosedResourceError:
                pass
            else:  # pragma: no cover
                raise AssertionError("receive on a closed handle did not raise")
        for handle in sends:
            try:
                await handle.send("x")
            except tether.ClosedResourceError:
                pass
            else:  # pragma: no cover
                raise AssertionError("send on a closed handle did not raise")

    run_mock(main, seed)

    received = log.received
    assert len(received) == len(set(received)), "a value was received twice"
    assert set(received) <= log.sent, "a value was received that was never sent"
    assert not (set(received) & log.not_sent)
    missing = log.sent - set(received)
    assert len(missing) == log.dropped, "a sent value was lost"
    for values in log.received_by.values():
        for worker_id in range(len(scripts)):
            seqs = [seq for (w, seq) in values if w == worker_id]
            assert seqs == sorted(seqs), "values from one sender arrived out of order"


# ---------------------------------------------------------------------------
# Locks

lock_op = st.one_of(
    st.tuples(st.just("hold"), sleeps, timeouts),
    st.tuples(st.just("hold"), sleeps, timeouts),
    st.tuples(st.just("nowait"), sleeps),
    st.tuples(st.just("sleep"), sleeps),
)


@EXAMPLES
@given(
    strict=st.booleans(),
    scripts=st.lists(st.lists(lock_op, max_size=8), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_lock_is_never_held_by_two_tasks(strict, scripts, seed):
    holders = []

    async def main():
        lock = tether.StrictFIFOLock() if strict else tether.Lock()

        async def inside(me, hold_for):
            assert holders == [], "two tasks hold the lock"
            assert lock.statistics().owner is me
            holders.append(me)
            try:
                await tether.sleep(hold_for)
                assert holders == [me]
                assert lock.statistics().owner is me
            finally:
                holders.remove(me)

        async def worker(script):
            me = tether.lowlevel.current_task()
            for op in script:
                if op[0] == "hold":
                    with tether.move_on_after(op[2]):
                        async with lock:
                            await inside(me, op[1])
                    assert lock.statistics().owner is not me
                elif op[0] == "nowait":
                    try:
                        lock.acquire_nowait()
                    except tether.WouldBlock:
                        assert lock.locked()
                    else:
                        try:
                            await inside(me, op[1])
                        finally:
                            lock.release()
                else:
                    await tether.sleep(op[1])

        async with tether.open_nursery() as nursery:
            for script in scripts:
                nursery.start_soon(worker, script)
        assert not lock.locked()
        assert lock.statistics().tasks_waiting == 0

    run_mock(main, seed)


# ---------------------------------------------------------------------------
# Semaphores

semaphore_op = st.one_of(
    st.tuples(st.just("hold"), sleeps, timeouts),
    st.tuples(st.just("hold"), sleeps, timeouts),
    st.tuples(st.just("nowait"), sleeps),
    st.tuples(
        st.just("release"),
    ),
    st.tuples(st.just("sleep"), sleeps),
)


@EXAMPLES
@given(
    initial=st.integers(0, 3),
    headroom=st.one_of(st.none(), st.integers(0, 2)),
    scripts=st.lists(st.lists(semaphore_op, max_size=8), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_semaphore_stays_within_bounds(initial, headroom, scripts, seed):
    max_value = None if headroom is None else initial + headroom
    # units: how many exist (initial + successful releases by non-holders);
    # holders: tasks between a successful acquire and their release.
    state = {"units": initial, "holders": 0}

    async def main():
        sem = tether.Semaphore(initial, max_value=max_value)

        def check():
            assert sem.value >= 0
            if max_value is not None:
                assert sem.value <= max_value
            assert state["holders"] <= state["units"]
            if sem.statistics().tasks_waiting:
                assert sem.value == 0

        async def held(hold_for):
            state["holders"] += 1
            check()
            try:
                await tether.sleep(hold_for)
            finally:
                state["holders"] -= 1
                try:
                    sem.release()
                except ValueError:
                    # Extra releases by non-holders already took the value
                    # to max_value: this unit cannot go back.
                    assert sem.value == max_value
                    state["units"] -= 1
                check()

        async def worker(script):
            for op in script:
                if op[0] == "hold":
                    with tether.move_on_after(op[2]):
                        await sem.acquire()
                        await held(op[1])
                elif op[0] == "nowait":
                    try:
                        sem.acquire_nowait()
                    except tether.WouldBlock:
                        assert sem.value == 0
                    else:
                        await held(op[1])
                elif op[0] == "release":
                    try:
                        sem.release()
                    except ValueError:
                        assert sem.value == max_value
                    else:
                        state["units"] += 1
                else:
                    await tether.sleep(op[1])
                check()

        async with tether.open_nursery() as nursery:
            for script in scripts:
                nursery.start_soon(worker, script)
        assert state["holders"] == 0
        assert sem.value == state["units"]
        assert sem.statistics().tasks_waiting == 0

    run_mock(main, seed)


# ---------------------------------------------------------------------------
# Capacity limiters


@EXAMPLES
@given(
    total=st.integers(0, 3),
    scripts=st.lists(st.lists(st.tuples(sleeps, timeouts), max_size=6), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_capacity_limiter_never_over_lends(total, scripts, seed):
    inside = set()

    async def main():
        limiter = tether.CapacityLimiter(total)

        async def worker(script):
            me = tether.lowlevel.current_task()
            for hold_for, timeout in script:
                with tether.move_on_after(timeout):
                    async with limiter:
                        inside.add(me)
                        assert len(inside) <= total
                        # Tokens handed to woken tasks that have not run
                        # yet are borrowed too.
                        assert len(inside) <= limiter.borrowed_tokens <= total
                        try:
                            await tether.sleep(hold_for)
                        finally:
                            inside.discard(me)

        async with tether.open_nursery() as nursery:
            for script in scripts:
                nursery.start_soon(worker, script)
        assert limiter.borrowed_tokens == 0
        assert limiter.statistics().tasks_waiting == 0

    run_mock(main, seed)

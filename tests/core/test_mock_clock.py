"""tether.testing.MockClock and wait_all_tasks_blocked."""

import math
import time

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def test_defaults_and_validation():
    clock = MockClock()
    assert clock.rate == 0
    assert clock.autojump_threshold == math.inf
    with pytest.raises(ValueError):
        clock.rate = -1
    with pytest.raises(ValueError):
        clock.jump(-1)
    clock.rate = 2.5
    assert clock.rate == 2.5
    clock.autojump_threshold = 0.5
    assert clock.autojump_threshold == 0.5
    assert MockClock(rate=3, autojump_threshold=1).rate == 3


def test_nan_is_refused_everywhere():
    clock = MockClock()
    for set_bad in (
        lambda: setattr(clock, "rate", math.nan),
        lambda: setattr(clock, "autojump_threshold", math.nan),
        lambda: clock.jump(math.nan),
        lambda: MockClock(rate=math.nan),
    ):
        with pytest.raises(ValueError, match="must be a number >= 0"):
            set_bad()
    assert (clock.rate, clock.autojump_threshold, clock.current_time()) == (0, math.inf, 0)


def test_deadline_to_sleep_time_while_time_stands_still():
    clock = MockClock()
    clock.jump(5)
    assert clock.deadline_to_sleep_time(4) == 0
    assert clock.deadline_to_sleep_time(5) == 0
    # No amount of real waiting reaches a later deadline at rate 0.
    assert clock.deadline_to_sleep_time(5.001) > 1e6


def test_time_starts_at_zero_and_only_moves_by_jump():
    clock = MockClock()
    assert clock.current_time() == 0.0
    clock.jump(2.5)
    assert clock.current_time() == 2.5
    clock.jump(0)
    assert clock.current_time() == 2.5


def test_positive_rate_follows_real_time():
    clock = MockClock(rate=10_000)
    t0 = clock.current_time()
    start = time.perf_counter()
    while time.perf_counter() - start < 0.002:
        pass
    t1 = clock.current_time()
    assert t1 - t0 >= 10


def test_jump_inside_run_wakes_sleepers():
    clock = MockClock()
    log = []

    async def sleeper():
        await tether.sleep(10)
        log.append(tether.current_time())

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await wait_all_tasks_blocked()
            clock.jump(4)
            await wait_all_tasks_blocked()
            assert log == []
            clock.jump(6)

    tether.run(main, clock=clock)
    assert log == [10.0]


class IOWaitRecorder(tether.abc.Instrument):
    def __init__(self):
        self.timeouts = []

    def before_io_wait(self, timeout):
        self.timeouts.append(timeout)


def test_autojump_zero_makes_long_sleeps_instant():
    clock = MockClock(autojump_threshold=0)

    async def main():
        await tether.sleep(1e6)
        return tether.current_time()

    recorder = IOWaitRecorder()
    assert tether.run(main, clock=clock, instruments=[recorder]) == 1e6
    # Instant: the run loop never waited for real time to pass (a wait of
    # zero only polls for I/O).
    assert recorder.timeouts
    assert max(recorder.timeouts) == 0, recorder.timeouts


def test_autojump_only_when_all_tasks_blocked():
    clock = MockClock(autojump_threshold=0)
    seen = []

    async def busy():
        for _ in range(100):
            seen.append(tether.current_time())
            await lowlevel.checkpoint()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(busy)
            await tether.sleep(1)
            seen.append(("main woke", tether.current_time()))

    tether.run(main, clock=clock)
    assert seen[:100] == [0.0] * 100
    assert seen[100] == ("main woke", 1.0)


def test_setting_autojump_threshold_during_run():
    clock = MockClock()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep, 30)
            await wait_all_tasks_blocked()
            clock.autojump_threshold = 0
        return tether.current_time()

    assert tether.run(main, clock=clock) == 30.0


def test_small_positive_autojump_threshold():
    clock = MockClock(autojump_threshold=0.001)

    async def main():
        await tether.sleep(100)
        return tether.current_time()

    assert tether.run(main, clock=clock) == 100.0


def test_autojump_with_no_deadline_does_not_spin():
    clock = MockClock(autojump_threshold=0)

    async def main():
        event = tether.Event()
        lowlevel.current_tether_token().run_sync_soon(event.set)
        await event.wait()
        return tether.current_time()

    assert tether.run(main, clock=clock) == 0.0


# ---- wait_all_tasks_blocked


def test_wait_all_tasks_blocked_waits_for_busy_tasks():
    progress = []

    async def worker():
        for i in range(20):
            progress.append(i)
            await lowlevel.checkpoint()
        await tether.sleep_forever()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(worker)
            nursery.start_soon(worker)
            await wait_all_tasks_blocked()
            assert len(progress) == 40
            nursery.cancel_scope.cancel()
        return "ok"

    assert tether.run(main) == "ok"


def test_wait_all_tasks_blocked_returns_when_only_waiter():
    async def main():
        await wait_all_tasks_blocked()
        await wait_all_tasks_blocked(0)
        return "ok"

    assert tether.run(main) == "ok"


def test_wait_all_tasks_blocked_is_cancellable():
    async def spinner():
        while True:
            await lowlevel.checkpoint()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(spinner)
            with tether.CancelScope() as cs:
                cs.cancel()
                await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return cs.cancelled_caught

    assert tether.run(main) is True


def test_wait_all_tasks_blocked_with_cushion():
    log = []

    async def late_waker(event):
        await event.wait()
        log.append("woken")

    async def main():
        event = tether.Event()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(late_waker, event)
            await wait_all_tasks_blocked(cushion=0.001)
            assert log == []
            event.set()
            await wait_all_tasks_blocked()
            assert log == ["woken"]
        return "ok"

    assert tether.run(main) == "ok"

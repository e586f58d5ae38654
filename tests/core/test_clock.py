"""The clock protocol (`tether.abc.Clock`): the required methods, and the
optional autojump hook a clock with virtual time implements."""

import math
import threading

import tether
from tether import lowlevel
from tether.abc import Clock
from tether.testing import MockClock


class VirtualClock(Clock):
    """A clock of the test's own (not MockClock): time stands still unless
    the run loop asks it to autojump."""

    def __init__(self, autojump_threshold: float = 0.0) -> None:
        self.now = 0.0
        self.autojump_threshold = autojump_threshold
        self.autojumps = 0

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self.now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        # Time does not move by itself: never worth sleeping for a deadline.
        return 0.0 if deadline <= self.now else 3600.0

    def autojump(self) -> None:
        self.autojumps += 1
        self.now += lowlevel.current_statistics().seconds_to_next_deadline


class PlainClock(Clock):
    """Only the required methods."""

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return 0.0

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline


def test_the_optional_members_default_to_never():
    clock = PlainClock()
    assert clock.autojump_threshold == math.inf
    clock.autojump()  # does nothing
    assert clock.current_time() == 0.0


def test_an_idle_run_asks_the_clock_to_autojump_to_the_next_deadline():
    clock = VirtualClock()

    async def main():
        await tether.sleep(1000)
        with tether.move_on_after(5) as scope:
            await tether.sleep_forever()
        assert scope.cancelled_caught
        return tether.current_time()

    assert tether.run(main, clock=clock) == 1005.0
    assert clock.autojumps == 2


def test_no_autojump_without_a_deadline_to_jump_to():
    # Every task waits for another thread, no scope has a deadline: the
    # loop sleeps instead of asking the clock.
    clock = VirtualClock()

    async def main():
        token = lowlevel.current_tether_token()
        done = tether.Event()
        thread = threading.Thread(target=token.run_sync_soon, args=(done.set,))
        thread.start()
        await done.wait()
        thread.join()

    tether.run(main, clock=clock)
    assert clock.autojumps == 0


def test_a_threshold_of_inf_turns_autojumping_off():
    clock = VirtualClock(autojump_threshold=math.inf)

    async def main():
        # The clock never moves: a deadline can only pass if someone moves it.
        with tether.move_on_at(10) as scope:
            token = lowlevel.current_tether_token()

            def move_time() -> None:
                clock.now = 10.0

            thread = threading.Thread(target=token.run_sync_soon, args=(move_time,))
            thread.start()
            await tether.sleep_forever()
        thread.join()
        assert scope.cancelled_caught

    tether.run(main, clock=clock)
    assert clock.autojumps == 0


def test_mock_clock_implements_the_public_autojump_hook():
    # MockClock is a clock like any other: the run loop calls its public
    # hook, which jumps to the nearest deadline.
    clock = MockClock(autojump_threshold=0)
    assert type(clock).autojump is not Clock.autojump

    async def main():
        with tether.move_on_after(7):
            await tether.sleep_forever()
        before = tether.current_time()
        with tether.CancelScope(deadline=before + 3):
            clock.autojump()  # by hand: jumps to this scope's deadline
            return before, tether.current_time()

    assert tether.run(main, clock=clock) == (7.0, 10.0)

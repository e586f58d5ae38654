"""tether.Event."""

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn):
    return tether.run(async_fn, clock=MockClock(autojump_threshold=0))


def test_event_initial_state_and_bool_is_error():
    event = tether.Event()
    assert not event.is_set()
    with pytest.raises(NotImplementedError, match="is_set"):
        bool(event)
    assert event.statistics().tasks_waiting == 0


def test_set_is_idempotent():
    async def main():
        event = tether.Event()
        event.set()
        event.set()
        assert event.is_set()
        await event.wait()
        return "ok"

    assert tether.run(main) == "ok"


def test_wait_blocks_until_set_and_wakes_all():
    log = []

    async def waiter(event, i):
        await event.wait()
        log.append((i, tether.current_time()))

    async def main():
        event = tether.Event()
        async with tether.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(waiter, event, i)
            await wait_all_tasks_blocked()
            assert event.statistics().tasks_waiting == 3
            await tether.sleep(4)
            assert log == []
            event.set()
            assert event.is_set()
        assert event.statistics().tasks_waiting == 0

    run_mock(main)
    assert sorted(log) == [(0, 4.0), (1, 4.0), (2, 4.0)]


def test_wait_on_set_event_is_still_a_checkpoint():
    async def main():
        event = tether.Event()
        event.set()
        with tether.CancelScope() as cs:
            cs.cancel()
            await event.wait()
            raise AssertionError("not reached")  # pragma: no cover
        return cs.cancelled_caught

    assert tether.run(main) is True


def test_wait_on_set_event_yields_to_others():
    log = []

    async def other():
        log.append("other ran")

    async def main():
        event = tether.Event()
        event.set()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(other)
            for _ in range(5):
                await event.wait()
            log.append("main after waits")

    tether.run(main)
    assert log == ["other ran", "main after waits"]


def test_wait_is_cancellable_and_updates_statistics():
    async def main():
        event = tether.Event()
        with tether.move_on_after(2) as cs:
            await event.wait()
        assert event.statistics().tasks_waiting == 0
        assert not event.is_set()
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 2.0)


def test_event_set_from_run_sync_soon():
    async def main():
        event = tether.Event()
        lowlevel.current_tether_token().run_sync_soon(event.set)
        await event.wait()
        return event.is_set()

    assert tether.run(main) is True


def test_wait_decides_when_awaited_not_when_called():
    # The awaitable returned by wait() looks at the flag when the wait
    # starts: one created before set() must not block after it.
    async def main():
        event = tether.Event()
        pending = event.wait()
        event.set()
        with tether.fail_after(1):
            await pending
        return "did not hang"

    assert tether.run(main, clock=MockClock(autojump_threshold=0)) == "did not hang"

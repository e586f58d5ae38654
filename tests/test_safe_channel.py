"""tether.as_safe_channel: an async generator run as a task behind a channel."""

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn, *args):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0))


def test_values_arrive_in_order_and_exhaustion_ends_the_loop():
    @tether.as_safe_channel
    async def countdown(start, *, step=1):
        for n in range(start, 0, -step):
            await lowlevel.checkpoint()
            yield n

    async def main():
        async with countdown(6, step=2) as channel:
            return [n async for n in channel]

    assert run_mock(main) == [6, 4, 2]
    assert countdown.__name__ == "countdown"


def test_the_generator_runs_only_when_a_value_is_asked_for():
    steps = []

    @tether.as_safe_channel
    async def producer():
        for n in range(3):
            steps.append(f"make {n}")
            yield n

    async def main():
        async with producer() as channel:
            await wait_all_tasks_blocked()
            assert steps == []
            assert await channel.receive() == 0
            await wait_all_tasks_blocked()
            # No value is made ahead of the next request.
            assert steps == ["make 0"]
            assert await channel.receive() == 1
            await wait_all_tasks_blocked()
            assert steps == ["make 0", "make 1"]

    run_mock(main)


def test_a_value_asked_for_by_a_cancelled_receive_serves_the_next_one():
    steps = []
    gate = None

    @tether.as_safe_channel
    async def gated():
        for n in range(3):
            await gate.wait()
            steps.append(f"make {n}")
            yield n

    async def main():
        nonlocal gate
        gate = tether.Event()
        async with gated() as channel:
            with tether.move_on_after(1):
                await channel.receive()
            # The producer had already started on value 0 for that receive.
            gate.set()
            await wait_all_tasks_blocked()
            assert steps == ["make 0"]
            assert await channel.receive() == 0
            await wait_all_tasks_blocked()
            # Value 0 answered this receive's request: nothing more is made.
            assert steps == ["make 0"]
            assert await channel.receive() == 1
            assert steps == ["make 0", "make 1"]

    run_mock(main)


def test_a_request_withdrawn_before_the_producer_takes_it_is_not_served():
    steps = []
    proceed = None

    @tether.as_safe_channel
    async def producer():
        for n in range(3):
            steps.append(f"make {n}")
            await proceed.wait()
            yield n

    async def main():
        nonlocal proceed
        proceed = tether.Event()
        async with producer() as channel:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(channel.receive)
                await wait_all_tasks_blocked()
                assert steps == ["make 0"]
                # A second request while the producer is busy, then withdrawn.
                with tether.CancelScope() as scope:
                    scope.cancel()
                    await channel.receive()
                proceed.set()
            await wait_all_tasks_blocked()
            # Value 0 went to the first receive; value 1 was never asked for.
            assert steps == ["make 0"]

    run_mock(main)


def test_an_error_in_the_generator_ends_iteration_and_is_raised_as_itself():
    @tether.as_safe_channel
    async def failing():
        yield "first"
        raise KeyError("from the generator")

    async def main():
        received = []
        with pytest.raises(KeyError, match="from the generator") as info:
            async with failing() as channel:
                async for value in channel:
                    received.append(value)
                received.append("loop ended")
        assert received == ["first", "loop ended"]
        # Not wrapped in, nor chained to, the internal nursery's group.
        assert not isinstance(info.value.__context__, BaseExceptionGroup)

    run_mock(main)


def test_leaving_early_closes_the_generator_before_the_block_exit_returns():
    events = []

    @tether.as_safe_channel
    async def resource():
        try:
            yield 1
            yield 2  # pragma: no cover
        finally:
            events.append("generator cleaned up")

    async def main():
        async with resource() as channel:
            async for value in channel:
                events.append(f"got {value}")
                break
        events.append("after the block")

    run_mock(main)
    assert events == ["got 1", "generator cleaned up", "after the block"]


def test_errors_from_the_block_and_the_cleanup_are_raised_together():
    @tether.as_safe_channel
    async def bad_cleanup():
        try:
            yield 1
        finally:
            raise ValueError("cleanup failed")

    async def main():
        with pytest.RaisesGroup(
            pytest.RaisesExc(ValueError, match="cleanup failed"),
            pytest.RaisesExc(LookupError, match="block failed"),
        ) as info:
            async with bad_cleanup() as channel:
                await channel.receive()
                raise LookupError("block failed")
        assert any("unable to unwrap" in note for note in info.value.__notes__)

    run_mock(main)


def test_an_exception_group_from_the_block_is_passed_on_unchanged():
    @tether.as_safe_channel
    async def unused():
        raise AssertionError("never started")  # pragma: no cover
        yield  # pragma: no cover

    async def main():
        inner = ValueError("inner")
        with pytest.raises(ExceptionGroup) as info:
            async with unused():
                raise ExceptionGroup("mine", [inner])
        # Not unwrapped to the ValueError, and not wrapped in another group.
        assert info.value.message == "mine"
        assert info.value.exceptions == (inner,)

    run_mock(main)


def test_closing_the_channel_stops_the_generator():
    steps = []

    @tether.as_safe_channel
    async def endless():
        n = 0
        while True:
            steps.append(n)
            yield n
            n += 1

    async def main():
        async with endless() as channel:
            assert await channel.receive() == 0
            await channel.aclose()
            with pytest.raises(tether.ClosedResourceError):
                await channel.receive()
            await wait_all_tasks_blocked()
        assert steps == [0]

    run_mock(main)


def test_a_cancel_scope_inside_the_generator_does_not_leak_out():
    @tether.as_safe_channel
    async def cancels_itself():
        yield "before"
        with tether.CancelScope() as scope:
            scope.cancel()
            yield "inside a cancelled scope"

    async def main():
        async with cancels_itself() as channel:
            received = [value async for value in channel]
        return received

    # The value yielded inside the cancelled scope cannot be delivered (the
    # producer's send is cancelled), but nothing reaches the consumer's side.
    assert run_mock(main) == ["before"]


def test_cancelling_the_block_also_cancels_the_generator_cleanup():
    events = []

    @tether.as_safe_channel
    async def slow_cleanup():
        try:
            yield
        finally:
            try:
                await lowlevel.checkpoint()
            except tether.Cancelled:
                events.append("cleanup cancelled")
                raise

    async def main():
        with tether.CancelScope() as scope:
            async with slow_cleanup() as channel:
                await channel.receive()
                scope.cancel()
                await lowlevel.checkpoint()
        assert scope.cancelled_caught

    run_mock(main)
    assert events == ["cleanup cancelled"]


def test_several_receivers_share_the_values_in_order():
    @tether.as_safe_channel
    async def numbers():
        for n in range(4):
            yield n

    async def main():
        got = {}

        async def take(name, task_status):
            task_status.started()
            got[name] = await channel.receive()

        async with numbers() as channel, tether.open_nursery() as nursery:
            for name in "abcd":
                await nursery.start(take, name)
        assert got == {"a": 0, "b": 1, "c": 2, "d": 3}

    run_mock(main)


def test_a_generator_suspended_in_a_nursery_closes_cleanly():
    events = []

    async def child():
        try:
            await tether.sleep_forever()
        finally:
            events.append("child cancelled")

    @tether.as_safe_channel
    async def with_nursery():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)
            yield "value"

    async def main():
        async with with_nursery() as channel:
            async for value in channel:
                assert value == "value"
                break

    run_mock(main)
    assert events == ["child cancelled"]


def test_an_error_beside_the_generator_exit_is_kept():
    async def fail_when_cancelled():
        try:
            await tether.sleep_forever()
        finally:
            raise ValueError("child cleanup failed")

    @tether.as_safe_channel
    async def with_failing_child():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(fail_when_cancelled)
            yield

    async def main():
        with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="child cleanup failed")):
            async with with_failing_child() as channel:
                await channel.receive()

    run_mock(main)


def test_a_generator_exit_raised_by_the_generator_itself_is_reported():
    async def raise_generator_exit():
        try:
            await tether.sleep_forever()
        finally:
            raise GeneratorExit

    @tether.as_safe_channel
    async def with_bad_child():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(raise_generator_exit)
            yield

    async def main():
        with pytest.RaisesGroup(pytest.RaisesExc(AssertionError, match="GeneratorExit")):
            async with with_bad_child() as channel:
                await channel.receive()

    run_mock(main)

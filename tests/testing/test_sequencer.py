"""tether.testing.Sequencer."""

import pytest
from hypothesis import given, settings

import tether
from tether.testing import (
    Sequencer,
    assert_checkpoints,
    assert_no_checkpoints,
    schedules,
    wait_all_tasks_blocked,
)

pytestmark = pytest.mark.tether


async def run_two_workers(record):
    seq = Sequencer()

    async def first():
        async with seq(0):
            record.append("first 0")
        async with seq(3):
            record.append("first 3")

    async def second():
        async with seq(1):
            record.append("second 1")
            await tether.sleep(1)
        async with seq(2):
            record.append("second 2")

    async with tether.open_nursery() as nursery:
        # Started in the "wrong" order on purpose.
        nursery.start_soon(second)
        nursery.start_soon(first)


async def test_blocks_run_in_sequence_order(autojump_clock):
    record = []
    await run_two_workers(record)
    assert record == ["first 0", "second 1", "second 2", "first 3"]


@settings(max_examples=30, deadline=None)
@given(schedule=schedules())
async def test_order_holds_under_every_schedule(schedule):
    record = []
    await run_two_workers(record)
    assert record == ["first 0", "second 1", "second 2", "first 3"]


async def test_position_zero_does_not_wait_and_is_not_a_checkpoint():
    seq = Sequencer()
    with assert_no_checkpoints():
        async with seq(0):
            pass


async def test_later_positions_are_checkpoints():
    seq = Sequencer()
    async with seq(0):
        pass
    with assert_checkpoints():
        async with seq(1):
            pass


async def test_a_position_can_be_used_once():
    seq = Sequencer()
    async with seq(0):
        pass
    with pytest.raises(RuntimeError, match="already used"):
        async with seq(0):
            pass


@pytest.mark.parametrize("position", [-1, 1.5, "0"])
async def test_positions_are_non_negative_ints(position):
    with pytest.raises(ValueError, match="ints from 0"):
        async with Sequencer()(position):
            pass


async def test_cancelled_wait_breaks_the_sequence():
    seq = Sequencer()
    errors = {}
    cancel_first = tether.CancelScope()

    async def waiter(position, scope):
        with scope:
            try:
                async with seq(position):
                    pass
            except RuntimeError as exc:
                errors[position] = str(exc)

    async with tether.open_nursery() as nursery:
        nursery.start_soon(waiter, 1, cancel_first)
        nursery.start_soon(waiter, 2, tether.CancelScope())
        await wait_all_tasks_blocked()
        cancel_first.cancel()
    assert "cancelled while waiting for sequence position 1" in errors[1]
    assert "broken" in errors[2]
    with pytest.raises(RuntimeError, match="broken"):
        async with seq(0):
            pass

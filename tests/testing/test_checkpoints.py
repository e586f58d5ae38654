"""assert_checkpoints() and assert_no_checkpoints()."""

import sys
import types

import pytest

import tether
from tether import lowlevel
from tether.testing import assert_checkpoints, assert_no_checkpoints, wait_all_tasks_blocked

pytestmark = pytest.mark.tether


async def test_a_checkpoint_satisfies_assert_checkpoints():
    with assert_checkpoints():
        await lowlevel.checkpoint()
    with assert_checkpoints():
        await tether.sleep(0)


async def test_no_checkpoint_fails_assert_checkpoints():
    with pytest.raises(AssertionError, match="without a checkpoint"):
        with assert_checkpoints():
            pass


async def test_a_cancel_shielded_schedule_point_is_not_a_checkpoint():
    with pytest.raises(AssertionError, match="only at cancel-shielded schedule points"):
        with assert_checkpoints():
            await lowlevel.cancel_shielded_checkpoint()


async def test_blocking_in_a_parking_lot_or_wait_is_a_checkpoint(autojump_clock):
    event = tether.Event()

    async def set_later():
        await tether.sleep(1)
        event.set()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(set_later)
        with assert_checkpoints():
            await event.wait()  # parks in a ParkingLot
        with assert_checkpoints():
            await tether.sleep(1)  # wait_task_rescheduled


async def test_an_exception_in_the_block_propagates_without_assertion():
    with pytest.raises(KeyError):
        with assert_checkpoints():
            raise KeyError("x")


async def test_assert_no_checkpoints_passes_for_synchronous_code():
    event = tether.Event()
    with assert_no_checkpoints():
        event.set()
        assert event.is_set()


@pytest.mark.parametrize("trap", [lowlevel.checkpoint, lowlevel.cancel_shielded_checkpoint])
async def test_any_yield_fails_assert_no_checkpoints(trap):
    with pytest.raises(AssertionError, match="yielded to the scheduler 1 time"):
        with assert_no_checkpoints():
            await trap()


async def test_a_cancellation_check_alone_fails_assert_no_checkpoints():
    # It yields nothing when not cancelled, but the block could be
    # cancelled there: half a checkpoint is not "no checkpoint".
    with pytest.raises(AssertionError, match="checked for cancellation 1 time"):
        with assert_no_checkpoints():
            await lowlevel.checkpoint_if_cancelled()


async def test_assert_no_checkpoints_checks_even_when_the_block_raises():
    with pytest.raises(AssertionError, match="yielded") as excinfo:
        with assert_no_checkpoints():
            await lowlevel.checkpoint()
            raise KeyError("x")
    assert isinstance(excinfo.value.__context__, KeyError)


async def test_only_the_current_task_is_counted():
    async def busy():
        for _ in range(10):
            await lowlevel.checkpoint()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(busy)
        # The sibling checkpoints many times while this block yields; only
        # this task's own (cancel-shielded) yields count.
        with pytest.raises(AssertionError, match="cancel-shielded"):
            with assert_checkpoints():
                for _ in range(5):
                    await lowlevel.cancel_shielded_checkpoint()


async def test_blocks_nest():
    with assert_checkpoints():
        with assert_no_checkpoints():
            pass
        await lowlevel.checkpoint()


async def test_the_instrument_is_removed_after_the_block():
    with assert_checkpoints():
        await lowlevel.checkpoint()
    await wait_all_tasks_blocked()
    # With no instrument left, another block starts from zero.
    with pytest.raises(AssertionError):
        with assert_checkpoints():
            pass


def test_outside_a_task_is_an_error():
    with pytest.raises(RuntimeError, match="inside a tether task"):
        with assert_checkpoints():
            pass


async def test_a_cancel_check_then_a_shielded_schedule_point_is_a_checkpoint():
    # How primitives build a checkpoint (tether.Lock.acquire on a free lock).
    with assert_checkpoints():
        await lowlevel.checkpoint_if_cancelled()
        await lowlevel.cancel_shielded_checkpoint()
    lock = tether.Lock()
    with assert_checkpoints():
        await lock.acquire()
    with assert_no_checkpoints():
        lock.release()


async def test_a_cancel_check_alone_is_not_a_checkpoint():
    # Half a checkpoint satisfies neither assertion (the other half of this
    # is test_a_cancellation_check_alone_fails_assert_no_checkpoints).
    with pytest.raises(AssertionError, match="never yielded"):
        with assert_checkpoints():
            await lowlevel.checkpoint_if_cancelled()


async def test_other_tasks_cancel_checks_do_not_count():
    async def checks():
        for _ in range(5):
            await lowlevel.checkpoint_if_cancelled()
            await lowlevel.cancel_shielded_checkpoint()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(checks)
        with pytest.raises(AssertionError, match="cancel-shielded"):
            with assert_checkpoints():
                for _ in range(5):
                    await lowlevel.cancel_shielded_checkpoint()


async def test_blocks_in_two_tasks_can_overlap():
    profile_before = sys.getprofile()
    both_inside = tether.Event()
    entered = []

    async def checkpointing(name, other_first):
        with assert_checkpoints():
            entered.append(name)
            if len(entered) == 2:
                both_inside.set()
            await both_inside.wait()
            if other_first:
                await lowlevel.checkpoint()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(checkpointing, "a", False)
        nursery.start_soon(checkpointing, "b", True)
    assert sys.getprofile() is profile_before


@types.coroutine
def _shielded_yield_only():
    # A primitive that yields the schedule-point trap itself, with no cancel
    # check before it.
    yield lowlevel.CANCEL_SHIELDED_CHECKPOINT


@types.coroutine
def _cancel_pending_then_shielded_yield():
    # The pattern the fastest primitives use (see
    # lowlevel.SteppingState.cancel_pending).
    if lowlevel.current_stepping_state().cancel_pending():
        yield lowlevel.CHECKPOINT
    yield lowlevel.CANCEL_SHIELDED_CHECKPOINT


async def test_the_shielded_trap_yielded_directly_is_not_a_checkpoint():
    with pytest.raises(AssertionError, match="only at cancel-shielded schedule points"):
        with assert_checkpoints():
            await _shielded_yield_only()


async def test_asking_cancel_pending_then_yielding_the_shielded_trap_is_a_checkpoint():
    with assert_checkpoints():
        await _cancel_pending_then_shielded_yield()
    with pytest.raises(AssertionError, match="checked for cancellation 1 time"):
        with assert_no_checkpoints():
            lowlevel.current_stepping_state().cancel_pending()


async def test_memory_channel_operations_are_checkpoints():
    send, receive = tether.open_memory_channel(1)
    with assert_checkpoints():
        await send.send(1)
    with assert_checkpoints():
        await receive.receive()
    with assert_no_checkpoints():
        send.send_nowait(2)
        receive.receive_nowait()

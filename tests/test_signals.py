"""tether.open_signal_receiver, with real signals sent to this process."""

import os
import signal
import threading

import pytest

import tether
from tether import lowlevel, to_thread
from tether.testing import MockClock, wait_all_tasks_blocked

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs Unix signals"),
]

SIGNALS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP) if hasattr(signal, "SIGUSR1") else ()


@pytest.fixture(autouse=True)
def outer_handlers():
    """While each test runs, the three signals go to a recording handler
    instead of their default action (ending the process), so that a test
    failing half-way cannot kill the test run. Yields what it recorded."""
    received = []

    def record(signum, frame):
        received.append(signum)

    previous = {signum: signal.signal(signum, record) for signum in SIGNALS}
    yield received, record
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def run_mock(async_fn, *args):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0))


def kill(signum):
    os.kill(os.getpid(), signum)


async def let_callbacks_run():
    # The handler queues a run_sync_soon callback; give the loop a turn.
    await lowlevel.checkpoint()
    await lowlevel.checkpoint()


# ---------------------------------------------------------------- delivery


def test_receives_a_signal_sent_to_the_process(outer_handlers):
    outer, _ = outer_handlers

    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1) as receiver:
            kill(signal.SIGUSR1)
            async for signum in receiver:
                return signum

    assert run_mock(main) == signal.SIGUSR1
    assert outer == []  # the receiver took it, not the previous handler


def test_signals_arrive_in_order_and_duplicates_coalesce():
    async def main():
        with tether.open_signal_receiver(*SIGNALS) as receiver:
            for signum in (signal.SIGUSR2, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
                kill(signum)
            kill(signal.SIGUSR2)
            # One queued wake-up, however many signals arrived.
            assert lowlevel.current_statistics().run_sync_soon_queue_size == 1
            assert receiver.pending_count() == 3
            await let_callbacks_run()
            assert receiver.pending_count() == 3
            got = [await receiver.__anext__() for _ in range(3)]
            # Nothing else is pending: the next wait blocks until cancelled.
            with tether.move_on_after(10) as scope:
                await receiver.__anext__()
            assert scope.cancelled_caught
            return got

    assert run_mock(main) == [signal.SIGUSR2, signal.SIGUSR1, signal.SIGHUP]


def test_a_signal_taken_can_arrive_again():
    async def main():
        got = []
        with tether.open_signal_receiver(signal.SIGUSR1) as receiver:
            for _ in range(3):
                kill(signal.SIGUSR1)
                got.append(await receiver.__anext__())
        return got

    assert run_mock(main) == [signal.SIGUSR1] * 3


def test_blocked_iterator_is_woken_by_a_signal_from_another_thread():
    main_thread = threading.get_ident()

    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as receiver:
            got = []
            async with tether.open_nursery() as nursery:

                async def consume():
                    async for signum in receiver:
                        got.append(signum)
                        if len(got) == 2:
                            return

                nursery.start_soon(consume)
                await wait_all_tasks_blocked()
                # The run loop is blocked in its I/O wait; a thread sends each
                # signal, once directed at the main thread and once at the
                # process.
                await to_thread.run_sync(signal.pthread_kill, main_thread, signal.SIGUSR1)
                await wait_all_tasks_blocked()
                assert got == [signal.SIGUSR1]
                await to_thread.run_sync(kill, signal.SIGUSR2)
            return got

    assert tether.run(main) == [signal.SIGUSR1, signal.SIGUSR2]


def test_async_with_works_too():
    async def main():
        async with tether.open_signal_receiver(signal.SIGHUP) as receiver:
            kill(signal.SIGHUP)
            return await receiver.__anext__()

    assert run_mock(main) == signal.SIGHUP


# ---------------------------------------------------------------- handlers and exit


def test_handlers_are_installed_and_restored(outer_handlers):
    _, record = outer_handlers

    async def main():
        manager = tether.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2, signal.SIGUSR1)
        # Nothing happens before the block is entered.
        assert signal.getsignal(signal.SIGUSR1) is record
        with manager:
            inside = signal.getsignal(signal.SIGUSR1)
            assert inside is not record
            assert signal.getsignal(signal.SIGUSR2) is inside
            assert signal.getsignal(signal.SIGHUP) is record
        assert signal.getsignal(signal.SIGUSR1) is record
        assert signal.getsignal(signal.SIGUSR2) is record

    run_mock(main)


def test_handlers_restored_when_the_block_raises(outer_handlers):
    _, record = outer_handlers

    async def main():
        with pytest.raises(ZeroDivisionError):
            with tether.open_signal_receiver(signal.SIGUSR1):
                1 / 0  # noqa: B018
        assert signal.getsignal(signal.SIGUSR1) is record

    run_mock(main)


def test_pending_signals_are_redelivered_on_exit(outer_handlers):
    outer, _ = outer_handlers

    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as receiver:
            kill(signal.SIGUSR2)
            kill(signal.SIGUSR1)
            await let_callbacks_run()
            assert receiver.pending_count() == 2
            assert outer == []
        # Raised again once the previous handlers were back.
        assert outer == [signal.SIGUSR2, signal.SIGUSR1]
        with pytest.raises(RuntimeError, match="exited"):
            await receiver.__anext__()

    run_mock(main)


def test_signal_whose_wake_up_has_not_run_at_exit_is_redelivered_at_the_exit(outer_handlers):
    outer, _ = outer_handlers

    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1):
            # The handler ran, but the loop has not run its wake-up yet.
            kill(signal.SIGUSR1)
            assert lowlevel.current_statistics().run_sync_soon_queue_size == 1
        assert outer == [signal.SIGUSR1]
        # The late wake-up delivers nothing more.
        await let_callbacks_run()
        assert outer == [signal.SIGUSR1]

    run_mock(main)


def test_an_error_from_a_restored_handler_propagates_from_the_exit_and_the_run_goes_on():
    class FromHandler(Exception):
        pass

    def failing(signum, frame):
        raise FromHandler(signum)

    signal.signal(signal.SIGUSR1, failing)  # the fixture restores it
    signal.signal(signal.SIGUSR2, failing)

    async def main():
        with pytest.raises(FromHandler) as info:
            with tether.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2):
                # Both arrive with their wake-up not yet run: the late
                # wake-up must not raise them again inside the run loop.
                kill(signal.SIGUSR1)
                kill(signal.SIGUSR2)
        # Both handlers ran; neither error is lost.
        assert info.value.args == (signal.SIGUSR2,)
        assert isinstance(info.value.__context__, FromHandler)
        assert info.value.__context__.args == (signal.SIGUSR1,)
        await let_callbacks_run()
        return "the run went on"

    assert run_mock(main) == "the run went on"


def test_nested_receivers_restore_in_order(outer_handlers):
    _, record = outer_handlers

    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1) as outer_receiver:
            outer_handler = signal.getsignal(signal.SIGUSR1)
            with tether.open_signal_receiver(signal.SIGUSR1) as inner_receiver:
                kill(signal.SIGUSR1)
                assert await inner_receiver.__anext__() == signal.SIGUSR1
            assert signal.getsignal(signal.SIGUSR1) is outer_handler
            kill(signal.SIGUSR1)
            assert await outer_receiver.__anext__() == signal.SIGUSR1
        assert signal.getsignal(signal.SIGUSR1) is record

    run_mock(main)


# ---------------------------------------------------------------- cancellation and misuse


def test_waiting_for_a_signal_is_cancellable_and_loses_nothing():
    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1) as receiver:
            with tether.move_on_after(5) as scope:
                await receiver.__anext__()
            assert scope.cancelled_caught
            kill(signal.SIGUSR1)
            return await receiver.__anext__()

    assert run_mock(main) == signal.SIGUSR1


def test_cancelled_while_a_signal_is_pending_keeps_it():
    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1) as receiver:
            kill(signal.SIGUSR1)
            await let_callbacks_run()
            with tether.CancelScope() as scope:
                scope.cancel()
                await receiver.__anext__()
            assert scope.cancelled_caught
            assert receiver.pending_count() == 1
            return await receiver.__anext__()

    assert run_mock(main) == signal.SIGUSR1


def test_two_tasks_iterating_one_receiver_is_busy_resource_error():
    async def main():
        with tether.open_signal_receiver(signal.SIGUSR1) as receiver:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(receiver.__anext__)
                await wait_all_tasks_blocked()
                with pytest.raises(tether.BusyResourceError):
                    await receiver.__anext__()
                kill(signal.SIGUSR1)

    run_mock(main)


def test_no_signals_is_type_error():
    # The message starts with trio's wording, so code matching on it works.
    with pytest.raises(TypeError, match=r"^No signals were provided: .*signal\.SIGTERM"):
        tether.open_signal_receiver()


def test_uncatchable_or_invalid_signal_fails_and_restores_the_others(outer_handlers):
    _, record = outer_handlers

    async def main():
        with pytest.raises((OSError, ValueError)):
            with tether.open_signal_receiver(signal.SIGUSR1, signal.SIGKILL):
                pass  # pragma: no cover
        assert signal.getsignal(signal.SIGUSR1) is record
        with pytest.raises(ValueError):
            with tether.open_signal_receiver(signal.SIGUSR1, 100000):
                pass  # pragma: no cover
        assert signal.getsignal(signal.SIGUSR1) is record

    run_mock(main)


def test_outside_a_run_is_runtime_error(outer_handlers):
    _, record = outer_handlers
    with pytest.raises(RuntimeError, match=r"tether\.run"):
        with tether.open_signal_receiver(signal.SIGUSR1):
            pass  # pragma: no cover
    assert signal.getsignal(signal.SIGUSR1) is record


def test_outside_the_main_thread_is_runtime_error(outer_handlers):
    _, record = outer_handlers
    errors = []

    async def main():
        try:
            with tether.open_signal_receiver(signal.SIGUSR1):
                pass  # pragma: no cover
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=tether.run, args=(main,))
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "main thread" in errors[0]
    assert signal.getsignal(signal.SIGUSR1) is record


def test_receiver_cannot_be_entered_twice():
    async def main():
        manager = tether.open_signal_receiver(signal.SIGUSR1)
        with manager:
            pass
        with pytest.raises(RuntimeError, match="once"):
            with manager:
                pass  # pragma: no cover

    run_mock(main)


def test_a_signal_listener_gets_the_numbers_written_to_the_wakeup_fd(outer_handlers):
    # lowlevel.set_signal_listener: the numbers of the signals the C-level
    # handler wrote to the run's wakeup socket, whichever Python handler
    # runs for them (here the fixture's), and not the zero bytes that wake
    # the run from other threads.
    outer, _ = outer_handlers
    heard = []

    async def main():
        lowlevel.set_signal_listener(heard.append)
        token = lowlevel.current_tether_token()
        await to_thread.run_sync(token.run_sync_soon, lambda: None)
        os.kill(os.getpid(), signal.SIGUSR2)
        with tether.fail_after(5):
            while not heard:
                await tether.sleep(0.001)
        lowlevel.set_signal_listener(None)
        os.kill(os.getpid(), signal.SIGHUP)
        with tether.fail_after(5):
            while signal.SIGHUP not in outer:
                await tether.sleep(0.001)
        await tether.sleep(0.01)

    tether.run(main)
    assert heard == [bytes([signal.SIGUSR2])]
    assert outer == [signal.SIGUSR2, signal.SIGHUP]


def test_a_signal_listener_that_raises_crashes_the_run(outer_handlers):
    def listener(signums):
        raise ValueError(signums)

    async def main():
        lowlevel.set_signal_listener(listener)
        os.kill(os.getpid(), signal.SIGUSR1)
        await tether.sleep(5)

    with pytest.raises(tether.TetherInternalError) as caught:
        tether.run(main)
    assert [type(error) for error in _leaves(caught.value.__cause__)] == [ValueError]


def _leaves(error):
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    elif error is not None:
        yield error

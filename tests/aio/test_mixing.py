"""Trio-style tether code inside aio coroutines, and aio inside tether.run."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading

import pytest

import tether
from tether import aio
from tether.testing import MockClock

from .conftest import run_virtual


def test_trio_style_nursery_inside_an_aio_coroutine():
    log = []

    async def trio_child(n):
        await tether.sleep(n)
        log.append(f"trio {n}")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_child, 2)
            nursery.start_soon(trio_child, 1)
            await aio.sleep(0.5)
            log.append("aio body")
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 2.0
    assert log == ["aio body", "trio 1", "trio 2"]


def test_trio_style_scope_cancels_aio_await():
    async def main():
        with tether.move_on_after(1) as scope:
            await aio.sleep(10)
        assert scope.cancelled_caught
        fut = aio.get_running_loop().create_future()
        with tether.move_on_after(1) as scope:
            await fut
        assert scope.cancelled_caught and not fut.done()
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 2.0


def test_kernel_cancellation_reaching_the_top_marks_task_cancelled():
    async def child(scope_box):
        with tether.CancelScope() as scope:
            scope_box.append(scope)
            await aio.sleep(10)
        # The scope caught it; the task goes on.
        return "after scope"

    async def main():
        box = []
        task = aio.create_task(child(box))
        await aio.sleep(1)
        box[0].cancel()
        return await task

    assert run_virtual(main()) == "after scope"


def test_aio_timeout_around_tether_native_wait():
    """asyncio-style cancellation interrupts a tether-native wait at once,
    with asyncio's CancelledError, as asyncio interrupts its own awaits."""
    seen = []

    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with aio.timeout(1):
                try:
                    await tether.sleep(3)
                except BaseException as exc:
                    seen.append((type(exc), loop.time()))
                    raise
        # timeout() took back its cancellation request: nothing is pending.
        task = aio.current_task()
        assert task.cancelling() == 0
        await aio.sleep(1)
        return loop.time()

    assert run_virtual(main()) == 2.0
    assert seen == [(asyncio.CancelledError, 1.0)]


def _cancel_at(when, task, msg=None):
    aio.get_running_loop().call_at(when, task.cancel, msg)


@pytest.mark.parametrize("kind", ["sleep", "event", "receive", "send", "lock", "shielded"])
def test_cancel_interrupts_tether_native_waits(kind):
    send, receive = tether.open_memory_channel(0)
    lock = tether.Lock()

    async def native_wait():
        if kind == "sleep":
            await tether.sleep(10)
        elif kind == "event":
            await tether.Event().wait()
        elif kind == "receive":
            await receive.receive()
        elif kind == "send":
            await send.send("never received")
        elif kind == "lock":
            await lock.acquire()
        else:
            with tether.CancelScope(shield=True):
                await tether.sleep(10)

    async def waiter():
        try:
            await native_wait()
        except asyncio.CancelledError as exc:
            return "caught", exc.args, aio.get_running_loop().time()

    async def holder():
        async with lock:
            await aio.sleep(100)

    async def main():
        loop = aio.get_running_loop()
        hold = aio.create_task(holder())
        await aio.sleep(0)
        task = aio.create_task(waiter())
        _cancel_at(1, task, "stop")
        result = await task
        assert task.cancelling() == 1
        # The wait was abandoned cleanly: nothing of it is left behind.
        with pytest.raises(tether.WouldBlock):
            send.send_nowait("x")
        with pytest.raises(tether.WouldBlock):
            receive.receive_nowait()
        assert lock.statistics().tasks_waiting == 0
        hold.cancel()
        await aio.sleep(0)
        return result, loop.time()

    assert run_virtual(main()) == (("caught", ("stop",), 1.0), 1.0)


def test_cancel_uncaught_in_native_wait_cancels_the_task():
    async def child():
        await tether.Event().wait()

    async def main():
        task = aio.create_task(child())
        await aio.sleep(1)
        assert task.cancel("bye")
        assert task.cancel()  # a second request while the first is delivered
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        assert task.cancelled() and task.cancelling() == 2
        return info.value.args, aio.get_running_loop().time()

    assert run_virtual(main()) == (("bye",), 1.0)


@pytest.mark.parametrize("library", ["asyncio", "tether.aio"])
def test_two_cancels_while_in_a_wait_raise_once(library):
    """As in asyncio: a second cancel() before the task runs is answered by
    the same CancelledError (the first message); the task can go on."""
    log = []
    lib = asyncio if library == "asyncio" else aio

    async def child():
        try:
            if library == "asyncio":
                await asyncio.sleep(10)
            else:
                await tether.sleep(10)
        except asyncio.CancelledError as exc:
            log.append(("caught", exc.args))
        await lib.sleep(0)
        log.append("continued")

    async def main():
        task = lib.create_task(child())
        await lib.sleep(0)
        task.cancel("one")
        task.cancel("two")
        await task
        log.append(task.cancelling())

    if library == "asyncio":
        asyncio.run(main())
    else:
        run_virtual(main())
    assert log == [("caught", ("one",)), "continued", 2]


def test_cancel_interrupts_abandonable_thread():
    release = threading.Event()

    async def main():
        loop = aio.get_running_loop()
        try:
            with pytest.raises(TimeoutError):
                async with aio.timeout(1):
                    await tether.to_thread.run_sync(release.wait, abandon_on_cancel=True)
            return loop.time()
        finally:
            release.set()

    assert run_virtual(main()) == 1.0


def test_cancel_of_a_thread_that_cannot_be_abandoned_is_delivered_after_it():
    """An abort that fails (a thread not abandoned) leaves the request
    pending: the wait ends normally, its value is not lost, and the next
    asyncio-level await raises CancelledError. The thread itself is not
    cancelled by it (check_cancelled does not raise)."""
    release = threading.Event()
    log = []

    def in_thread():
        release.wait()
        tether.from_thread.check_cancelled()
        return "thread result"

    async def child():
        log.append(await tether.to_thread.run_sync(in_thread))
        try:
            await aio.sleep(0)
        except asyncio.CancelledError as exc:
            log.append(("cancelled at aio await", exc.args))
            raise

    async def main():
        task = aio.create_task(child())
        await aio.sleep(1)
        task.cancel("late")
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelling()

    assert run_virtual(main()) == 1
    assert log == ["thread result", ("cancelled at aio await", ("late",))]


@pytest.mark.parametrize("next_wait", ["aio", "native"])
def test_cancel_while_in_a_trio_style_nursery_exit(next_wait):
    """A nursery's exit cannot be abandoned: its children finish (they are
    not cancelled), the nursery exits normally, and the cancellation is
    delivered at the next await (an asyncio-level one, or a tether-native
    wait, which is interrupted)."""
    log = []

    async def trio_child():
        await tether.sleep(2)
        log.append("child done")

    async def child():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_child)
        log.append(("nursery exited", aio.get_running_loop().time()))
        try:
            if next_wait == "aio":
                await aio.sleep(5)
            else:
                await tether.sleep(5)
        except asyncio.CancelledError as exc:
            log.append(("cancelled", exc.args, aio.get_running_loop().time()))
            raise

    async def main():
        task = aio.create_task(child())
        await aio.sleep(1)
        task.cancel("bye")
        with pytest.raises(asyncio.CancelledError):
            await task
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 2.0
    assert log == ["child done", ("nursery exited", 2.0), ("cancelled", ("bye",), 2.0)]


def test_cancel_of_a_runnable_task_woken_by_a_channel_keeps_the_value():
    """A task woken with a value by tether-native code (a channel hands the
    value over directly) gets that value even if cancel() comes before it
    runs; the cancellation follows at its next asyncio-level await."""
    log = []

    async def receiver(receive):
        log.append(await receive.receive())
        try:
            await aio.sleep(0)
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    async def main():
        send, receive = tether.open_memory_channel(0)
        task = aio.create_task(receiver(receive))
        await aio.sleep(1)
        send.send_nowait("value")  # the receiver is runnable now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_virtual(main())
    assert log == ["value", "cancelled"]


def test_self_cancel_then_native_wait():
    async def main():
        task = aio.current_task()
        await aio.sleep(0)  # so that this step is not the task's first
        task.cancel("self")
        with pytest.raises(asyncio.CancelledError) as info:
            await tether.sleep(5)
        assert task.uncancel() == 0
        return info.value.args, aio.get_running_loop().time()

    assert run_virtual(main()) == (("self",), 0.0)


def test_aio_sleep_inside_tether_run():
    async def main():
        await aio.sleep(0)
        await aio.sleep(2)
        return tether.current_time()

    assert tether.run(main, clock=MockClock(autojump_threshold=0)) == 2.0


def test_run_hosted_runs_asyncio_code_inside_tether_run():
    import asyncio

    async def asyncio_code(n):
        await asyncio.sleep(1)
        queue = asyncio.Queue()

        async def produce():
            for i in range(n):
                await queue.put(i)

        asyncio.create_task(produce())  # noqa: RUF006 (runs on its own)
        items = [await queue.get() for _ in range(n)]
        return items, asyncio.get_running_loop().time()

    async def main():
        result = await aio.run_hosted(asyncio_code(3))
        with pytest.raises(RuntimeError, match="no running event loop"):
            aio.get_running_loop()
        return result, tether.current_time()

    assert tether.run(main, clock=MockClock(autojump_threshold=0)) == (([0, 1, 2], 1.0), 1.0)


def test_run_hosted_leaves_no_watch_or_signal_listener_in_the_host_run():
    # What a hosted loop installs in the kernel run for its segment (the
    # watch of a replaced time(), the wakeup fd's signal listener) goes with
    # the segment: the host run goes on without them.
    from tether._core._run_context import current_runner

    async def hosted():
        loop = asyncio.get_running_loop()
        loop.time = lambda: loop._clock.current_time()  # replaced, never restored
        loop.call_later(0.001, lambda: None)
        await asyncio.sleep(0.002)

    async def main():
        runner = current_runner()
        await aio.run_hosted(hosted())
        return (
            [type(member).__name__ for member in runner.instruments.members],
            runner.instruments.io_wait_hooked,
            runner.io_manager.signal_listener,
        )

    assert tether.run(main) == ([], False, None)


def test_run_hosted_cancelled_by_a_trio_style_scope():
    log = []

    async def forever():
        try:
            await aio.sleep(100)
        except aio.CancelledError:
            log.append("asyncio cancellation")
            await aio.sleep(0)  # cleanup may await
            log.append("cleaned up")
            raise

    async def background():
        try:
            await aio.sleep(100)
        finally:
            log.append("leftover cancelled")

    async def aio_main():
        aio.create_task(background())
        await forever()

    async def main():
        with tether.move_on_after(2) as scope:
            await aio.run_hosted(aio_main())
        return scope.cancelled_caught, tether.current_time()

    assert tether.run(main, clock=MockClock(autojump_threshold=0)) == (True, 2.0)
    # All leftover tasks are cancelled together (in no particular order).
    assert sorted(log) == ["asyncio cancellation", "cleaned up", "leftover cancelled"]
    assert log.index("asyncio cancellation") < log.index("cleaned up")


def test_run_hosted_errors():
    async def fails():
        await aio.sleep(0)
        raise KeyError("from asyncio code")

    async def main():
        with pytest.raises(KeyError, match="from asyncio code"):
            await aio.run_hosted(fails())
        with pytest.raises(ValueError, match="a coroutine was expected"):
            await aio.run_hosted(fails)  # type: ignore[arg-type]

    tether.run(main)

    async def inside_aio():
        coro = fails()
        try:
            with pytest.raises(RuntimeError, match="running event loop"):
                await aio.run_hosted(coro)
        finally:
            coro.close()

    run_virtual(inside_aio())


def test_an_aio_task_is_its_own_kernel_task_in_every_run_of_the_loop():
    seen = []

    async def child(gate):
        seen.append(tether.lowlevel.current_task())
        await gate
        seen.append(tether.lowlevel.current_task())

    loop = aio.new_event_loop()
    try:
        gate = loop.create_future()
        task = loop.create_task(child(gate))
        loop.run_until_complete(aio.sleep(0))
        # A second run of the loop: the same task object is started again.
        loop.call_soon(gate.set_result, None)
        loop.run_until_complete(task)
    finally:
        loop.close()
    assert seen == [task, task]
    assert isinstance(task, tether.lowlevel.Task) and isinstance(task, asyncio.Future)


def test_trio_style_children_inside_aio_run_use_aio_io():
    # Children of a trio-style nursery in an aio task run in the same kernel
    # run as the loop: they can await its futures, tasks and streams.
    async def echo(reader, writer):
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    async def trio_child(port, results):
        reader, writer = await aio.open_connection("127.0.0.1", port)
        writer.write(b"from a trio-style task")
        await writer.drain()
        results.append(await reader.read(100))
        writer.close()
        results.append(await aio.create_task(aio.sleep(0, "task result")))
        queue = asyncio.Queue()
        aio.get_running_loop().call_later(1, queue.put_nowait, "queued")
        results.append(await queue.get())

    async def grandparent(port, results):
        # A grandchild of the aio task: adopted when it creates a future.
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_child, port, results)

    async def main():
        server = await aio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        results = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_child, port, results)
            nursery.start_soon(grandparent, port, results)
        server.close()
        await server.wait_closed()
        return results

    results = aio.run(main())
    assert sorted(results, key=repr) == sorted(
        [b"from a trio-style task", "task result", "queued"] * 2, key=repr
    )


def test_tether_scope_cancels_a_trio_style_wait_for_an_aio_future():
    async def trio_child(box):
        future = aio.get_running_loop().create_future()
        box.append(future)
        with tether.move_on_after(1) as scope:
            await future
        box.append(scope.cancelled_caught)

    async def main():
        box = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_child, box)
        return box[1], box[0].done()

    assert run_virtual(main()) == (True, False)


def test_run_hosted_inside_aio_run_says_what_to_do():
    async def trio_child():
        with pytest.raises(RuntimeError, match="await the coroutine directly"):
            await aio.run_hosted(aio.sleep(0))

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_child)

    aio.run(main())


def test_aio_without_a_loop_inside_tether_run_points_to_run_hosted():
    async def coro():
        return None

    async def main():
        unstarted = coro()
        for attempt in (
            lambda: aio.create_task(unstarted),
            lambda: aio.get_running_loop(),
            lambda: aio.TaskGroup().__aenter__().send(None),
            lambda: aio.open_connection("127.0.0.1", 1).send(None),
        ):
            with pytest.raises(RuntimeError, match=r"tether\.aio\.run_hosted"):
                attempt()
        unstarted.close()
        return "checked"

    assert tether.run(main) == "checked"


def test_trio_style_children_of_an_aio_task_can_await_its_futures_at_once():
    # The children await a future they did not make (making one would adopt
    # them too): only the handler they were started with lets them wait.
    async def waits(future, log, how):
        log.append((how, await future))

    async def started_then_waits(future, log, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started()
        log.append(("start", await future))

    async def spawns_into(nursery, future, log):
        nursery.start_soon(waits, future, log, "started by a sibling")

    async def main():
        loop = aio.get_running_loop()
        future = loop.create_future()
        log = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waits, future, log, "start_soon")
            await nursery.start(started_then_waits, future, log)
            nursery.start_soon(spawns_into, nursery, future, log)
            loop.call_later(1, future.set_result, "done")
        return sorted(log)

    assert run_virtual(main()) == [
        ("start", "done"),
        ("start_soon", "done"),
        ("started by a sibling", "done"),
    ]


def test_the_kernels_own_tasks_give_their_children_no_handler():
    seen = []

    async def child():
        seen.append(tether.lowlevel.current_task().foreign_yield_handler)

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)

    tether.run(main)
    assert seen == [None]


# Code that belongs to no tether task: loop callbacks, and the steps of the
# standard library's C tasks (``asyncio.Task(...)``, eager tasks: aiohttp
# makes its request handlers that way on Python 3.12 and later), which the
# loop runs as callbacks. Tether-native code there is refused with an error
# that says so, instead of acting for the kernel task that runs the callbacks.


def _stdlib_task(coro):
    return asyncio.Task(coro, loop=asyncio.get_running_loop())


def test_a_cancel_scope_in_a_stdlib_task_is_refused_and_the_loop_survives():
    # Before: the scope belonged to the callback runner; its deadline then
    # cancelled that kernel task and the whole run died with tether.Cancelled.
    async def handler():
        with tether.move_on_after(0.05):
            await asyncio.sleep(1)
        return "not reached"

    async def main():
        task = _stdlib_task(handler())
        with pytest.raises(RuntimeError, match=r"standard-library asyncio\.Task") as info:
            await task
        await asyncio.sleep(2)  # (past the scope's deadline)
        return str(info.value)

    message = run_virtual(main())
    assert message.startswith("must be called from inside a tether task (this runs in a callback")
    assert "loop.create_task()" in message


def test_tether_sleep_and_current_task_in_a_stdlib_task_are_refused():
    async def sleeper():
        await tether.sleep(1)

    async def asks():
        tether.lowlevel.current_task()

    async def main():
        results = []
        for coro in (sleeper(), asks()):
            try:
                await _stdlib_task(coro)
            except RuntimeError as exc:
                results.append("callback of a tether.aio loop" in str(exc))
        # The same code in a task of the loop works.
        await aio.create_task(sleeper())
        await aio.create_task(asks())
        return results

    assert run_virtual(main()) == [True, True]


def test_tether_native_code_in_a_loop_callback_is_refused():
    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def callback():
            try:
                tether.CancelScope().__enter__()
            except RuntimeError as exc:
                done.set_result(str(exc))
            else:
                done.set_result("entered")

        loop.call_soon(callback)
        return await done

    assert "callback of a tether.aio loop" in run_virtual(main())


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"), reason="eager tasks: 3.12+")
def test_an_eager_stdlib_task_started_from_a_callback_is_refused_too():
    # aiohttp's pattern on 3.12+: asyncio.Task(..., eager_start=True) inside
    # a protocol callback; the task's first step runs right there.
    async def handler():
        with tether.CancelScope():
            await asyncio.sleep(0)

    async def main():
        loop = asyncio.get_running_loop()
        made = loop.create_future()
        loop.call_soon(
            lambda: made.set_result(asyncio.Task(handler(), loop=loop, eager_start=True))
        )
        task = await made
        with pytest.raises(RuntimeError, match=r"callback of a tether\.aio loop"):
            await task

    run_virtual(main())


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"), reason="eager tasks: 3.12+")
def test_an_eager_task_factory_does_not_lend_the_calling_task_to_the_new_task():
    # With asyncio.eager_task_factory, create_task() runs the new (standard-
    # library) task's first step inside the call, in the middle of the
    # calling task's step. A cancel scope entered there is refused, as in
    # the task's later steps, instead of landing on the calling task, whose
    # sleep its deadline would then cancel.
    async def child():
        with tether.move_on_after(0.5):
            await asyncio.sleep(10)

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        task = asyncio.create_task(child())
        with pytest.raises(RuntimeError, match=r"runs in the loop's task factory"):
            await task
        await asyncio.sleep(1)
        return "the caller slept on"

    assert run_virtual(main()) == "the caller slept on"


def test_waiting_for_an_fd_in_a_stdlib_task_is_refused_and_leaves_the_fd_free():
    # Before, the kernel task running the loop's callbacks became the fd's
    # waiter, and a tether task waiting on it later got BusyResourceError.
    async def main():
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(RuntimeError, match=r"callback of a tether\.aio loop"):
                await _stdlib_task(tether.lowlevel.wait_readable(a))
            b.send(b"x")
            await aio.create_task(tether.lowlevel.wait_readable(a))
            return a.recv(1)

    assert run_virtual(main()) == b"x"


def test_ctrl_c_protection_in_callbacks_and_stdlib_task_steps_is_as_before():
    # Loop callbacks and the steps of standard-library tasks are user code:
    # a KeyboardInterrupt there is not deferred, as in asyncio's loop; a
    # run_sync_soon callback (the kernel's) stays protected.
    async def main():
        loop = asyncio.get_running_loop()
        seen = {}
        done = loop.create_future()

        def callback():
            seen["callback"] = tether.lowlevel.currently_ki_protected()

        def kernel_callback():
            seen["run_sync_soon"] = tether.lowlevel.currently_ki_protected()
            done.set_result(None)

        async def stdlib_step():
            seen["stdlib task"] = tether.lowlevel.currently_ki_protected()

        loop.call_soon(callback)
        await _stdlib_task(stdlib_step())
        seen["aio task"] = tether.lowlevel.currently_ki_protected()
        tether.lowlevel.current_tether_token().run_sync_soon(kernel_callback)
        await done
        return seen

    assert run_virtual(main()) == {
        "callback": False,
        "stdlib task": False,
        "aio task": False,
        "run_sync_soon": True,
    }


def test_the_current_task_is_back_after_a_callback_raises_system_exit():
    # run_hosted inside tether.run: the trio-style task that hosts the loop
    # is the current task again once a callback's SystemExit has stopped it.
    async def main():
        asyncio.get_running_loop().call_soon(sys.exit, 3)
        await asyncio.sleep(1)

    async def host():
        me = tether.lowlevel.current_task()
        # (run_hosted raises it in an exception group, from its nursery.)
        with pytest.raises(BaseExceptionGroup) as info:
            await aio.run_hosted(main())
        assert info.value.subgroup(SystemExit) is not None
        state = tether.lowlevel.current_stepping_state()
        assert state.current_task is me
        assert state.no_task_reason is None
        assert state.no_task_stepping is None
        assert tether.lowlevel.current_task() is me

    tether.run(host, clock=MockClock(autojump_threshold=0))


def test_a_bare_tether_checkpoint_in_an_asyncio_task_names_where_it_can_be_awaited():
    # The standard library's task rejects what it does not know with "Task
    # got bad yield: <repr>"; tether's checkpoint trap says where it belongs.
    async def checkpoint():
        await tether.lowlevel.checkpoint()

    async def on_tether_loop():
        with pytest.raises(RuntimeError, match="bad yield") as info:
            await _stdlib_task(checkpoint())
        await aio.create_task(checkpoint())  # (a task of the loop: fine)
        return str(info.value)

    for message in (run_virtual(on_tether_loop()), _stock_asyncio_error(checkpoint)):
        assert "for tether tasks only: await it in tether.run or in a tether.aio task" in message


def _stock_asyncio_error(coroutine_function):
    try:
        asyncio.run(coroutine_function())
    except RuntimeError as exc:
        return str(exc)
    raise AssertionError("no error")


@contextlib.contextmanager
def loop_stopped_while(holder, at_stop=None):
    """A new loop whose first run starts `holder()` as a task and ends 10 ms
    later, with the task wherever it then is, after calling `at_stop` in the
    run's last iteration if given: gives ``(loop, task)``, and closes the
    loop afterwards. (A virtual clock that jumps to the next timer when
    every task waits, and runs at real speed while one spins on sleep(0).)"""
    loop = aio.new_event_loop(clock=MockClock(rate=1, autojump_threshold=0))

    async def main():
        task = loop.create_task(holder())
        await asyncio.sleep(0.01)
        if at_stop is not None:
            loop.call_soon(at_stop)
        return task

    try:
        yield loop, loop.run_until_complete(main())
    finally:
        loop.close()


def test_a_task_with_an_open_tether_nursery_when_the_loop_stops_ends_cancelled():
    # The loop stops while an aio task waits inside `async with
    # tether.open_nursery()`, with a child in it. The task cannot leave the
    # kernel there: the end of the run cancels the child and the body, the
    # nursery exits, and the task ends cancelled. (It used to be woken by
    # the nursery's exit as if at an asyncio await, left the kernel with the
    # nursery still open, and the run failed with "Nursery stack
    # corrupted".)
    reached = []

    async def holder():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep, 10)
            reached.append("waiting")
            await tether.sleep(10)

    with loop_stopped_while(holder) as (_loop, task):
        assert reached == ["waiting"]
        assert task.cancelled()


@pytest.mark.parametrize("where", ["future", "sleep(0)", "event"])
def test_a_task_at_an_asyncio_await_inside_a_tether_nursery_when_the_loop_stops_is_cancelled(
    where,
):
    # The same at an asyncio-level await (a future, a bare yield, a parked
    # aio.Event) inside a tether nursery: the task cannot leave the kernel
    # with the nursery open (its children end with the run), so the end of
    # the run cancels it there. (It used to leave, and the run failed with
    # "Nursery stack corrupted".)
    log = []

    async def holder():
        try:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(tether.sleep, 10)
                if where == "future":
                    await asyncio.sleep(10)
                elif where == "event":
                    await aio.Event().wait()
                else:
                    while True:
                        await asyncio.sleep(0)
        except BaseException as exc:
            log.append(exc)
            raise

    with loop_stopped_while(holder) as (loop, task):
        assert task.cancelled()
        [error] = log
        assert error.split(tether.Cancelled)[1] is None
        # The next run is unaffected.
        assert loop.run_until_complete(asyncio.sleep(0.01, "next")) == "next"


@pytest.mark.parametrize("shield", [False, True])
def test_a_task_at_an_asyncio_await_inside_a_tether_scope_stays_suspended_over_the_stop(shield):
    # Inside a cancel scope with no nursery open, the task leaves the kernel
    # at its asyncio-level await, suspended as asyncio's task would be, and
    # goes on in the next run.
    log = []

    async def holder():
        with tether.CancelScope(shield=shield):
            await asyncio.sleep(0.02)
            log.append("woke")
        return "done"

    with loop_stopped_while(holder) as (loop, task):
        assert not task.done()
        assert log == []
        assert loop.run_until_complete(task) == "done"
        assert log == ["woke"]


@pytest.mark.parametrize("where", ["future", "sleep(0)"])
def test_an_asyncio_await_in_a_shielded_tether_nursery_when_the_loop_stops_raises(where):
    # A shield keeps the end of the run from cancelling the task, and the
    # open nursery keeps it from leaving: it gets a RuntimeError that says
    # so at that await, instead of waiting (or spinning) for ever while the
    # run waits for it.

    async def holder():
        with tether.CancelScope(shield=True):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(tether.sleep, 0.05)
                if where == "future":
                    await asyncio.sleep(10)
                else:
                    while True:
                        await asyncio.sleep(0)

    with loop_stopped_while(holder) as (loop, task):
        [error] = task.exception().exceptions
        assert isinstance(error, RuntimeError)
        assert "no cancellation reaches" in str(error)
        assert loop.run_until_complete(asyncio.sleep(0.01, "next")) == "next"


def test_a_tether_scope_cancelled_as_the_loop_stops_is_not_lost():
    # The scope around an aio task's asyncio await is cancelled in the
    # iteration where the loop stops: the task gets the cancellation there
    # and leaves the scope, then waits out of the kernel at its next await.
    # (The wait used to be detached with the scope still open: the
    # cancellation was lost and the scope's exit failed in the next run.)
    log = []
    scope = tether.CancelScope()

    async def holder():
        with scope:
            await asyncio.sleep(10)
            log.append("not cancelled")
        log.append(("left the scope", scope.cancelled_caught))
        await asyncio.sleep(0.02)
        log.append("resumed")

    with loop_stopped_while(holder, at_stop=scope.cancel) as (loop, task):
        assert log == [("left the scope", True)]
        loop.run_until_complete(task)
        assert log == [("left the scope", True), "resumed"]


def test_a_task_that_leaves_its_tether_nursery_at_loop_stop_waits_out_of_the_kernel():
    # A task that catches the run's cancellation outside its nursery and
    # then awaits a future leaves the kernel as usual at that await, and
    # resumes in the next run.
    log = []

    async def holder():
        try:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(tether.sleep, 10)
                await asyncio.sleep(10)
        except BaseExceptionGroup:
            log.append("cancelled")
        await asyncio.sleep(0.02)
        log.append("resumed")
        return "done"

    with loop_stopped_while(holder) as (loop, task):
        assert log == ["cancelled"]
        assert not task.done()
        assert loop.run_until_complete(task) == "done"
        assert log == ["cancelled", "resumed"]


@pytest.mark.parametrize("where", ["aio TaskGroup", "trio-style child"])
def test_asyncio_waits_no_cancellation_reaches_in_a_tether_nursery_at_loop_stop_raise(where):
    # Waits that start while the nursery unwinds, which the end of the run
    # cannot cancel: an aio.TaskGroup waiting (shielded) for its tasks,
    # which left the kernel at the stop, and a trio-style child's shielded
    # asyncio.sleep in a finally block. The stopped loop runs no timers or
    # callbacks, so they would wait for ever: each gets the RuntimeError.
    loop = aio.new_event_loop(clock=MockClock(autojump_threshold=0))
    log = []

    async def child():
        try:
            await tether.sleep(10)
        finally:
            with tether.CancelScope(shield=True):
                try:
                    await asyncio.sleep(0.05)
                except RuntimeError as exc:
                    log.append(str(exc))
                    raise

    async def holder():
        async with tether.open_nursery() as nursery:
            if where == "aio TaskGroup":
                async with aio.TaskGroup() as group:
                    group.create_task(asyncio.sleep(10))
                    await asyncio.sleep(10)
            else:
                nursery.start_soon(child)
                await asyncio.sleep(10)

    async def main():
        task = loop.create_task(holder())
        await asyncio.sleep(0.01)
        return task

    try:
        task = loop.run_until_complete(main())
        assert task.done()
        errors = task.exception().split(RuntimeError)[0]
        assert errors is not None
        assert "no cancellation reaches" in str(errors.exceptions[0])
        if where == "trio-style child":
            assert len(log) == 1
        assert loop.run_until_complete(asyncio.sleep(0.01, "next")) == "next"
    finally:
        for pending in asyncio.all_tasks(loop):
            pending.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


def test_a_shielded_asyncio_await_started_after_the_stop_waits_out_of_the_kernel():
    # A task in tether-native code at the stop goes on in the ending run; its
    # next asyncio-level await, in a shielded scope with no nursery open,
    # cannot be cancelled, so the task leaves the kernel there and goes on
    # in the next run (it used to wait for ever, and the run with it).
    log = []

    async def holder():
        with tether.CancelScope(shield=True):
            await tether.sleep(0.02)
            log.append("tether sleep done")
            await asyncio.sleep(0.01)
            log.append("asyncio sleep done")
        return "done"

    with loop_stopped_while(holder) as (loop, task):
        assert log == ["tether sleep done"]
        assert loop.run_until_complete(task) == "done"
        assert log == ["tether sleep done", "asyncio sleep done"]


@pytest.mark.parametrize("who", ["aio task", "trio-style child"])
def test_a_shielded_asyncio_await_with_a_deadline_at_loop_stop_times_out_normally(who):
    # A shielded cleanup with a deadline (`move_on_after(..., shield=True)`)
    # around an asyncio-level await as the loop stops: the kernel's
    # deadlines still run, so the wait ends by its timeout as usual rather
    # than with the RuntimeError for waits that would last for ever.
    log = []

    async def cleanup(name):
        with tether.move_on_after(0.05, shield=True) as scope:
            await asyncio.sleep(10)
        log.append((name, scope.cancelled_caught))

    async def child():
        try:
            await tether.sleep(10)
        finally:
            await cleanup("child")

    async def holder():
        async with tether.open_nursery() as nursery:
            if who == "trio-style child":
                nursery.start_soon(child)
                await asyncio.sleep(10)
            else:
                try:
                    await asyncio.sleep(10)
                finally:
                    await cleanup("holder")

    with loop_stopped_while(holder) as (_loop, task):
        assert task.cancelled()
        assert log == [("child" if who == "trio-style child" else "holder", True)]


@pytest.mark.parametrize("order", ["stop, then set", "set, then stop"])
def test_a_trio_style_child_whose_future_is_set_as_the_loop_stops_gets_its_value(order):
    # A trio-style child waits, shielded, for a future of the loop that is
    # set in the iteration where the loop stops: its wakeup (a loop
    # callback) would only run in the next run, but the future is done, so
    # it resumes with the value rather than the error for waits that would
    # last for ever.
    loop = aio.new_event_loop(clock=MockClock(autojump_threshold=0))
    future = loop.create_future()
    log = []

    async def child():
        with tether.CancelScope(shield=True):
            log.append(("child got", await future))

    async def holder():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)
            await asyncio.sleep(10)

    def stop_and_set():
        if order == "stop, then set":
            loop.stop()
            future.set_result(1)
        else:
            future.set_result(1)
            loop.stop()

    try:
        task = loop.create_task(holder())
        loop.call_later(0.01, stop_and_set)
        loop.run_forever()
        assert log == [("child got", 1)]
        assert task.cancelled()
    finally:
        loop.close()


def test_a_host_task_waiting_for_a_hosted_loops_future_is_not_failed_at_its_stop():
    # Under run_hosted, a trio-style task of the host run (not one of the
    # loop's) waits for a future of the hosted loop while the loop's run
    # ends; a background task's cleanup sets it as the loop winds down. The
    # host task is not in the loop's nursery, so the loop leaves its wait
    # alone.
    log = []
    box = []

    async def host_waiter():
        await tether.sleep(0.01)
        future = asyncio.get_running_loop().create_future()
        box.append(future)
        log.append(("host got", await future))

    async def background():
        try:
            await asyncio.sleep(5)
        finally:
            box[0].set_result("late")

    async def main():
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0.05)
        return "main done"

    async def top():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(host_waiter)
            log.append(await aio.run_hosted(main()))

    tether.run(top, clock=MockClock(autojump_threshold=0))
    assert log == [("host got", "late"), "main done"]

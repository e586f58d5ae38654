"""The standard library's asyncio helpers and names, used with tether's tasks
and loop: what libraries written for asyncio check and call."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import socket
import sys
import types
import warnings
from unittest import mock

import pytest

from tether import aio


class Awaitable:
    """An awaitable that is neither a coroutine nor a future."""

    def __await__(self):
        yield from asyncio.sleep(0).__await__()
        return "awaited"


def test_an_aio_task_is_an_asyncio_task():
    async def main():
        task = aio.create_task(aio.sleep(0))
        await task
        return isinstance(task, asyncio.Task), isinstance(task, asyncio.Future)

    assert aio.run(main()) == (True, True)


def test_stdlib_helpers_wrap_other_awaitables_in_tether_tasks():
    async def main():
        return [
            await asyncio.ensure_future(Awaitable()),
            await asyncio.gather(Awaitable(), Awaitable()),
            await asyncio.wait_for(Awaitable(), 10),
            await asyncio.shield(Awaitable()),
            await aio.ensure_future(Awaitable()),
        ]

    assert aio.run(main()) == ["awaited", ["awaited", "awaited"], "awaited", "awaited", "awaited"]


@types.coroutine
def _generator_coroutine():
    yield
    return "generator"


def test_create_task_accepts_what_asyncio_accepts_as_a_coroutine():
    async def main():
        coro = _generator_coroutine()
        if asyncio.iscoroutine(coro):  # Python 3.11
            return await aio.create_task(coro)
        with pytest.raises(TypeError, match="coroutine was expected"):
            aio.create_task(coro)
        return "generator"

    assert aio.run(main()) == "generator"


def test_a_task_whose_creation_failed_can_be_printed():
    async def main():
        task = aio.Task.__new__(aio.Task)
        with pytest.raises(TypeError, match="coroutine was expected"):
            task.__init__(42)
        return repr(task)

    assert aio.run(main()).startswith("<Task pending")


def test_awaiting_a_future_without_get_loop():
    # asyncio's tasks fall back to the future's _loop attribute.
    class OldFuture(asyncio.Future):
        @property
        def get_loop(self):
            raise AttributeError

    async def main():
        future = OldFuture(loop=aio.get_running_loop())
        aio.get_running_loop().call_soon(future.set_result, "done")
        return await future

    assert aio.run(main()) == "done"


def test_a_cancellation_in_a_thread_arrives_as_asyncio_cancelled_error():
    def cancelled_in_thread():
        future = concurrent.futures.Future()
        future.cancel()
        return future.result()

    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(asyncio.CancelledError):
            await loop.run_in_executor(None, cancelled_in_thread)
        return "ok"

    assert aio.run(main()) == "ok"


def test_asyncio_module_names_are_on_tether_aio():
    missing = [name for name in asyncio.__all__ if not hasattr(aio, name)]
    assert missing == []
    assert aio.DefaultEventLoopPolicy is aio.EventLoopPolicy
    assert issubclass(aio.SelectorEventLoop, asyncio.AbstractEventLoop)
    assert aio.BaseEventLoop is asyncio.BaseEventLoop
    with pytest.raises(AttributeError, match="no attribute 'not_an_asyncio_name'"):
        aio.not_an_asyncio_name  # noqa: B018

    loop = aio.SelectorEventLoop()
    try:

        async def main():
            return aio._get_running_loop(), aio.current_task()

        running, task = loop.run_until_complete(main())
        assert running is loop
        assert isinstance(task, aio.Task)
    finally:
        loop.close()


@pytest.mark.skipif(
    sys.platform == "win32" or sys.version_info >= (3, 14), reason="child watchers: Unix, < 3.14"
)
def test_an_inactive_child_watcher_that_was_set_refuses_subprocesses():
    # (3.11 asks what entering the watcher returns, 3.12+ the watcher.)
    watcher = mock.create_autospec(
        asyncio.AbstractChildWatcher, **{"__enter__.return_value.is_active.return_value": False}
    )
    watcher.is_active.return_value = False

    async def main():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(watcher)
        try:
            with pytest.raises(RuntimeError, match="not activated"):
                await aio.create_subprocess_exec(sys.executable, "-c", "pass")
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                asyncio.set_child_watcher(None)
        return (
            watcher.add_child_handler.called
            or watcher.__enter__.return_value.add_child_handler.called
        )

    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(aio.EventLoopPolicy())
    try:
        assert aio.run(main()) is False
    finally:
        asyncio.set_event_loop_policy(saved)


def test_fd_of_an_open_transport_cannot_get_reader_or_writer():
    async def main():
        loop = aio.get_running_loop()
        a, b = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
        for method in (loop.add_reader, loop.add_writer):
            with pytest.raises(RuntimeError, match="is used by transport"):
                method(a.fileno(), print)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.remove_reader(a)
        transport.close()
        await aio.sleep(0)
        # A closing transport no longer owns the fd.
        assert loop.remove_writer(b) is False
        b.close()

    aio.run(main())


def test_a_failed_connection_leaves_no_reference_cycle():
    # The error raised must not be kept alive by a list of errors that its
    # own traceback's frames still hold.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main():
        try:
            await aio.open_connection("127.0.0.1", port)
        except OSError as exc:
            return exc
        raise AssertionError("connected to a closed port")

    error = aio.run(main())
    holders = []
    tb = error.__traceback__
    while tb is not None:
        for name, value in tb.tb_frame.f_locals.items():
            if isinstance(value, list) and any(item is error for item in value):
                holders.append((tb.tb_frame.f_code.co_name, name))
        tb = tb.tb_next
    assert holders == []
    assert [ref for ref in gc.get_referrers(error) if isinstance(ref, list)] == []

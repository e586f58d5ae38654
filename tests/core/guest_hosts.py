"""Host loops for the guest-mode tests: a queue of callbacks, and asyncio."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

import outcome

from tether import lowlevel


class QueueHost:
    """The smallest event loop that can host a guest run: a queue of
    callbacks that its thread runs in order, until the guest run is done.

    It records every call of one of its callbacks from the wrong thread
    (`wrong_thread`): tether promises to call ``run_sync_soon_not_threadsafe``
    only from the host thread, and to need ``run_sync_soon_threadsafe`` only
    from elsewhere when both are given."""

    def __init__(self) -> None:
        self.callbacks: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self.thread = threading.current_thread()
        self.result: outcome.Outcome[Any] | None = None
        self.wrong_thread: list[str] = []
        self.turns = 0

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        if threading.current_thread() is self.thread:
            self.wrong_thread.append("run_sync_soon_threadsafe from the host thread")
        self.callbacks.put(fn)

    def call_soon(self, fn: Callable[[], object]) -> None:
        if threading.current_thread() is not self.thread:
            self.wrong_thread.append("run_sync_soon_not_threadsafe from another thread")
        self.callbacks.put(fn)

    def done(self, result: outcome.Outcome[Any]) -> None:
        self.result = result

    def start(self, async_fn: Callable[..., Any], *args: object, **kwargs: Any) -> None:
        lowlevel.start_guest_run(
            async_fn,
            *args,
            run_sync_soon_threadsafe=self.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=self.call_soon,
            done_callback=self.done,
            **kwargs,
        )

    def run_until_done(self) -> Any:
        while self.result is None:
            self.callbacks.get()()
            self.turns += 1
        assert self.wrong_thread == []
        return self.result.unwrap()

    def run(self, async_fn: Callable[..., Any], *args: object, **kwargs: Any) -> Any:
        self.start(async_fn, *args, **kwargs)
        return self.run_until_done()


def run_as_guest(async_fn: Callable[..., Any], *args: object, **kwargs: Any) -> Any:
    """Run `async_fn` as a guest of a new `QueueHost`; its result."""
    return QueueHost().run(async_fn, *args, **kwargs)


def run_on_asyncio(
    async_fn: Callable[..., Any],
    *args: object,
    host_main: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Run `async_fn` as a guest of an asyncio loop (`asyncio.run`); its
    result. `host_main`, if given, is an asyncio coroutine function that the
    host runs meanwhile, in a task of its own."""

    async def host() -> Any:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[outcome.Outcome[Any]] = loop.create_future()
        lowlevel.start_guest_run(
            async_fn,
            *args,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=done.set_result,
            **kwargs,
        )
        if host_main is not None:
            await host_main()
        return (await done).unwrap()

    return asyncio.run(host())

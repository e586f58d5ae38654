"""tether as a guest of an asyncio program: a cancellable download with progress.

The asyncio program owns the thread and its loop; tether runs inside it as
a guest (`tether.lowlevel.start_guest_run`), on the same thread, without a
second thread for the async code and without polling. Each side waits for
the other's work:

* the asyncio side starts a "download" in the tether run, follows its
  progress through an `asyncio.Queue`, cancels it halfway, then starts a
  second one and awaits its result (an asyncio future that the tether task
  completes);
* the tether side fetches each chunk with asyncio code (`asyncio.sleep`
  standing in for a real client), awaited through a small bridge.

Run it: python docs/examples/guest_asyncio.py

It prints:

    download 1: 20% 40% 60% -> cancelled by the asyncio side
    download 2: 20% 40% 60% 80% 100% -> done, 5 chunks
    tether guest run finished with: bye

(tests/docs/test_examples.py checks that it does.)
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import outcome

import tether

CHUNKS = 5
#: How long the asyncio side takes to "fetch" one chunk.
CHUNK_SECONDS = 0.01


async def wait_for_asyncio(awaitable: Awaitable[Any]) -> Any:
    """From tether code in the guest run: run `awaitable` as an asyncio task
    on the host loop and wait for its result. Cancellable: cancelling the
    waiting tether task cancels the asyncio task."""
    task = asyncio.ensure_future(awaitable)
    done = tether.Event()
    task.add_done_callback(lambda _: done.set())
    try:
        await done.wait()
    finally:
        task.cancel()  # (no effect if it is done)
    return task.result()


async def download(progress: asyncio.Queue[str | None]) -> int:
    """tether code: fetch the chunks one by one, reporting progress."""
    for chunk in range(1, CHUNKS + 1):
        await wait_for_asyncio(asyncio.sleep(CHUNK_SECONDS))
        progress.put_nowait(f"{100 * chunk // CHUNKS}%")
    return CHUNKS


async def tether_main(started: Callable[[tether.Nursery], None]) -> str:
    async with tether.open_nursery() as nursery:
        started(nursery)  # the asyncio side starts downloads in it
        await tether.sleep_forever()  # until the asyncio side cancels it
    return "bye"


def start_download(
    nursery: tether.Nursery, progress: asyncio.Queue[str | None]
) -> tuple[tether.CancelScope, asyncio.Future[int | None]]:
    """From asyncio code: start a download in the tether run. Returns its
    cancel scope, and an asyncio future for its result (None if it was
    cancelled). The progress queue ends with None."""
    scope = tether.CancelScope()
    result: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def run_it() -> None:
        chunks = None
        try:
            with scope:
                chunks = await download(progress)
        finally:
            progress.put_nowait(None)
            result.set_result(chunks)

    # Host code may call tether's synchronous functions: the thread is in
    # the guest run.
    nursery.start_soon(run_it)
    return scope, result


async def asyncio_main() -> None:
    loop = asyncio.get_running_loop()
    nursery_ready: asyncio.Future[tether.Nursery] = loop.create_future()
    finished: asyncio.Future[outcome.Outcome[str]] = loop.create_future()
    tether.lowlevel.start_guest_run(
        tether_main,
        nursery_ready.set_result,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=loop.call_soon,
        done_callback=finished.set_result,
    )
    nursery = await nursery_ready

    for number, cancel_at in ((1, "60%"), (2, None)):
        progress: asyncio.Queue[str | None] = asyncio.Queue()
        scope, result = start_download(nursery, progress)
        seen = []
        while (step := await progress.get()) is not None:
            seen.append(step)
            if step == cancel_at:
                scope.cancel()
        chunks = await result
        ending = "cancelled by the asyncio side" if chunks is None else f"done, {chunks} chunks"
        print(f"download {number}: {' '.join(seen)} -> {ending}")

    # Done with tether: cancel its nursery, and wait for the run to end.
    nursery.cancel_scope.cancel()
    print(f"tether guest run finished with: {(await finished).unwrap()}")


if __name__ == "__main__":
    asyncio.run(asyncio_main())

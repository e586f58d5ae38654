"""A callback queued during an iteration runs in the next iteration, even
when a callback queued in the iteration before (so one that runs in this
one) has not run yet. Seen through ``stop()``: ``run_until_complete``
stops the loop from its future's done callback, and what was queued in the
same iteration as that callback still runs before it returns.

(A loop that let the later callback join the earlier one's turn would
stop an iteration early, and leave the other callback for the next run.)"""

import asyncio

log = []


def wake_then_queue(loop, fut, note):
    # One iteration: wake the task waiting for `fut`, then queue a callback
    # that queues another.
    def queued_second():
        log.append(f"{note}: second callback runs, queues a third")
        loop.call_soon(log.append, f"{note}: third callback runs")

    fut.set_result(None)
    loop.call_soon(queued_second)


def scenario(note, make_task):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    fut = loop.create_future()

    async def woken():
        await fut
        log.append(f"{note}: woken task ends")

    task = make_task(loop, woken())
    loop.run_until_complete(asyncio.sleep(0))
    loop.call_soon(wake_then_queue, loop, fut, note)
    loop.run_until_complete(task)
    log.append(f"{note}: run_until_complete returned")
    loop.run_until_complete(asyncio.sleep(0))
    log.append(f"{note}: the next run returned")
    asyncio.set_event_loop(None)
    loop.close()


scenario("a task", lambda loop, coro: loop.create_task(coro))
scenario("gather", lambda loop, coro: asyncio.gather(coro))
# (Named: on tether's loop through the policy, this is the standard
# library's task, which numbers its names apart from the loop's own tasks.)
scenario("Task()", lambda loop, coro: asyncio.Task(coro, loop=loop, name="a Task()"))


async def ticker_and_callbacks():
    loop = asyncio.get_running_loop()

    def ticker(n, i=0):
        # (One tick per iteration, with no task step in between.)
        log.append(f"tick {i}")
        if i + 1 < n:
            loop.call_soon(ticker, n, i + 1)

    ticker(8)
    fut = loop.create_future()

    async def woken():
        await fut
        log.append("woken task queues B")
        loop.call_soon(log.append, "B runs")

    task = asyncio.create_task(woken())
    await asyncio.sleep(0)
    fut.set_result(None)
    loop.call_soon(log.append, "A runs")
    await task
    for _ in range(6):
        await asyncio.sleep(0)


asyncio.run(ticker_and_callbacks())
print("\n".join(log))


async def name_of_a_new_task():
    return asyncio.current_task().get_name()


# asyncio.run's own tasks (the main one and two for the shutdown) count in
# the names of the tasks made afterwards.
print("made after asyncio.run():", asyncio.run(name_of_a_new_task()))

"""A single-flight cache, and a cancellation bug that only some schedules show.

`Cache.get(key)` fetches each key at most once at a time, however many tasks
ask for it: the first caller fetches, the others wait for that fetch and share
its result.

`BuggyCache` is how this is often first written. It works until the caller
doing the fetch is cancelled (say its own deadline expires): the fetch stops,
the waiters wake up, find no value, and crash with `KeyError`. A test with a
patient and an impatient client passes under tether's default schedule,
because the client started first does the fetch; only when the scheduler lets
the impatient client go first does the bug appear. `Cache` is the fix: a
waiter that wakes to find no value looks again, and fetches itself if needed.

docs/testing.md shows the property test that finds the bug. This script does
a similar search without hypothesis: it tries random schedules until one
fails, shows that the failure replays from the decisions it made, and that
the fix survives them all.

Run it: python docs/examples/buggy_cache.py

It prints:

    default schedule, buggy cache: passes
    first failing schedule: Schedule(seed=0), whose decisions replay as Schedule.replay("1:1")
    replayed three times: [True, True, True]
    fixed cache survives 200 schedules: True

(tests/docs/test_examples.py checks that it does.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import tether
from tether.testing import MockClock, Schedule

Fetch = Callable[[str], Awaitable[str]]


class BuggyCache:
    """Fetches each key once; concurrent callers share the fetch. (Buggy.)"""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._values: dict[str, str] = {}
        self._fetching: dict[str, tether.Event] = {}

    async def get(self, key: str) -> str:
        if key in self._values:
            await tether.lowlevel.checkpoint()
            return self._values[key]
        if key in self._fetching:
            await self._fetching[key].wait()
            # BUG: if the fetching caller was cancelled, there is no value.
            return self._values[key]
        done = self._fetching[key] = tether.Event()
        try:
            self._values[key] = await self._fetch(key)
            return self._values[key]
        finally:
            del self._fetching[key]
            done.set()


class Cache:
    """Fetches each key once at a time; concurrent callers share the fetch.

    Cancellation: `get` is a checkpoint. If the caller doing a fetch is
    cancelled, the fetch stops and one of the waiting callers starts it
    again; nobody else is affected.
    """

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._values: dict[str, str] = {}
        self._fetching: dict[str, tether.Event] = {}

    async def get(self, key: str) -> str:
        while key not in self._values:
            fetching = self._fetching.get(key)
            if fetching is None:
                break
            # Then look again: the fetch may have been cancelled.
            await fetching.wait()
        else:
            await tether.lowlevel.checkpoint()
            return self._values[key]
        done = self._fetching[key] = tether.Event()
        try:
            self._values[key] = await self._fetch(key)
            return self._values[key]
        finally:
            del self._fetching[key]
            done.set()


async def every_patient_client_gets_the_value(
    cache_class: type[BuggyCache] | type[Cache], patience: list[float]
) -> None:
    """The property: clients ask for one key at once, each with its own
    timeout; the fetch takes 1 s, so every client willing to wait 5 s gets
    the value, whatever happens to the impatient ones."""

    async def fetch(key: str) -> str:
        await tether.sleep(1)
        return key.upper()

    cache = cache_class(fetch)
    results: dict[int, str] = {}

    async def client(number: int, timeout: float) -> None:
        with tether.move_on_after(timeout):
            results[number] = await cache.get("key")

    async with tether.open_nursery() as nursery:
        for number, timeout in enumerate(patience):
            nursery.start_soon(client, number, timeout)
    for number, timeout in enumerate(patience):
        if timeout >= 5:
            assert results[number] == "KEY", f"patient client {number} got nothing"


def fails(cache_class: type[BuggyCache] | type[Cache], schedule: Schedule | None) -> bool:
    patience = [5.0, 0.5]  # the patient client starts first
    try:
        if schedule is None:
            clock = MockClock(autojump_threshold=0)
            tether.run(every_patient_client_gets_the_value, cache_class, patience, clock=clock)
        else:
            schedule.run(every_patient_client_gets_the_value, cache_class, patience)
    except Exception:
        return True
    return False


def main() -> None:
    print("default schedule, buggy cache:", "fails" if fails(BuggyCache, None) else "passes")
    seeded = [Schedule(seed) for seed in range(1000)]
    failing = next(schedule for schedule in seeded if fails(BuggyCache, schedule))
    # What the failing run decided, against the default order:
    replay = failing.last_run
    print(f"first failing schedule: {failing!r}, whose decisions replay as {replay!r}")
    print("replayed three times:", [fails(BuggyCache, replay) for _ in range(3)])
    survived = not any(fails(Cache, Schedule(seed)) for seed in range(200))
    print("fixed cache survives 200 schedules:", survived)


if __name__ == "__main__":
    main()

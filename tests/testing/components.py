"""Realistic components with ordering and cancellation bugs, for testing the
schedule explorer, and the programs that exercise them.

Each buggy component passes its test under a plain `tether.run` (and under
a schedule's default order): only another interleaving, or a deadline
firing at the wrong step, shows the bug. Each has a fixed twin that passes
under every schedule.
"""

import tether
from tether import lowlevel

# -- a single-flight cache --------------------------------------------------------


class SingleFlightCache:
    """Concurrent gets of one key share one fetch. The buggy version lets a
    cancelled fetcher strand its waiters: they wake to find no value."""

    def __init__(self, fetch, *, fixed=False):
        self._fetch = fetch
        self._fixed = fixed
        self._values = {}
        self._fetching = {}

    async def get(self, key):
        while key not in self._values and key in self._fetching:
            await self._fetching[key].wait()
            if not self._fixed:
                # BUG: the fetcher may have been cancelled; there may be no value.
                return self._values[key]
        if key in self._values:
            await lowlevel.checkpoint()
            return self._values[key]
        done = self._fetching[key] = tether.Event()
        try:
            self._values[key] = await self._fetch(key)
            return self._values[key]
        finally:
            del self._fetching[key]
            done.set()


async def cache_clients(patience, *, fixed=False):
    """Clients ask for one key at once, each with its own patience (a fetch
    takes 1 s). Every client willing to wait 5 s must get the value."""

    async def fetch(key):
        await tether.sleep(1)
        return key.upper()

    cache = SingleFlightCache(fetch, fixed=fixed)
    results = {}

    async def client(number, timeout):
        with tether.move_on_after(timeout):
            results[number] = await cache.get("key")

    async with tether.open_nursery() as nursery:
        for number, timeout in enumerate(patience):
            nursery.start_soon(client, number, timeout)
    for number, timeout in enumerate(patience):
        if timeout >= 5:
            assert results.get(number) == "KEY", f"patient client {number} got nothing"


async def cache_with_patient_clients(*, fixed=False):
    """Two patient clients; the cache must not crash whenever a deadline
    fires. (For exploring cancellations: a client whose deadline fired
    may go without the value, but no client may crash.)"""

    async def fetch(key):
        await tether.sleep(1)
        return key.upper()

    cache = SingleFlightCache(fetch, fixed=fixed)

    async def client():
        with tether.move_on_after(5):
            assert await cache.get("key") == "KEY"

    async with tether.open_nursery() as nursery:
        nursery.start_soon(client)
        nursery.start_soon(client)


# -- a connection pool ---------------------------------------------------------------


class Pool:
    """At most `size` connections at once; `borrow` waits for a free slot,
    then connects. The buggy version leaks the slot when the borrower is
    cancelled while connecting."""

    def __init__(self, size, connect, *, fixed=False):
        self.size = size
        self._slots = tether.Semaphore(size)
        self._connect = connect
        self._fixed = fixed

    @property
    def free(self):
        return self._slots.value

    async def borrow(self):
        await self._slots.acquire()
        if self._fixed:
            try:
                return await self._connect()
            except BaseException:
                self._slots.release()
                raise
        # BUG: cancelled while connecting, the slot is never given back.
        return await self._connect()

    def give_back(self, connection):
        self._slots.release()


async def pool_borrowers(*, fixed=False):
    """A patient borrower and an impatient one (connecting takes 1 s; the
    impatient one gives up after 0.5 s) share a pool of one slot. Both must
    finish, and the slot must be free afterwards."""

    async def connect():
        await tether.sleep(1)
        return object()

    pool = Pool(1, connect, fixed=fixed)

    async def borrower(patience):
        with tether.move_on_after(patience):
            connection = await pool.borrow()
            await tether.sleep(0.1)
            pool.give_back(connection)

    async with tether.open_nursery() as nursery:
        nursery.start_soon(borrower, 1000)
        nursery.start_soon(borrower, 0.5)
    assert pool.free == pool.size, "a slot leaked"


async def pool_borrowers_without_timeouts(*, fixed=False):
    """As `pool_borrowers`, but the patient borrower waits without a
    deadline: when the slot leaks it waits forever (a deadlock)."""

    async def connect():
        await tether.sleep(1)
        return object()

    pool = Pool(1, connect, fixed=fixed)

    async def impatient():
        with tether.move_on_after(0.5):
            pool.give_back(await pool.borrow())

    async def patient():
        pool.give_back(await pool.borrow())

    async with tether.open_nursery() as nursery:
        nursery.start_soon(patient)
        nursery.start_soon(impatient)


# -- a rate limiter ------------------------------------------------------------------


class RateLimiter:
    """Admits at most `capacity` requests. The buggy version checks for a
    token, records the request (a checkpoint), then takes the token: two
    requests can both pass the check."""

    def __init__(self, capacity, *, fixed=False):
        self.tokens = capacity
        self.log = []
        self._fixed = fixed

    async def _record(self, request):
        await lowlevel.checkpoint()
        self.log.append(request)

    async def admit(self, request):
        if self.tokens <= 0:
            await lowlevel.checkpoint()
            return False
        if self._fixed:
            self.tokens -= 1
            await self._record(request)
        else:
            await self._record(request)
            # BUG: another request may have taken the last token meanwhile.
            self.tokens -= 1
        return True


async def rate_limited_requests(*, fixed=False):
    """Two requests against a limiter with one token; the second arrives a
    step later (it parses its input first). At most one may be admitted."""
    limiter = RateLimiter(1, fixed=fixed)
    admitted = []

    async def request(name, parse_steps):
        for _ in range(parse_steps):
            await lowlevel.checkpoint()
        if await limiter.admit(name):
            admitted.append(name)

    async with tether.open_nursery() as nursery:
        nursery.start_soon(request, "first", 0)
        nursery.start_soon(request, "second", 1)
    assert len(admitted) <= 1, f"admitted {admitted} with one token"


# -- a bug that needs k decisions ------------------------------------------------------


def needs_k_decisions(k):
    """A two-task program that fails under exactly one interleaving: each
    task takes k + 1 steps (k checkpoints), and the bug needs task B to run
    before task A in each of the k + 1 batches where both are runnable."""

    async def program():
        log = []

        async def worker(name):
            for _ in range(k):
                log.append(name)
                await lowlevel.checkpoint()
            log.append(name)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(worker, "A")
            nursery.start_soon(worker, "B")
        assert log != ["B", "A"] * (k + 1), "B overtook A at every step"

    program.__name__ = f"needs_{k}_decisions"
    return program


async def overtakes_once():
    """Fails only when B overtakes A at their first step and falls behind
    at the next: always-reverse misses it, other strategies find it."""
    log = []

    async def worker(name):
        for _ in range(3):
            log.append(name)
            await lowlevel.checkpoint()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(worker, "A")
        nursery.start_soon(worker, "B")
    assert log[:4] != ["B", "A", "A", "B"], "B overtook A once, then fell behind"

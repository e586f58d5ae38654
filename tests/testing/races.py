"""Small programs with known races, for testing the schedule explorer.

Each runs correctly under tether's default (FIFO) schedule, so an ordinary
test never sees the bug; each has a fixed twin that is correct under every
schedule.
"""

import tether
from tether import lowlevel


async def reader_before_writer():
    """The reader assumes the writer, started first, has run."""
    shared = {}

    async def writer():
        shared["config"] = "loaded"

    async def reader():
        assert "config" in shared, "the reader ran before the writer"

    async with tether.open_nursery() as nursery:
        nursery.start_soon(writer)
        nursery.start_soon(reader)


async def reader_after_writer():
    shared = {}
    written = tether.Event()

    async def writer():
        shared["config"] = "loaded"
        written.set()

    async def reader():
        await written.wait()
        assert "config" in shared

    async with tether.open_nursery() as nursery:
        nursery.start_soon(writer)
        nursery.start_soon(reader)


async def lost_update(*, fixed=False):
    """A read-modify-write across a checkpoint loses a concurrent update."""
    account = {"balance": 0}
    lock = tether.Lock()

    async def deposit():
        if fixed:
            async with lock:
                account["balance"] += 10
        else:
            account["balance"] += 10

    async def deposit_slowly():
        if fixed:
            async with lock:
                balance = account["balance"]
                await lowlevel.checkpoint()
                account["balance"] = balance + 10
        else:
            balance = account["balance"]
            await lowlevel.checkpoint()
            account["balance"] = balance + 10

    async with tether.open_nursery() as nursery:
        nursery.start_soon(deposit)
        nursery.start_soon(deposit_slowly)
    assert account["balance"] == 20, "a deposit was lost"


async def lost_update_fixed():
    await lost_update(fixed=True)


async def cancelled_producer(*, fixed=False):
    """A producer cancelled mid-way still signals "ready", stranding its
    consumer, when the cancellation lands between its two steps."""
    box = {}
    ready = tether.Event()
    producer_scope = tether.CancelScope()

    async def producer():
        with producer_scope:
            await lowlevel.checkpoint()
            box["value"] = 42
        if not fixed or "value" in box:
            ready.set()

    async def consumer():
        with tether.move_on_after(10):
            await ready.wait()
            assert "value" in box, "woken by a producer that was cancelled"

    async def impatient_caller():
        await lowlevel.checkpoint()
        producer_scope.cancel()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(producer)
        nursery.start_soon(consumer)
        nursery.start_soon(impatient_caller)


async def cancelled_producer_fixed():
    await cancelled_producer(fixed=True)


async def two_unlucky_decisions():
    """Fails only when the scheduler picks the same unlikely order (c, b, a)
    in two consecutive batches: about 1 schedule in 36."""
    log = []

    async def step(name):
        for _ in range(2):
            log.append(name)
            await lowlevel.checkpoint()

    async with tether.open_nursery() as nursery:
        for name in "abc":
            nursery.start_soon(step, name)
    assert log != list("cbacba"), "c overtook a and b twice in a row"


async def lock_order_inversion(*, fixed=False):
    """Two tasks take two locks in opposite orders: a deadlock when their
    first acquisitions interleave. Under an autojump clock the deadline turns
    the deadlock into an instant TooSlowError."""
    first, second = tether.Lock(), tether.Lock()

    async def one():
        async with first:
            await lowlevel.checkpoint()
            async with second:
                pass

    async def two():
        await lowlevel.checkpoint()
        await lowlevel.checkpoint()
        outer, inner = (first, second) if fixed else (second, first)
        async with outer:
            await lowlevel.checkpoint()
            async with inner:
                pass

    with tether.fail_after(5):
        async with tether.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(two)


async def lock_order_consistent():
    await lock_order_inversion(fixed=True)

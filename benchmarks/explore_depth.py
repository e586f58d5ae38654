"""How many examples a property test needs to find a bug of depth k.

    python3 benchmarks/explore_depth.py                 # k = 3..11, 10 seeds each
    python3 benchmarks/explore_depth.py --seeds 30 --ks 3,7,11 --limit 5000

The program under test has two tasks, A (started first) and B; each takes
k + 1 steps (k checkpoints) and appends its name at every step. It fails
under exactly one interleaving: B before A in each of the k + 1 batches in
which both are runnable. Under the default order (and FIFO) it passes.

For each k and each hypothesis seed, the script runs the property test with
hypothesis's generation phase only (no shrinking) and counts the examples up
to and including the first failure. It prints, per k, the median and the
worst count over the seeds, and how many seeds found nothing within
``--limit`` examples.

Rows:

- ``tether schedules()``: ``@given(schedule=tether.testing.schedules())``
  over a `tether_test`, as a user writes it.
- ``trio + hypothesis``, only if trio is installed: ``trio.run`` of the
  same program under ``@given(st.random_module())``, with trio's scheduler
  made deterministic and seeded by hypothesis the way pytest-trio does it
  (pytest-trio's plugin module is imported if installed; otherwise its two
  lines are done here, and the row says "emulated"). trio and pytest-trio
  are not tether dependencies; install them to get this row.

This measures search power, not speed; the wall time per row is printed for
information only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import tether
from tether import lowlevel
from tether.testing import schedules, tether_test

FAILURE = "B overtook A at every step"


def tether_program(k: int) -> Callable[[], Any]:
    async def program() -> None:
        log: list[str] = []

        async def worker(name: str) -> None:
            for _ in range(k):
                log.append(name)
                await lowlevel.checkpoint()
            log.append(name)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(worker, "A")
            nursery.start_soon(worker, "B")
        assert log != ["B", "A"] * (k + 1), FAILURE

    return program


def trio_program(trio: Any, k: int) -> Callable[[], Any]:
    async def program() -> None:
        log: list[str] = []

        async def worker(name: str) -> None:
            for _ in range(k):
                log.append(name)
                await trio.lowlevel.checkpoint()
            log.append(name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, "A")
            nursery.start_soon(worker, "B")
        assert log != ["B", "A"] * (k + 1), FAILURE

    return program


def _settings(limit: int) -> Any:
    return settings(
        max_examples=limit,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def examples_until_failure_tether(k: int, hypothesis_seed: int, limit: int) -> int | None:
    program = tether_program(k)
    counter = _Counter()

    @seed(hypothesis_seed)
    @_settings(limit)
    @given(schedule=schedules())
    @tether_test
    async def property_test(schedule: Any) -> None:
        with counter:
            await program()

    return counter.run(property_test)


def examples_until_failure_trio(trio: Any, k: int, hypothesis_seed: int, limit: int) -> int | None:
    program = trio_program(trio, k)
    counter = _Counter()

    @seed(hypothesis_seed)
    @_settings(limit)
    @given(st.random_module())
    def property_test(random_module: Any) -> None:
        with counter:
            trio.run(program)

    return counter.run(property_test)


class _Counter:
    """Counts the examples of a property test up to its first failure."""

    def __init__(self) -> None:
        self.examples = 0
        self.first_failure: int | None = None

    def __enter__(self) -> None:
        self.examples += 1

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and self.first_failure is None:
            self.first_failure = self.examples

    def run(self, test: Callable[[], None]) -> int | None:
        """Run `test` (without shrinking it stops at its first failure; it
        then runs the failing example once more, which is not counted) and
        return the number of the first failing example, or None."""
        try:
            test()
        except BaseException as exc:
            if FAILURE not in _all_messages(exc):
                raise
        return self.first_failure


def _all_messages(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return " ".join(_all_messages(inner) for inner in exc.exceptions)
    return str(exc)


def set_up_trio() -> tuple[Any, str] | None:
    """trio with pytest-trio's hypothesis hook in place, and the row's label;
    None if trio is not installed."""
    try:
        import trio
    except ImportError:
        return None
    try:
        import pytest_trio.plugin  # noqa: F401  (registers trio's Random on import)
    except ImportError:
        # What pytest-trio's plugin does on import: make trio's batch
        # shuffling deterministic, and let hypothesis seed its Random.
        from hypothesis import register_random

        trio._core._run._ALLOW_DETERMINISTIC_SCHEDULING = True
        register_random(trio._core._run._r)
        return trio, f"trio {trio.__version__} + hypothesis (pytest-trio hook emulated)"
    return trio, f"trio {trio.__version__} + pytest-trio + hypothesis random_module()"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="3,5,7,9,11", help="comma-separated depths")
    parser.add_argument("--seeds", type=int, default=10, help="hypothesis seeds per depth")
    parser.add_argument("--limit", type=int, default=3000, help="max examples per search")
    parser.add_argument("--no-trio", action="store_true", help="skip the trio row")
    options = parser.parse_args()
    ks = [int(k) for k in options.ks.split(",")]
    seeds = range(options.seeds)

    rows: list[tuple[str, Callable[[int, int], int | None]]] = [
        (
            f"tether {getattr(tether, '__version__', '')} schedules()".replace("  ", " "),
            lambda k, s: examples_until_failure_tether(k, s, options.limit),
        )
    ]
    trio_setup = None if options.no_trio else set_up_trio()
    if trio_setup is not None:
        trio, label = trio_setup
        rows.append((label, lambda k, s: examples_until_failure_trio(trio, k, s, options.limit)))
    elif not options.no_trio:
        print("trio is not installed: its row is skipped (pip install trio pytest-trio)")

    print(
        f"Examples until the first failure, median / worst over {options.seeds} hypothesis "
        f"seeds (limit {options.limit}; '>' = not found within it, n = seeds that found "
        "nothing)"
    )
    header = f"{'':<60}" + "".join(f"{'k=' + str(k):>20}" for k in ks) + f"{'time':>9}"
    print(header)
    for label, search in rows:
        cells = []
        started = time.perf_counter()
        for k in ks:
            found = [search(k, s) for s in seeds]
            cells.append(_cell(found, options.limit))
        elapsed = time.perf_counter() - started
        print(f"{label:<60}" + "".join(f"{cell:>20}" for cell in cells) + f"{elapsed:>8.1f}s")
        sys.stdout.flush()


def _cell(found: list[int | None], limit: int) -> str:
    counts = [limit + 1 if count is None else count for count in found]
    median = statistics.median(counts)
    worst = max(counts)
    missed = sum(1 for count in found if count is None)
    text = f"{_number(median, limit)} / {_number(worst, limit)}"
    return text + (f" n={missed}" if missed else "")


def _number(value: float, limit: int) -> str:
    if value > limit:
        return f">{limit}"
    return f"{value:g}"


if __name__ == "__main__":
    main()

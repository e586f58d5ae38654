"""Seeded schedules: exploring interleavings with hypothesis.

`tether.run(..., schedule_seed=N)` shuffles every batch of runnable tasks with
a `random.Random(N)`: each seed is one deterministic interleaving. A
`Schedule` packages a seed with virtual time (a fresh autojump `MockClock`),
so that running it twice gives the same interleaving *and* the same timing.
`schedules()` is the hypothesis strategy that draws them.

Any failure of a run under a `Schedule` carries a note naming the schedule and
how to replay it; hypothesis prints that note with the falsifying example.

hypothesis is a test extra, not a dependency: it is imported only when
`schedules()` is called.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .._core import Clock, Instrument, run
from ._mock_clock import MockClock

# pytest hides this module's frames in failure reports.
__tracebackhide__ = True

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

T = TypeVar("T")

#: Seeds are drawn from ``range(MAX_SEED + 1)``.
MAX_SEED = 2**32 - 1

# Exceptions that mean "stop", not "this interleaving is wrong".
_NOT_FAILURES = (KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass(frozen=True)
class Schedule:
    """One interleaving of a tether program, replayable.

    A run under ``Schedule(seed=N)`` is ``tether.run(..., schedule_seed=N)``
    on a fresh ``MockClock(autojump_threshold=0)``: the kernel shuffles each
    batch of runnable tasks from the seed, and time is virtual, so the same
    schedule gives the same run every time (as long as the program itself is
    deterministic: no real I/O, threads or wall-clock reads).

    Get them from hypothesis with `schedules()`, or write one down to replay
    a failure: ``Schedule(seed=N).run(main)``, or
    ``@hypothesis.example(schedule=Schedule(seed=N))`` on the test.

    Under the pytest plugin or `tether_test`, a `Schedule` among a test's
    arguments makes the test's run use it.

    Attributes:
      seed: the kernel's ``schedule_seed``.
      autojump: run on a fresh autojump `MockClock` (the default). With
        ``False``, the run uses the clock the test provides, or the system
        clock, and replays only the order of task steps, not the timing.
    """

    seed: int
    autojump: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"a schedule's seed is an int, got {self.seed!r}")

    def __repr__(self) -> str:
        if self.autojump:
            return f"Schedule(seed={self.seed})"
        return f"Schedule(seed={self.seed}, autojump=False)"

    def replay_note(self, argument: str | None = None) -> str:
        """The note added to an error raised by a run under this schedule.
        `argument` is the name of the test parameter the schedule was passed
        as, if any."""
        how = f"tether.run(..., schedule_seed={self.seed}"
        how += ", clock=MockClock(autojump_threshold=0))" if self.autojump else ")"
        example = f"@hypothesis.example({argument}={self!r}) on the test, or " if argument else ""
        return (
            f"tether: this run used {self!r}. Replay it with {example}"
            f"{self!r}.run(...), i.e. {how}."
        )

    def run(
        self,
        async_fn: Callable[..., Awaitable[T]],
        *args: object,
        clock: Clock | None = None,
        instruments: Sequence[Instrument] = (),
    ) -> T:
        """Run ``async_fn(*args)`` under this schedule with `tether.run` and
        return its result.

        With ``autojump=True`` and no `clock`, the run gets a fresh
        ``MockClock(autojump_threshold=0)``. An exception from the run is
        re-raised with a note (``add_note``) saying how to replay it.
        """
        return self._run(async_fn, args, clock, instruments, argument=None)

    def _run(
        self,
        async_fn: Callable[..., Awaitable[T]],
        args: Sequence[object],
        clock: Clock | None,
        instruments: Sequence[Instrument],
        *,
        argument: str | None,
    ) -> T:
        """`run`, for a test that took this schedule as its parameter
        `argument` (named in the replay note)."""
        if clock is None and self.autojump:
            clock = MockClock(autojump_threshold=0)
        try:
            return run(
                async_fn, *args, clock=clock, instruments=instruments, schedule_seed=self.seed
            )
        except BaseException as exc:
            self.annotate(exc, argument)
            raise

    def annotate(self, exc: BaseException, argument: str | None = None) -> None:
        """Add `replay_note` to `exc`, once; not to KeyboardInterrupt and
        other exceptions that are not failures."""
        if isinstance(exc, _NOT_FAILURES):
            return
        note = self.replay_note(argument)
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)


def schedules(*, autojump: bool = True) -> SearchStrategy[Schedule]:
    """A hypothesis strategy for `Schedule` objects.

    Use it as an argument of a property test::

        @pytest.mark.tether
        @hypothesis.given(schedule=tether.testing.schedules())
        async def test_no_lost_update(schedule):
            ...

    Each example runs the test body in its own ``tether.run`` under the
    drawn schedule (see `Schedule`). When an example fails, hypothesis
    shrinks the seed towards 0 along with the test's other arguments, and the
    failure is reported with the schedule (``Schedule(seed=N)``) and how to
    replay it.

    Needs hypothesis, which it imports on first call.
    """
    from hypothesis import strategies as st

    return st.builds(Schedule, seed=st.integers(0, MAX_SEED), autojump=st.just(autojump))

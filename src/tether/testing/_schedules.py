"""Schedules: exploring interleavings, replaying them, explaining failures.

A `Schedule` decides, at every point where more than one task could be
stepped next, which one is (a *decision*; see `_policies` for the
candidates and the default order), and may make a deadline fire at a chosen
step. Running under a schedule is running under a kernel `Explorer`, on
virtual time (a `MockClock` starting at 0 for every run) unless told
otherwise, so the same schedule gives the same run every time.

Kinds of schedules:

- ``Schedule.replay("4:1 9:1 cancel@2")``: the default order except at the
  listed decisions (decision 4 runs candidate 1, ...) and cancellations.
  Every failure under any schedule is reported with this form.
- ``Schedule(seed=N)``: a uniformly random candidate at every decision.
- `schedules()`: the hypothesis strategy. Its schedules draw each decision
  from hypothesis as the run goes, following one of several strategies
  (`_decisions` explains how hypothesis's shrinker then reduces a failing
  run to the fewest decisions that differ from the default order).

A failure under a schedule gets notes (``add_note``): how to replay it, and
the story of the run (`_story`); under hypothesis, only the final, shrunk
example tells its story, since recording one costs time at every step.

hypothesis is a test extra, not a dependency: it is imported only when
`schedules()` is called.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .. import CancelScope, run
from ..abc import Clock, Instrument
from ..lowlevel import SystemClock
from ._decisions import Decisions, DrawnDecisions, PolicyDecisions
from ._explorer import Explorer
from ._mock_clock import MockClock
from ._policies import (
    HORIZONS,
    Policy,
    Preemptions,
    PriorityChangePoints,
    RandomWalk,
    Reverse,
)
from ._story import Story
from ._watchdog import HangError, hang_error

# pytest hides this module's frames in failure reports.
__tracebackhide__ = True

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

T = TypeVar("T")

#: Seeds are drawn from ``range(MAX_SEED + 1)``.
MAX_SEED = 2**32 - 1
#: The most priority change points (PCT) or preemptions a drawn schedule
#: makes, plus one for PCT's depth.
MAX_DEPTH = 3
#: A drawn schedule makes a deadline fire at up to this many steps
#: (``schedules(cancellations=True)``).
MAX_CANCELLATIONS = 2
#: How far into the run (in cancellable steps) a drawn cancellation lands is
#: drawn from ``1 .. 2**bits`` with ``bits`` up to this.
MAX_CANCEL_BITS = 6

# The strategies a drawn schedule picks from, by the first number it draws.
# Index 0 must be "drawn": the shrinker moves that number towards 0, and a
# failing run found by another strategy then replays as drawn decisions.
# Repeats weight the simple, often successful strategies.
_DRAWN_STRATEGIES = (
    "drawn",
    "reverse",
    "pct",
    "preemptions",
    "reverse",
    "random",
    "pct",
    "reverse",
    "preemptions",
    "reverse",
)

_REPLAY_TOKEN = re.compile(r"(?:(\d+):(\d+)|cancel@(\d+))")

# Exceptions that mean "stop", not "this interleaving is wrong".
_NOT_FAILURES = (KeyboardInterrupt, SystemExit, GeneratorExit)


class Schedule:
    """One interleaving of a tether program, replayable.

    A run under a schedule makes a *decision* wherever more than one task
    could be stepped next: which of them goes first. The candidates are the
    batch's remaining tasks in the order they were started, and the default
    is the first of them (so under the default order, within each batch,
    tasks started earlier run first). Time is virtual: the run gets a fresh
    ``MockClock(autojump_threshold=0)``, or the `MockClock` the test brings,
    set back to 0. So the same schedule gives the same run every time, as
    long as the program itself is deterministic (no real I/O, threads or
    wall-clock reads).

    - ``Schedule.replay("4:1 9:1 cancel@2")``: the default order, except
      where listed (see `replay`). Failures are reported in this form.
    - ``Schedule(seed=N)``: a random candidate at every decision, from `N`.
    - ``Schedule()``: the default order everywhere.
    - `schedules()` draws schedules for hypothesis.

    Use one with ``schedule.run(main)``, or as a test's argument under the
    pytest plugin or `tether_test` (``@hypothesis.example(schedule=...)``
    replays a failure inside the property test). A failure is re-raised
    with notes: how to replay it, and the run step by step.

    A deadlock under a schedule (every task blocked, nothing that tether
    knows of able to wake one) is reported at once as `HangError`, with the
    task tree, instead of hanging.

    Attributes:
      seed: the random seed, or None.
      autojump: whether the run uses virtual time (the default). With
        ``False`` the run uses the clock the test provides, or the system
        clock, and replays only the order of steps, not their timing.
    """

    def __init__(self, seed: int | None = None, *, autojump: bool = True) -> None:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"a schedule's seed is an int, got {seed!r}")
        self.seed = seed
        self.autojump = bool(autojump)
        #: Decisions fixed by a replay: decision number -> candidate.
        self._fixed: dict[int, int] = {}
        #: Cancellable steps at which a deadline fires.
        self._cancel_at: tuple[int, ...] = ()
        #: The explorer of the latest run under this schedule.
        self._last: Explorer | None = None

    @classmethod
    def replay(cls, decisions: str, *, autojump: bool = True) -> Schedule:
        """The schedule written as `decisions`: the default order except
        where the text says otherwise. The text is what a failure under a
        schedule prints, space-separated items of two kinds:

        - ``D:C``: at the D-th decision of the run (counting from 1), run
          candidate C (the candidates being the tasks still to step in that
          batch, in the order they were started; 0 is the default);
        - ``cancel@N``: at the N-th *cancellable step* (a step of a task
          inside a cancel scope with a deadline, counting from 1), make that
          scope's deadline fire.

        ``Schedule.replay("")`` is the default order. Raises `ValueError`
        for text that is not in this form.
        """
        if not isinstance(decisions, str):
            raise TypeError(
                f"Schedule.replay() takes the text a failure printed, got {decisions!r}"
            )
        schedule = cls(autojump=autojump)
        fixed: dict[int, int] = {}
        cancel_at: list[int] = []
        for item in decisions.split():
            match = _REPLAY_TOKEN.fullmatch(item)
            if match is None:
                raise ValueError(
                    f"Schedule.replay(): cannot read {item!r} in {decisions!r}; expected items "
                    "like '4:1' (at decision 4, run candidate 1) or 'cancel@2' (make a deadline "
                    "fire at the 2nd cancellable step), separated by spaces"
                )
            number, candidate, cancel = match.groups()
            if cancel is not None:
                if int(cancel) < 1:
                    raise ValueError(f"Schedule.replay(): steps count from 1, got {item!r}")
                cancel_at.append(int(cancel))
                continue
            if int(number) < 1:
                raise ValueError(f"Schedule.replay(): decisions count from 1, got {item!r}")
            if int(number) in fixed:
                raise ValueError(f"Schedule.replay(): decision {number} is given twice")
            if int(candidate):
                fixed[int(number)] = int(candidate)
        schedule._fixed = fixed
        schedule._cancel_at = tuple(sorted(set(cancel_at)))
        return schedule

    # -- identity ------------------------------------------------------------------

    def _key(self) -> tuple[object, ...]:
        return (self.seed, self.autojump, tuple(sorted(self._fixed.items())), self._cancel_at)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Schedule or type(self) is not Schedule:
            return self is other
        return self._key() == other._key()

    def __hash__(self) -> int:
        if type(self) is not Schedule:
            return id(self)
        return hash(self._key())

    def __repr__(self) -> str:
        autojump = "" if self.autojump else ", autojump=False"
        if self.seed is not None:
            return f"Schedule(seed={self.seed}{autojump})"
        return f'Schedule.replay("{_replay_text(self._fixed, self._cancel_at)}"{autojump})'

    @property
    def last_run(self) -> Schedule | None:
        """What the latest run under this schedule did, as a
        ``Schedule.replay(...)`` that repeats it; None before any run."""
        explorer = self._last
        if explorer is None:
            return None
        return Schedule.replay(
            _replay_text(explorer.deviations, tuple(explorer.cancelled)), autojump=self.autojump
        )

    # -- running -------------------------------------------------------------------

    def run(
        self,
        async_fn: Callable[..., Awaitable[T]],
        *args: object,
        clock: Clock | None = None,
        instruments: Sequence[Instrument] = (),
    ) -> T:
        """Run ``async_fn(*args)`` under this schedule with `tether.run` and
        return its result.

        With ``autojump=True`` the run is on virtual time: a fresh
        ``MockClock(autojump_threshold=0)``, or `clock` if it is a
        `MockClock` (set back to time 0 first). An exception from the run is
        re-raised with notes saying how to replay it and how the run went.

        Raises:
          HangError: the run deadlocked (see `Schedule`).
          ValueError: with ``autojump=True``, `clock` is not a `MockClock`;
            or the schedule is a replay that does not fit the program (a
            decision names a candidate that was not there: the program, or
            its inputs, changed since the schedule was printed).
        """
        return self._run(async_fn, args, clock, instruments, argument=None)

    def _policy(self) -> Policy:
        return RandomWalk(self.seed) if self.seed is not None else Policy()

    def _decisions(self) -> Decisions:
        return PolicyDecisions(self._policy(), self._fixed)

    def _strategy(self) -> str | None:
        """The strategy's name, for the notes; None for a plain replay."""
        return "random" if self.seed is not None else None

    def _clock_for(self, clock: Clock | None) -> Clock:
        if isinstance(clock, MockClock):
            # hypothesis passes a test's fixtures to every example: each
            # run starts the clock from 0, so that a replay has the same times.
            clock._reset()
            return clock
        if not self.autojump:
            return clock if clock is not None else SystemClock()
        if clock is None:
            return MockClock(autojump_threshold=0)
        raise ValueError(
            f"{self!r} runs on virtual time, but the test also provides the clock {clock!r}. "
            "Bring a tether.testing.MockClock (it is then used, starting from time 0), or use "
            "Schedule(..., autojump=False) (schedules(autojump=False)) to run on your clock"
        )

    def _run(
        self,
        async_fn: Callable[..., Awaitable[T]],
        args: Sequence[object],
        clock: Clock | None,
        instruments: Sequence[Instrument],
        *,
        argument: str | None,
        on_deadlock: Callable[[str], HangError] | None = None,
    ) -> T:
        """`run`, for a test that took this schedule as its parameter
        `argument` (named in the replay note). `on_deadlock` reports a
        deadlock and returns the error (the pytest plugin's watchdog);
        by default the run is cancelled and the error raised after it."""
        clock = self._clock_for(clock)
        cancel_main = CancelScope()

        def cancel_on_deadlock(detail: str) -> HangError:
            # The tree first: once cancelled, the tasks no longer wait on
            # what deadlocked them.
            error = hang_error("the run", "deadlock", detail)
            cancel_main.cancel()
            return error

        explorer = Explorer(
            self._decisions(),
            clock=clock,
            cancel_at=frozenset(self._cancel_at),
            story=Story() if _tells_story() else None,
            on_deadlock=on_deadlock if on_deadlock is not None else cancel_on_deadlock,
            abort_run=cancel_main.cancel,
        )
        self._last = explorer

        async def main() -> Any:
            with cancel_main:
                return await async_fn(*args)

        # The main task is named after the function it runs, not this wrapper.
        named: Any = async_fn
        while isinstance(named, functools.partial):
            named = named.func
        if isinstance(getattr(named, "__qualname__", None), str):
            main.__qualname__ = named.__qualname__
            main.__module__ = getattr(named, "__module__", None) or main.__module__

        try:
            result = run(main, clock=clock, instruments=instruments, scheduler=explorer)
        except BaseException as exc:
            if explorer.aborted is not None:
                # (What the cancelled run raised does not matter.)
                raise explorer.aborted from None
            self._raise_failure(exc, explorer, argument, on_deadlock)
        if explorer.aborted is not None:
            raise explorer.aborted
        if explorer.deadlock is not None and on_deadlock is None:
            self._raise_failure(explorer.deadlock, explorer, argument, on_deadlock)
        if explorer.mismatch is not None:
            self._raise_failure(
                ValueError(self._mismatch_text(explorer)), explorer, argument, on_deadlock
            )
        return result  # type: ignore[no-any-return]

    def _raise_failure(
        self,
        exc: BaseException,
        explorer: Explorer,
        argument: str | None,
        on_deadlock: Callable[[str], HangError] | None,
    ) -> NoReturn:
        deadlock = explorer.deadlock
        if on_deadlock is None and deadlock is not None and exc is not deadlock:
            # The deadlock is the story; what the cancelled tasks raised
            # comes with it.
            self._annotate(deadlock, explorer, argument)
            raise deadlock from exc
        self._annotate(exc, explorer, argument)
        raise exc

    # -- reporting -----------------------------------------------------------------

    def _mismatch_text(self, explorer: Explorer) -> str:
        assert explorer.mismatch is not None
        decision, candidate, count = explorer.mismatch
        return (
            f"{self!r} does not fit this run: decision {decision} asks for candidate "
            f"{candidate}, but only {count} tasks could run there (candidates 0 to "
            f"{count - 1}). The program or its inputs changed since the schedule was "
            "printed, or the program is not deterministic (real I/O, threads, wall-clock "
            "reads); the run used the default order from there on"
        )

    def _annotate(self, exc: BaseException, explorer: Explorer, argument: str | None) -> None:
        if isinstance(exc, _NOT_FAILURES):
            return
        if any(note.startswith("tether: this run ") for note in getattr(exc, "__notes__", ())):
            return
        replay = Schedule.replay(
            _replay_text(explorer.deviations, tuple(explorer.cancelled)), autojump=self.autojump
        )
        strategy = self._strategy()
        found = f", found by the {strategy!r} strategy" if strategy else ""
        if replay == self or strategy is None:
            used = f"tether: this run used {replay!r}{found}."
        else:
            used = f"tether: this run used {self!r}, which made the decisions of {replay!r}{found}."
        if argument is None:
            example = ""
        elif isinstance(self, _DrawnSchedule):
            example = f"@hypothesis.example({argument}={replay!r}) on the test, or "
        else:
            example = f"{argument}={replay!r} as the test's argument, or "
        exc.add_note(f"{used} Replay it with {example}{replay!r}.run(...).")
        if explorer.mismatch is not None and exc.__class__ is not ValueError:
            exc.add_note("tether: " + self._mismatch_text(explorer))
        story = explorer.deadlock_story if explorer.deadlock is not None else None
        if explorer.story is not None:
            if story is None:
                story = explorer.format_story("")
            exc.add_note(story.lstrip("\n"))

    def annotate(self, exc: BaseException, argument: str | None = None) -> None:
        """Add this schedule's notes about its latest run (how to replay
        it, and how it went) to `exc`, once; not to KeyboardInterrupt and
        other exceptions that are not failures."""
        if self._last is not None:
            self._annotate(exc, self._last, argument)


class _DrawnSchedule(Schedule):
    """A schedule whose decisions hypothesis draws as the run goes (see
    `schedules`). Its header (strategy, seed, depth, horizon, cancellations)
    is drawn when the schedule is."""

    def __init__(self, data: Any, autojump: bool, cancellations: bool) -> None:
        super().__init__(autojump=autojump)
        # (Forcing draws needs hypothesis's own data object; see _decisions.)
        self._data = data.conjecture_data
        draw = self._data.draw_integer
        self.strategy = _DRAWN_STRATEGIES[draw(0, len(_DRAWN_STRATEGIES) - 1)]
        self._seed = draw(0, MAX_SEED)
        self._depth = draw(1, MAX_DEPTH)
        self._horizon = HORIZONS[draw(0, len(HORIZONS) - 1)]
        cancel_at: list[int] = []
        if cancellations:
            # 0 and 1 mean none, so that most runs are about order alone.
            for _ in range(max(0, draw(0, MAX_CANCELLATIONS + 1) - 1)):
                cancel_at.append(draw(1, 2 ** draw(1, MAX_CANCEL_BITS)))
        self._cancel_at = tuple(sorted(set(cancel_at)))

    def __repr__(self) -> str:
        if self._last is not None:
            return repr(self.last_run)
        return (
            "<schedule drawn by hypothesis as the run goes; the note "
            "'tether: this run used ...' shows its decisions>"
        )

    def _policy(self) -> Policy:
        if self.strategy == "reverse":
            return Reverse()
        if self.strategy == "pct":
            return PriorityChangePoints(self._seed, self._depth, self._horizon)
        if self.strategy == "preemptions":
            return Preemptions(self._seed, self._depth, self._horizon)
        if self.strategy == "random":
            return RandomWalk(self._seed)
        return Policy()

    def _decisions(self) -> Decisions:
        return DrawnDecisions(self._policy(), self._data, explicit=self.strategy == "drawn")

    def _strategy(self) -> str | None:
        return None if self.strategy == "drawn" else self.strategy


def _replay_text(decisions: dict[int, int], cancel_at: Sequence[int]) -> str:
    items = [f"{number}:{candidate}" for number, candidate in sorted(decisions.items())]
    items += [f"cancel@{step}" for step in cancel_at]
    return " ".join(items)


def _tells_story() -> bool:
    """Whether runs should record their story: always, except while
    hypothesis searches (it re-runs the failing example at the end, and
    that run tells it)."""
    control = sys.modules.get("hypothesis.control")
    if control is None:
        return True
    try:
        context = control.current_build_context()
    except Exception:  # not inside a hypothesis test
        return True
    return bool(context.is_final)


def schedules(*, autojump: bool = True, cancellations: bool = False) -> SearchStrategy[Schedule]:
    """A hypothesis strategy for `Schedule` objects that explore a test's
    interleavings.

    Use it as an argument of a property test::

        @pytest.mark.tether
        @hypothesis.given(schedule=tether.testing.schedules())
        async def test_no_lost_update(schedule):
            ...

    Each example runs the test body in its own ``tether.run`` under the
    drawn schedule. Its decisions (which runnable task goes next) are drawn
    from hypothesis as the run goes, following one strategy per example:
    decisions drawn one by one; the reverse of the default order; random
    priorities with a few priority changes (PCT); the default order with one
    to three preemptions; or uniformly random. When an example fails,
    hypothesis shrinks its decisions to the fewest that differ from the
    default order and still fail, and the failure is reported with the run
    step by step and a ``Schedule.replay("...")`` that repeats it.

    Args:
      autojump: run on virtual time (see `Schedule`).
      cancellations: also let schedules make the deadline of a cancel scope
        fire at a chosen step of the task inside it (up to two per run):
        cancellation bugs hide between checkpoints. Only for properties that
        must hold whenever a deadline fires, since the deadline fires
        earlier than its time would.

    Needs hypothesis, which it imports on first call. Runs have at most
    1000 drawn decisions (`MAX_DRAWN_DECISIONS`); later ones follow the
    example's strategy without being shrunk.
    """
    from hypothesis import strategies as st

    @st.composite
    def drawn_schedules(draw: Callable[..., Any]) -> Schedule:
        # (A composite, not builds(): hypothesis then prints the schedule's
        # own repr in a failing test case.)
        return _DrawnSchedule(draw(st.data()), bool(autojump), bool(cancellations))

    strategy: SearchStrategy[Schedule] = drawn_schedules()
    return strategy

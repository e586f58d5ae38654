"""What a test's arguments say about the run it wants.

A test asks for run settings by taking them as arguments (usually pytest
fixtures or hypothesis draws): a `Clock` becomes the run's clock, each
`Instrument` is installed, and a `Schedule` makes the run seeded. Both
`tether_test` and the pytest plugin read arguments this way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from .. import run
from ..abc import Clock, Instrument
from ._schedules import Schedule
from ._watchdog import HangError

# pytest hides this module's frames in failure reports.
__tracebackhide__ = True

T = TypeVar("T")


@dataclass
class RunOptions:
    clock: Clock | None = None
    instruments: list[Instrument] = field(default_factory=list)
    schedule: Schedule | None = None
    #: The name of the argument that held the schedule, for the replay note.
    schedule_argument: str | None = None
    #: Reports a deadlock a schedule noticed and returns the error (the
    #: plugin's watchdog); by default the schedule raises it after the run.
    on_deadlock: Callable[[str], HangError] | None = None

    @classmethod
    def from_arguments(
        cls, arguments: Mapping[str, object], others: Iterable[object] = (), *, test: str
    ) -> RunOptions:
        """Collect the settings among `arguments` (by name) and `others` (for
        instance fixtures the test does not take directly). An object seen
        twice counts once; two different clocks or schedules are an error
        naming `test`."""
        options = cls()
        seen: set[int] = set()
        named: list[tuple[str | None, object]] = list(arguments.items())
        named += [(None, value) for value in others]
        for name, value in named:
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, Clock):
                if options.clock is not None:
                    raise ValueError(
                        f"{test} has two clocks, {options.clock!r} and {value!r}; "
                        "a run has one clock"
                    )
                options.clock = value
            elif isinstance(value, Instrument):
                options.instruments.append(value)
            elif isinstance(value, Schedule):
                if options.schedule is not None and options.schedule != value:
                    raise ValueError(
                        f"{test} has two schedules, {options.schedule!r} and {value!r}; "
                        "a run has one schedule"
                    )
                options.schedule = value
                if name is not None:
                    options.schedule_argument = name
        return options

    def run(self, async_fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """`tether.run` with these settings. Under a schedule, a fresh
        autojump `MockClock` unless the test brought one (which then starts
        from 0), and any exception gets the schedule's notes."""
        if self.schedule is None:
            return run(async_fn, *args, clock=self.clock, instruments=self.instruments)
        return self.schedule._run(
            async_fn,
            args,
            self.clock,
            self.instruments,
            argument=self.schedule_argument,
            on_deadlock=self.on_deadlock,
        )

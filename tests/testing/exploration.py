"""Exploring a program's schedules the way a user's property test does, and
reading what the failure reports."""

import re
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings

from tether.testing import Schedule, schedules, tether_test

REPLAY = re.compile(r'this run used (Schedule\.replay\("([^"]*)"\))')


@dataclass
class Exploration:
    runs: int  # how many examples hypothesis ran
    failing: list  # the (1-based) numbers of the examples that failed
    error: BaseException | None  # what hypothesis finally raised

    @property
    def first_failure(self):
        """The number of the first failing example (1 = the first run)."""
        return self.failing[0] if self.failing else None

    @property
    def notes(self):
        return "\n".join(getattr(self.error, "__notes__", ()))

    @property
    def replay_text(self):
        """The decisions of the reported (shrunk) failure, as printed."""
        match = REPLAY.search(self.notes)
        assert match, self.notes
        return match.group(2)

    @property
    def reported(self):
        return Schedule.replay(self.replay_text)


def explore(program, *, max_examples, cancellations=False, shrink=True):
    """Property-test `program` under drawn schedules (hypothesis
    derandomized, so that the counts are fixed facts), as a user would."""
    runs = 0
    failing = []

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        report_multiple_bugs=False,
        **({} if shrink else {"phases": [Phase.explicit, Phase.generate]}),
    )
    @given(schedule=schedules(cancellations=cancellations))
    @tether_test
    async def property_test(schedule):
        nonlocal runs
        runs += 1
        try:
            await program()
        except BaseException:
            failing.append(runs)
            raise

    try:
        property_test()
    except BaseException as exc:
        return Exploration(runs, failing, exc)
    return Exploration(runs, failing, None)


def failure_of(program, schedule):
    """What running `program` under `schedule` raises, or None."""
    try:
        schedule.run(program)
    except BaseException as exc:
        return exc
    return None


def leaves(exc):
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in leaves(e)]
    return [exc]


def has_leaf(exc, error_type):
    return any(isinstance(leaf, error_type) for leaf in leaves(exc))

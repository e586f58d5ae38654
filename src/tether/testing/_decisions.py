"""Where a schedule's decisions come from: a policy, a replay, or hypothesis.

`Decisions.choose` is asked at every decision (see `_policies`) and returns
the index of the candidate to run next. Three sources:

- `PolicyDecisions`: what a policy proposes, except where a replay string
  fixed the decision (a replay is the default policy plus fixed decisions).
- `DrawnDecisions`: drawn from hypothesis's data as the run goes, so that
  hypothesis's shrinker works on the decisions themselves. In *explicit*
  mode each decision is a free draw (0, the default order, is what the
  shrinker moves towards). Under a policy each decision is still a draw,
  but *forced* to the policy's proposal: the choice sequence then holds the
  actual decisions, and when the shrinker switches the mode to explicit,
  the same choices replay the same run. From there it zeroes the decisions
  the failure does not need, down to the fewest non-default ones.

Forcing a draw is not public hypothesis API: this module reaches
``DataObject.conjecture_data`` and ``ConjectureData.draw_integer(...,
forced=)``, which hypothesis has had since 6.100 (the oldest release tether
supports). Everything else about hypothesis stays in `_schedules`.
"""

from __future__ import annotations

from typing import Any

from ._policies import Policy

#: At most this many decisions of one run are drawn from hypothesis; later
#: ones follow the policy (explicit mode: the default order) without a
#: draw, so that a long run does not overflow hypothesis's choice sequence.
MAX_DRAWN_DECISIONS = 1000


class Decisions:
    """A source of decisions for one run."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        #: A decision that a replay fixed but that did not fit the run, as
        #: ``(decision, value, candidates)``; reported after the run.
        self.mismatch: tuple[int, int, int] | None = None

    def choose(self, decision: int, proposal: int, candidates: int) -> int:
        """The candidate (index below `candidates`) for the `decision`-th
        decision, given the policy's `proposal`."""
        return proposal


class PolicyDecisions(Decisions):
    """The policy's proposals, except at the decisions in `fixed`."""

    def __init__(self, policy: Policy, fixed: dict[int, int]) -> None:
        super().__init__(policy)
        self._fixed = fixed

    def choose(self, decision: int, proposal: int, candidates: int) -> int:
        value = self._fixed.get(decision)
        if value is None:
            return proposal
        if value >= candidates:
            if self.mismatch is None:
                self.mismatch = (decision, value, candidates)
            return proposal
        return value


class DrawnDecisions(Decisions):
    """Decisions drawn from hypothesis's `data` (a ``ConjectureData``):
    free draws when `explicit`, else forced to the policy's proposals."""

    def __init__(self, policy: Policy, data: Any, *, explicit: bool) -> None:
        super().__init__(policy)
        self._data = data
        self._explicit = explicit
        self._drawn = 0

    def choose(self, decision: int, proposal: int, candidates: int) -> int:
        if self._drawn >= MAX_DRAWN_DECISIONS:
            return 0 if self._explicit else proposal
        self._drawn += 1
        if self._explicit:
            value: int = self._data.draw_integer(0, candidates - 1)
        else:
            value = self._data.draw_integer(0, candidates - 1, forced=proposal)
        return value

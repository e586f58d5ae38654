"""The worked example from docs/testing.md: a property test that finds the
cancellation bug in docs/examples/buggy_cache.py, shrinks it, replays it, and
passes once the cache is fixed.

The buggy cache stays buggy on purpose: these tests check that exploring
schedules finds its bug within a bounded number of examples.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tether
from tether.testing import MockClock, Schedule, schedules, tether_test

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "buggy_cache.py"
spec = importlib.util.spec_from_file_location("buggy_cache", EXAMPLE)
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)

# Clients willing to wait 0.5 s (less than a fetch takes) or 5 s.
patience_lists = st.lists(st.sampled_from([0.5, 5.0]), min_size=1, max_size=4)


# The property test, as docs/testing.md writes it, against the fixed cache.
@pytest.mark.tether
@settings(max_examples=100, deadline=None)
@given(schedule=schedules(), patience=patience_lists)
async def test_every_patient_client_gets_the_value(schedule, patience):
    await example.every_patient_client_gets_the_value(example.Cache, patience)


# -- the same property against the buggy cache ---------------------------------------


def explore_buggy_cache(*, max_examples, patience=patience_lists):
    """Run the property test on BuggyCache; return every example it ran (in
    order; hypothesis runs the shrunk failing example last), the indexes of
    the failing ones, and the error it reported."""
    examples, failing = [], []

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        # One KeyError or two in the nursery's group: the same bug.
        report_multiple_bugs=False,
    )
    @given(schedule=schedules(), patience=patience)
    @tether_test
    async def property_test(schedule, patience):
        examples.append((schedule, patience))
        try:
            await example.every_patient_client_gets_the_value(example.BuggyCache, patience)
        except BaseException:
            failing.append(len(examples) - 1)
            raise

    with pytest.raises(ExceptionGroup) as excinfo:
        property_test()
    return examples, failing, excinfo.value


def test_the_bug_hides_from_the_default_schedule():
    tether.run(
        example.every_patient_client_gets_the_value,
        example.BuggyCache,
        [5.0, 0.5],
        clock=MockClock(autojump_threshold=0),
    )


def test_exploring_schedules_finds_the_bug():
    # The patient client starts first, so only the schedule can reveal it.
    _, failing, error = explore_buggy_cache(max_examples=10, patience=st.just([5.0, 0.5]))
    assert failing and failing[0] < 10
    assert error.subgroup(KeyError) is not None
    # Shrunk to one decision: the impatient client (started second) runs
    # first, and so does the fetch.
    notes = "\n".join(error.__notes__)
    assert 'this run used Schedule.replay("1:1")' in notes
    assert (
        "^ decision 1: client(1, 0.5) ran before client(0, 5.0), which the default order runs first"
    ) in notes


def test_the_full_property_finds_and_shrinks_the_bug():
    examples, failing, error = explore_buggy_cache(max_examples=100)
    assert failing and failing[0] < 20
    # Shrunk to the smallest story: one impatient client started first, one
    # patient one, in the default order.
    _, patience = examples[-1]
    assert patience == [0.5, 5.0]
    notes = "\n".join(error.__notes__)
    decisions = re.search(r'this run used Schedule\.replay\("([^"]*)"\)', notes).group(1)
    assert decisions == ""
    assert f"patience={patience!r}" in notes
    # The printed schedule replays the failure; the fixed cache passes it.
    for _ in range(3):
        with pytest.raises(ExceptionGroup) as replayed:
            Schedule.replay(decisions).run(
                example.every_patient_client_gets_the_value, example.BuggyCache, patience
            )
        assert replayed.group_contains(KeyError)
    Schedule.replay(decisions).run(
        example.every_patient_client_gets_the_value, example.Cache, patience
    )


def test_the_example_script_runs():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True, timeout=60
    )
    assert "default schedule, buggy cache: passes" in result.stdout
    assert "replayed three times: [True, True, True]" in result.stdout
    assert "fixed cache survives 200 schedules: True" in result.stdout

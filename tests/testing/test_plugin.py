"""The pytest plugin, tested through pytest's own `pytester`.

Each test writes a small test file, runs pytest on it (in this process
unless it needs its own signal handlers) and checks the outcome and output.
"""

import importlib.util
import re
import textwrap

import pytest

from tether.testing import Schedule
from tether.testing._pytest_plugin import _hang_timeout

pytest_plugins = ["pytester"]


def run(pytester, source, *args, ini=""):
    pytester.makeini("[pytest]\n" + textwrap.dedent(ini))
    pytester.makepyfile(textwrap.dedent(source))
    return pytester.runpytest("-p", "no:cacheprovider", *args)


# -- which tests run under tether -------------------------------------------------


def test_marked_async_tests_run_under_tether(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.mark.tether
        async def test_marked():
            await tether.sleep(0)
            assert tether.lowlevel.in_tether_task()

        async def test_unmarked():
            pass

        def test_sync():
            assert not tether.lowlevel.in_tether_run()
        """,
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*_ test_unmarked _*", "*not natively supported*", "*mark it @pytest.mark.tether*"]
    )


def test_a_marker_on_a_class_or_module_applies_to_its_async_tests(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        pytestmark = pytest.mark.tether

        async def test_async():
            await tether.sleep(0)

        def test_sync_tests_are_left_alone():
            assert not tether.lowlevel.in_tether_run()
        """,
    )
    result.assert_outcomes(passed=2)


def test_tether_mode_runs_every_async_test(pytester):
    result = run(
        pytester,
        """
        import tether

        async def test_unmarked():
            await tether.sleep(0)
            assert tether.lowlevel.in_tether_task()
        """,
        ini="tether_mode = true",
    )
    result.assert_outcomes(passed=1)


def test_failures_show_the_test_code(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.mark.tether
        async def test_fails():
            await tether.sleep(0)
            value = 1
            assert value == 2
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 1 == 2*"])
    # The traceback starts in the test, not in tether.run.
    assert "_run.py" not in result.stdout.str()


def test_skip_and_xfail_work(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.mark.tether
        async def test_skips():
            await tether.sleep(0)
            pytest.skip("not today")

        @pytest.mark.tether
        @pytest.mark.xfail(raises=KeyError, strict=True)
        async def test_xfails():
            raise KeyError("x")
        """,
    )
    result.assert_outcomes(skipped=1, xfailed=1)


# -- fixtures ---------------------------------------------------------------------

FIXTURE_ORDER = """
    import contextvars
    import pytest
    import tether

    log = []
    var = contextvars.ContextVar("var", default="unset")

    def record(what):
        log.append((what, tether.current_time()))

    @pytest.fixture
    def sync_value():
        return "s"

    @pytest.fixture(autouse=True)
    async def autouse_fixture():
        record("autouse setup")
        await tether.sleep(1)
        yield
        record("autouse teardown")

    @pytest.fixture
    async def a(sync_value):
        record("a setup")
        await tether.sleep(1)
        var.set("set by a")
        yield "a" + sync_value
        await tether.sleep(1)
        record("a teardown")

    @pytest.fixture
    async def b():
        record("b setup")
        await tether.sleep(1)
        return "b"

    @pytest.fixture
    async def c(a):
        record("c setup")
        await tether.sleep(1)
        yield a + "c"
        record("c teardown")

    @pytest.fixture
    def d(c, request):
        # A sync fixture that needs an async one runs inside the run too.
        assert tether.lowlevel.in_tether_task()
        assert request.fixturename == "d"
        record("d setup")
        yield c + "d"
        record("d teardown")

    @pytest.mark.tether
    async def test_uses_fixtures(d, b, autojump_clock):
        record("test")
        assert d == "ascd"
        assert b == "b"
        assert var.get() == "set by a"

    def test_order():
        assert log == [
            ("autouse setup", 0),
            ("a setup", 1),
            ("b setup", 1),
            ("c setup", 2),
            ("d setup", 3),
            ("test", 3),
            ("d teardown", 3),
            ("c teardown", 3),
            ("a teardown", 4),
            ("autouse teardown", 4),
        ]
"""


def test_fixtures_set_up_in_dependency_order_inside_the_run(pytester):
    # The autouse fixture comes first (t=0..1); a and b are independent: they
    # set up concurrently (both done at t=2); c waits for a, d for c;
    # teardown goes the other way round.
    result = run(pytester, FIXTURE_ORDER)
    result.assert_outcomes(passed=2)


def test_fixture_order_holds_under_every_seeded_schedule(pytester):
    # Under a schedule, independent fixtures set up in either order, but a
    # fixture always sets up after, and tears down before, what it uses.
    result = run(
        pytester,
        """
        import hypothesis
        import pytest
        import tether
        from tether.testing import schedules

        runs = []

        @pytest.fixture
        async def log():
            events = []
            yield events
            runs.append(events)

        @pytest.fixture
        async def a(log):
            log.append("a setup")
            yield
            log.append("a teardown")

        @pytest.fixture
        async def b(log):
            log.append("b setup")
            yield
            log.append("b teardown")

        @pytest.fixture
        async def c(a, log):
            log.append("c setup")
            yield
            log.append("c teardown")

        @pytest.mark.tether
        @hypothesis.settings(
            max_examples=30,
            derandomize=True,
            database=None,
            suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
        )
        @hypothesis.given(schedule=schedules())
        async def test_uses_fixtures(log, b, c, schedule):
            log.append("test")

        def test_orders():
            assert len(runs) == 30
            for events in runs:
                assert sorted(events) == sorted(
                    ["a setup", "b setup", "c setup", "test",
                     "a teardown", "b teardown", "c teardown"]
                )
                at = events.index
                assert at("a setup") < at("c setup") < at("test")
                assert at("b setup") < at("test")
                assert at("test") < at("c teardown") < at("a teardown")
                assert at("test") < at("b teardown")
            assert {events.index("a setup") < events.index("b setup") for events in runs} == {
                True,
                False,
            }
        """,
    )
    result.assert_outcomes(passed=2)


def test_an_error_in_fixture_setup_fails_the_test_and_tears_down_the_rest(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        log = []

        @pytest.fixture
        async def good():
            yield
            log.append("good torn down")

        @pytest.fixture
        async def bad(good):
            await tether.sleep(0)
            raise LookupError("setup failed")

        @pytest.fixture
        async def slow():
            try:
                await tether.sleep_forever()
            except tether.Cancelled:
                log.append("slow setup cancelled")
                raise

        @pytest.mark.tether
        async def test_never_runs(bad, slow):
            log.append("test ran")

        def test_log():
            assert log == ["slow setup cancelled", "good torn down"]
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*LookupError: setup failed*"])


def test_an_error_in_fixture_teardown_fails_the_test(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.fixture
        async def breaks_on_teardown():
            yield
            await tether.sleep(0)
            raise OSError("teardown failed")

        @pytest.mark.tether
        async def test_it(breaks_on_teardown):
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*OSError: teardown failed*"])


def test_every_error_is_reported(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.fixture
        async def breaks_on_teardown():
            yield
            raise OSError("teardown failed")

        @pytest.mark.tether
        async def test_it(breaks_on_teardown):
            raise ValueError("test failed")
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*2 errors in test_every_error_is_reported.py::test_it and its fixtures*"]
    )
    output = result.stdout.str()
    assert "OSError: teardown failed" in output
    assert "ValueError: test failed" in output


def test_a_fixture_must_yield_once(pytester):
    result = run(
        pytester,
        """
        import pytest

        @pytest.fixture
        async def twice():
            yield 1
            yield 2

        @pytest.fixture
        async def never():
            return
            yield

        @pytest.mark.tether
        async def test_twice(twice):
            pass

        @pytest.mark.tether
        async def test_never(never):
            pass
        """,
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*fixture 'twice' yielded more than once*", "*fixture 'never' did not yield a value*"]
    )


def test_an_error_in_a_background_task_fails_the_test_with_that_error(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        log = []

        async def crash_later():
            await tether.sleep(1)
            raise ConnectionResetError("background task failed")

        @pytest.mark.tether
        async def test_nursery_fixture(nursery, autojump_clock):
            nursery.start_soon(crash_later)
            try:
                await tether.sleep_forever()
            except tether.Cancelled:
                log.append(("test cancelled at", tether.current_time()))
                raise

        @pytest.fixture
        async def server():
            async with tether.open_nursery() as nursery:
                nursery.start_soon(crash_later)
                yield "server"
                nursery.cancel_scope.cancel()

        @pytest.mark.tether
        async def test_own_fixture_nursery(server, autojump_clock):
            await tether.sleep(5)
            log.append("not reached")

        def test_log():
            assert log == [("test cancelled at", 1)]
        """,
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*ConnectionResetError: background task failed*",
            "FAILED *test_nursery_fixture*",
            "FAILED *test_own_fixture_nursery*",
        ]
    )


def test_the_nursery_fixture_is_cancelled_when_the_test_ends(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        log = []

        async def forever():
            try:
                await tether.sleep_forever()
            finally:
                log.append("background task cancelled")

        @pytest.mark.tether
        async def test_it(nursery):
            nursery.start_soon(forever)
            await tether.testing.wait_all_tasks_blocked()

        def test_log():
            assert log == ["background task cancelled"]
        """,
    )
    result.assert_outcomes(passed=2)


def test_clock_fixtures(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.mark.tether
        async def test_autojump(autojump_clock):
            await tether.sleep(86400)
            assert tether.current_time() == 86400
            assert tether.lowlevel.current_clock() is autojump_clock

        @pytest.mark.tether
        async def test_mock(mock_clock, nursery):
            woke = tether.Event()

            async def sleeper():
                await tether.sleep(10)
                woke.set()

            nursery.start_soon(sleeper)
            await tether.testing.wait_all_tasks_blocked()
            mock_clock.jump(10)
            await woke.wait()
            assert tether.current_time() == 10

        @pytest.fixture
        def server_clock(autojump_clock):
            return "a fixture the test uses, which uses the clock"

        @pytest.mark.tether
        async def test_clock_found_through_other_fixtures(server_clock):
            await tether.sleep(100)
            assert tether.current_time() == 100

        @pytest.mark.tether
        async def test_two_clocks(autojump_clock, mock_clock):
            pass
        """,
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_two_clocks*has two clocks*"])


def test_fixtures_in_classes_and_parametrized_fixtures(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.fixture(params=[1, 2])
        async def number(request):
            await tether.sleep(0)
            return request.param

        @pytest.mark.tether
        class TestInAClass:
            @pytest.fixture
            async def doubled(self, number):
                return 2 * number + self.offset

            offset = 0

            async def test_doubled(self, doubled, number):
                assert doubled == 2 * number
        """,
    )
    result.assert_outcomes(passed=2)


def test_misused_fixtures_get_clear_errors(pytester):
    result = run(
        pytester,
        """
        import pytest

        @pytest.fixture(scope="module")
        async def shared():
            return 1

        @pytest.mark.tether
        async def test_module_scoped(shared):
            pass

        def test_sync_with_nursery(nursery):
            pass
        """,
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*fixture 'shared' has scope 'module'*make it function-scoped*",
            "*the 'nursery' fixture works only in tether tests*",
        ]
    )


# -- hypothesis -------------------------------------------------------------------

RACY_TEST = """
    import hypothesis
    import pytest
    import tether
    from tether.testing import schedules

    async def program():
        account = {"balance": 0}

        async def deposit():
            account["balance"] += 10

        async def deposit_slowly():
            balance = account["balance"]
            await tether.lowlevel.checkpoint()
            account["balance"] = balance + 10

        async with tether.open_nursery() as nursery:
            nursery.start_soon(deposit)
            nursery.start_soon(deposit_slowly)
        assert account["balance"] == 20

    @pytest.mark.tether
    @hypothesis.settings(max_examples=50, derandomize=True, database=None)
    @hypothesis.given(schedule=schedules())
    async def test_no_lost_deposit(schedule):
        await program()
"""


def test_a_race_found_by_hypothesis_is_reported_with_its_schedule(pytester):
    result = run(pytester, RACY_TEST)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    match = re.search(r'this run used Schedule\.replay\("([^"]*)"\)', output)
    assert match, output
    decisions = match.group(1)
    assert decisions == "1:1"  # deposit_slowly before deposit, and nothing else
    # hypothesis says "Falsifying example:" in older releases and "Failing
    # test case:" in newer ones.
    result.stdout.re_match_lines(
        [
            r".*Replay it with @hypothesis\.example\(schedule=Schedule\.replay\(\"1:1\"\)\).*",
            r".*How the run went: .* 1 scheduling decision \(1 not the default order, "
            r"marked \*\).*",
            r".*\* .*deposit_slowly +start -> test_a_race.*\.py:\d+ in deposit_slowly: "
            r"await tether\.lowlevel\.checkpoint\(\)",
            r".*\^ decision 1: deposit_slowly ran before deposit, which the default order runs "
            r"first",
            r".*(Falsifying example|Failing test case): test_no_lost_deposit\(.*",
        ]
    )
    # The printed schedule replays the failure outside pytest.
    (path,) = pytester.path.glob("test_*.py")
    spec = importlib.util.spec_from_file_location("racy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(AssertionError):
        Schedule.replay(decisions).run(module.program)
    # So does the @example the note suggests, under pytest.
    replay = RACY_TEST.replace(
        "@hypothesis.settings(max_examples=50, derandomize=True, database=None)",
        "@hypothesis.settings(phases=[hypothesis.Phase.explicit])\n"
        f'    @hypothesis.example(schedule=Schedule.replay("{decisions}"))',
    ).replace(
        "from tether.testing import schedules", "from tether.testing import Schedule, schedules"
    )
    pytester.makepyfile(test_replay=textwrap.dedent(replay))
    result = pytester.runpytest("-p", "no:cacheprovider", "test_replay.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f'*this run used Schedule.replay("{decisions}")*'])


def test_a_schedule_and_a_clock_fixture_compose(pytester):
    # hypothesis shares the fixture's clock among examples: each example's
    # run starts it from 0 again, so every example (and its replay) has the
    # same times.
    result = run(
        pytester,
        """
        import hypothesis
        import pytest
        import tether
        from tether.testing import schedules

        starts = []

        @pytest.mark.tether
        @hypothesis.settings(
            max_examples=10,
            database=None,
            suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
        )
        @hypothesis.given(schedule=schedules())
        async def test_sleeps(autojump_clock, schedule):
            assert tether.lowlevel.current_clock() is autojump_clock
            starts.append(tether.current_time())
            await tether.sleep(100)

        def test_every_example_started_at_zero():
            assert starts == [0] * 10
        """,
    )
    result.assert_outcomes(passed=2)


def test_a_deadlock_under_a_schedule_fails_at_once(pytester):
    # The grace period (and the hang timeout) would take minutes: the test
    # fails as soon as the kernel sees that nothing can wake a task.
    result = run(
        pytester,
        """
        import pytest
        import tether
        from tether.testing import Schedule

        async def wait_then_set(wait_for, then_set):
            await wait_for.wait()
            then_set.set()

        @pytest.mark.tether
        @pytest.mark.parametrize("schedule", [Schedule(), Schedule(seed=1)])
        async def test_deadlock(schedule):
            first, second = tether.Event(), tether.Event()
            async with tether.open_nursery() as nursery:
                nursery.start_soon(wait_then_set, first, second, name="A")
                nursery.start_soon(wait_then_set, second, first, name="B")
        """,
        "--tether-deadlock-grace=600",
        ini="tether_hang_timeout = 0",
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_deadlock?schedule0? deadlocked: every task is blocked and nothing can wake "
            "one*under a schedule this is reported at once*",
            "*task 'A'*",
            "*in wait_then_set: await wait_for.wait()*",
            "*this run used Schedule.replay(*",
            "*How the run went*",
        ]
    )


def test_async_fixtures_run_once_per_hypothesis_example(pytester):
    result = run(
        pytester,
        """
        import hypothesis
        import pytest
        import tether
        from hypothesis import strategies as st

        counts = {"setup": 0, "teardown": 0, "examples": 0}

        @pytest.fixture
        async def resource():
            counts["setup"] += 1
            yield []
            counts["teardown"] += 1

        @pytest.mark.tether
        @hypothesis.settings(
            max_examples=20,
            database=None,
            suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
        )
        @hypothesis.given(n=st.integers(0, 100))
        async def test_fresh_resource(resource, n):
            counts["examples"] += 1
            assert resource == []
            resource.append(n)
            await tether.sleep(0)

        def test_counts():
            assert counts["setup"] == counts["teardown"] == counts["examples"] == 20
        """,
    )
    result.assert_outcomes(passed=2)


# -- hangs ------------------------------------------------------------------------


def test_a_hanging_test_fails_with_the_task_tree(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        async def stuck_worker(event):
            await event.wait()

        @pytest.mark.tether
        async def test_hangs(nursery):
            event = tether.Event()
            nursery.start_soon(stuck_worker, event, name="stuck worker")
            await tether.sleep_forever()
        """,
        ini="tether_hang_timeout = 0.3",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_hangs hung: still running after 0.3 s of real time (tether_hang_timeout)*",
            "*The tasks, and where each one was blocked:",
            "*task 'fixture nursery'*",
            "*task 'stuck worker'*",
            "*blocked: waiting for Event at 0x* to be set (1 task waiting)",
            "*in stuck_worker: await event.wait()*",
            "*task 'test test_a_hanging_test_fails_with_the_task_tree.py::test_hangs'*",
            "*blocked: sleeping forever (until cancelled)",
            "*in test_hangs: await tether.sleep_forever()*",
        ]
    )
    # The report is the tree, not a traceback through the kernel.
    assert "_run.py" not in result.stdout.str().split("The tasks")[0]


def test_a_deadlock_on_an_autojump_clock_fails_fast(pytester):
    result = run(
        pytester,
        """
        import pytest
        import tether

        @pytest.mark.tether
        async def test_deadlock(autojump_clock):
            first, second = tether.Event(), tether.Event()

            async def wait_then_set(wait_for, then_set):
                await wait_for.wait()
                then_set.set()

            async with tether.open_nursery() as nursery:
                nursery.start_soon(wait_then_set, first, second, name="A")
                nursery.start_soon(wait_then_set, second, first, name="B")

        @pytest.mark.tether
        async def test_a_long_sleep_is_not_a_deadlock(autojump_clock):
            await tether.sleep(10**9)

        @pytest.mark.tether
        async def test_a_thread_is_not_a_deadlock(autojump_clock):
            import time
            await tether.to_thread.run_sync(time.sleep, 0.3)

        @pytest.mark.tether
        async def test_a_thread_with_its_own_limiter_is_not_a_deadlock(autojump_clock):
            import time
            limiter = tether.CapacityLimiter(1)
            await tether.to_thread.run_sync(time.sleep, 0.3, limiter=limiter)

        @pytest.mark.tether
        async def test_waiting_for_idle_is_not_a_deadlock(autojump_clock):
            await tether.testing.wait_all_tasks_blocked(0.3)

        @pytest.mark.tether
        async def test_an_aio_executor_job_is_not_a_deadlock(autojump_clock):
            import time
            from tether import aio

            async def job():
                await aio.get_running_loop().run_in_executor(None, time.sleep, 0.3)

            await aio.run_hosted(job())
        """,
        "--tether-deadlock-grace=0.1",
    )
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_deadlock deadlocked: every task is blocked and nothing can wake one*",
            "*task 'A'*",
            "*in wait_then_set: await wait_for.wait()*",
            "*task 'B'*",
        ]
    )


# A helper module for the test files below: `reported` is set once the hang
# watchdog has named a task blocking the run loop. A test blocks the loop
# until then, whatever the machine's load, instead of for a fixed time that
# a late watchdog thread could overrun.
WATCHDOG_PROBE = """
    import signal
    import threading
    import time

    import tether.testing._watchdog as watchdog

    reported = threading.Event()
    _blocked_task_report = watchdog.HangWatchdog._blocked_task_report


    def _noting_the_report(self):
        report = _blocked_task_report(self)
        if report is not None:
            reported.set()
        return report


    watchdog.HangWatchdog._blocked_task_report = _noting_the_report


    def time_out_now():
        # pytest-timeout's own alarm, fired now instead of at its timeout.
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        time.sleep(30)
"""


def _probe_the_watchdog(pytester):
    """The probe module, and a short grace for the hang report to unwind."""
    pytester.makepyfile(watchdog_probe=textwrap.dedent(WATCHDOG_PROBE))
    pytester.makeconftest(
        """
        import tether.testing._watchdog as watchdog
        watchdog.UNWIND_GRACE = 0.2
        """
    )


def test_stuck_in_synchronous_code_is_written_to_stderr(pytester):
    _probe_the_watchdog(pytester)
    result = run(
        pytester,
        """
        import pytest
        from watchdog_probe import reported

        @pytest.mark.tether
        async def test_blocks_the_loop():
            assert reported.wait(30)
        """,
        ini="tether_hang_timeout = 0.2",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Captured stderr call*",
            "*is stuck in synchronous code*",
            "*in test_blocks_the_loop*",
            "*assert reported.wait(30)*",
        ]
    )


def test_a_loop_callback_blocking_the_loop_is_reported_with_the_task_running_it(pytester):
    # tether.aio runs loop callbacks with no current kernel task (tether-native
    # code there is refused); the hang report still names the task whose
    # step runs them, as stuck in synchronous code.
    _probe_the_watchdog(pytester)
    result = run(
        pytester,
        """
        import asyncio

        import pytest
        from tether import aio
        from watchdog_probe import reported

        def blocks():
            assert reported.wait(30)

        @pytest.mark.tether
        async def test_a_callback_blocks_the_loop():
            async def main():
                asyncio.get_running_loop().call_soon(blocks)
                await asyncio.sleep(0)
                await asyncio.sleep(0)

            await aio.run_hosted(main())
        """,
        ini="tether_hang_timeout = 0.2",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Captured stderr call*",
            "*is stuck in synchronous code: task 'tether.aio callbacks' has not yielded*",
            "*in blocks*",
            "*assert reported.wait(30)*",
        ]
    )


def test_a_task_blocking_the_loop_is_named_before_pytest_timeout_ends_the_test(pytester):
    # The watchdog names the task blocking the loop, with its stack, as soon
    # as the loop fails to take the hang report: pytest-timeout, firing
    # right after that (the test fires its alarm itself, so that the order
    # does not depend on the machine's load), finds the report made. Its own
    # process: pytest-timeout's alarm signal would clobber ours.
    pytester.makeini("[pytest]\ntimeout = 60\ntether_hang_timeout = 0.3\n")
    pytester.makepyfile(watchdog_probe=textwrap.dedent(WATCHDOG_PROBE))
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            from watchdog_probe import reported, time_out_now

            @pytest.fixture(autouse=True)
            def fresh_report():
                reported.clear()

            @pytest.mark.tether
            async def test_sleeps():
                reported.wait(30)
                time_out_now()

            @pytest.mark.tether
            async def test_spins():
                while not reported.is_set():
                    pass
                time_out_now()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    for test, line in [("test_sleeps", "reported.wait(30)"), ("test_spins", "while not reported")]:
        result.stdout.fnmatch_lines(
            [
                f"*_ {test} _*",
                f"tether: *::{test} is stuck in synchronous code: task 'test *::{test}' has "
                "not yielded to the run loop since before the hang timeout (0.3 s).*",
                f'*File "*", line *, in {test}',
                f"*{line}*",
                "*After it was cancelled, the test also raised: Timeout*",
            ]
        )


@pytest.mark.parametrize(
    ("ini", "marker", "expected"),
    [
        ("timeout = 60", "", 55.0),
        ("timeout = 2", "", 1.8),
        ("timeout = 60", "@pytest.mark.timeout(10)", 9.0),
        ("", "", None),
        ("timeout = 0", "", None),
        ("timeout = 60\ntether_hang_timeout = 3", "", 3.0),
        ("timeout = 60\ntether_hang_timeout = 0", "", None),
    ],
)
def test_the_hang_timeout_defaults_to_just_under_pytest_timeouts(pytester, ini, marker, expected):
    pytester.makeini("[pytest]\n" + ini)
    item = pytester.getitem(f"import pytest\n{marker}\ndef test_func(): pass")
    assert _hang_timeout(item) == pytest.approx(expected)


def test_the_hang_report_comes_before_pytest_timeouts(pytester):
    # With only pytest-timeout's timeout set, the hang timeout derived from
    # it fires first and the hang report fails the test. The margin is made
    # wide here (the hang timeout is a tenth of pytest-timeout's) so that a
    # busy machine cannot make pytest-timeout win; its usual size is checked
    # above. Its own process: pytest-timeout's alarm signal would clobber ours.
    pytester.makeini("[pytest]\ntimeout = 3\n")
    pytester.makeconftest(
        """
        from tether.testing import _pytest_plugin
        _pytest_plugin.HANG_MARGIN_FRACTION = 0.9
        """
    )
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            import tether

            @pytest.mark.tether
            async def test_hangs():
                await tether.sleep_forever()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_hangs hung: still running after 0.3 s*"])
    assert "Timeout" not in result.stdout.str()

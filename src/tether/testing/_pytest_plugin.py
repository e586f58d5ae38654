"""tether's pytest plugin, installed with tether (the ``pytest11`` entry point).

Which tests it runs: ``async def`` tests marked ``@pytest.mark.tether``, and
with ``tether_mode = true`` in the ini file every ``async def`` test. Each
runs in its own `tether.run`, together with the async fixtures it uses (see
`_fixture_run` for how fixtures live inside the run). With hypothesis's
``@given``, every example is its own run, fixtures included.

What configures the run: fixture values and hypothesis draws that are a
`Clock` (the run's clock), `Instrument` objects, or a `Schedule` (seeded
scheduling, replayable).

How a hang is reported (`_watchdog`): past ``tether_hang_timeout`` real
seconds (by default a little under pytest-timeout's ``timeout``), or after a
deadlock on an autojump `MockClock`, the test fails with `HangError` showing
the task tree.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import AsyncIterator, Callable, Generator
from types import TracebackType
from typing import Any

import outcome
import pytest

from .. import Nursery, open_nursery, run
from . import _fixture_run, _run_options, _schedules
from ._fixture_run import InRunFixture, TestRun
from ._mock_clock import MockClock
from ._run_options import RunOptions
from ._watchdog import HangError, HangWatchdog

# pytest hides this module's frames in failure reports.
__tracebackhide__ = True

# Where the frames between this plugin and the test's own code come from.
_RUNNER_FILES = frozenset(
    {
        __file__,
        _fixture_run.__file__,
        _run_options.__file__,
        _schedules.__file__,
        run.__code__.co_filename,
        outcome.Error.unwrap.__code__.co_filename,
    }
)

#: The default hang timeout is pytest-timeout's timeout less this fraction of
#: it, and less at most `HANG_MARGIN_MAX` seconds: the margin leaves the hang
#: report time to be drawn and shown before pytest-timeout ends the test.
HANG_MARGIN_FRACTION = 0.1
HANG_MARGIN_MAX = 5.0

_HANG_TIMEOUT_HELP = (
    "tether: real seconds after which a running tether test is cancelled and fails with "
    "its task tree; 0 disables. Default: pytest-timeout's timeout minus 10% (at most 5 s), "
    "or none without one."
)
_DEADLOCK_GRACE_HELP = (
    "tether: on an autojump MockClock, real seconds that every task may stay blocked with "
    "nothing able to wake it (no deadline, no I/O, no callback) before the test fails as "
    "deadlocked; 0 disables. Default 1."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "tether_mode",
        "tether: run every 'async def' test under tether, marked or not",
        type="bool",
        default=False,
    )
    parser.addini("tether_hang_timeout", _HANG_TIMEOUT_HELP, default="")
    parser.addini("tether_deadlock_grace", _DEADLOCK_GRACE_HELP, default="1")
    group = parser.getgroup("tether")
    group.addoption(
        "--tether-hang-timeout",
        dest="tether_hang_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=_HANG_TIMEOUT_HELP,
    )
    group.addoption(
        "--tether-deadlock-grace",
        dest="tether_deadlock_grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help=_DEADLOCK_GRACE_HELP,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tether: run this async test (and its async fixtures) under tether.run"
    )


# -- which tests are ours ------------------------------------------------------


def _test_function(item: pytest.Function) -> Callable[..., Any]:
    """The test's own function: under hypothesis, the inner test."""
    fn = item.obj
    hypothesis = getattr(fn, "hypothesis", None)
    inner = getattr(hypothesis, "inner_test", None)
    return inner if inner is not None else fn  # type: ignore[no-any-return]


def is_tether_test(item: pytest.Item) -> bool:
    """Whether the plugin runs `item`: an ``async def`` test, marked
    ``tether`` or under ``tether_mode``."""
    if not isinstance(item, pytest.Function):
        return False
    if not inspect.iscoroutinefunction(_test_function(item)):
        return False
    return item.get_closest_marker("tether") is not None or bool(item.config.getini("tether_mode"))


# -- fixtures ------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    """Hand pytest a placeholder for fixtures that must run inside the test's
    run: async ones, and sync ones that depend on those."""
    func = fixturedef.func
    item = getattr(request, "_pyfuncitem", request.node)
    is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
    if not is_tether_test(item):
        if not is_async:
            return None
        if getattr(func, "__module__", None) == __name__:
            raise RuntimeError(
                f"the {fixturedef.argname!r} fixture works only in tether tests: make the "
                "test 'async def' and mark it @pytest.mark.tether (or set tether_mode = true)"
            )
        if (
            getattr(fixturedef, "_autouse", False)
            and isinstance(item, pytest.Function)
            and not inspect.iscoroutinefunction(_test_function(item))
        ):
            # An async autouse fixture sets up the run of each async test in
            # its scope; a synchronous test has no run, so it goes without.
            return _cache(fixturedef, request, InRunFixture(fixturedef.argname, func, {}))
        return None
    kwargs = {name: request.getfixturevalue(name) for name in fixturedef.argnames}
    if not is_async and not any(isinstance(value, InRunFixture) for value in kwargs.values()):
        return None
    if fixturedef.scope != "function":
        raise RuntimeError(
            f"fixture {fixturedef.argname!r} has scope {fixturedef.scope!r}, but it must run "
            "inside tether.run and every tether test has its own run: make it "
            "function-scoped (or synchronous)"
        )
    fixture = InRunFixture(
        fixturedef.argname,
        _bind(func, request.instance),
        kwargs,
        autouse=bool(getattr(fixturedef, "_autouse", False)),
    )
    return _cache(fixturedef, request, fixture)


def _cache(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest, value: InRunFixture
) -> InRunFixture:
    # What pytest's own pytest_fixture_setup does with a fixture's value.
    fixturedef.cached_result = (value, fixturedef.cache_key(request), None)  # type: ignore[arg-type]
    return value


def _bind(func: Callable[..., Any], instance: object) -> Callable[..., Any]:
    # A fixture defined in a test class is bound to the instance that runs
    # the test, as pytest itself does.
    if instance is not None and inspect.ismethod(func):
        if isinstance(instance, type(func.__self__)):
            return func.__func__.__get__(instance)  # type: ignore[no-any-return]
    return func


@pytest.fixture
async def nursery() -> AsyncIterator[Nursery]:
    """A nursery that lives as long as the test: start background tasks in
    it. It is cancelled when the test ends; an error in one of its tasks
    cancels the test and fails it with that error."""
    async with open_nursery() as nursery:
        try:
            yield nursery
        finally:
            nursery.cancel_scope.cancel()


@pytest.fixture
def autojump_clock() -> MockClock:
    """A ``MockClock(autojump_threshold=0)`` for the test's run: virtual time
    that jumps to the next deadline whenever every task is blocked, so that
    timeouts happen instantly and deterministically."""
    return MockClock(autojump_threshold=0)


@pytest.fixture
def mock_clock() -> MockClock:
    """A ``MockClock()`` for the test's run: virtual time that moves only when
    the test calls ``mock_clock.jump(seconds)`` (or sets ``rate`` or
    ``autojump_threshold``)."""
    return MockClock()


# -- running a test -----------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not is_tether_test(pyfuncitem):
        return None
    funcargs = pyfuncitem.funcargs
    testargs = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    fn = pyfuncitem.obj
    hypothesis = getattr(fn, "hypothesis", None)
    if hypothesis is None:
        _run_test(pyfuncitem, fn, (), testargs)
        return True
    # hypothesis calls its inner test once per example: make each call a run.
    inner = hypothesis.inner_test

    @functools.wraps(inner)
    def run_example(*args: Any, **kwargs: Any) -> None:
        _run_test(pyfuncitem, inner, args, kwargs)

    hypothesis.inner_test = run_example
    try:
        fn(**testargs)
    finally:
        hypothesis.inner_test = inner
    return True


def _run_test(
    item: pytest.Function,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    others = list(item.funcargs.values())
    options = RunOptions.from_arguments(kwargs, others, test=item.nodeid)
    watchdog = HangWatchdog(
        hang_timeout=_hang_timeout(item),
        # Under a schedule the kernel reports a deadlock as it happens (see
        # _explorer.py): no grace period to wait out.
        deadlock_grace=_deadlock_grace(item.config) if options.schedule is None else None,
        what=item.nodeid,
    )
    if options.schedule is not None:
        options.on_deadlock = watchdog.report_deadlock
    fixtures = [value for value in others if isinstance(value, InRunFixture)]
    test_run = TestRun(fn, args, kwargs, name=item.nodeid, fixtures=fixtures, watchdog=watchdog)
    try:
        options.run(test_run.main)
    except BaseException as exc:
        # Start the traceback at the test's code, not in tether.run.
        exc.with_traceback(_skip_run_frames(exc.__traceback__))
        raise
    finally:
        watchdog.stop()


def _skip_run_frames(tb: TracebackType | None) -> TracebackType | None:
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename in _RUNNER_FILES:
        start = start.tb_next
    return start if start is not None else tb


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    excinfo = call.excinfo
    if not report.failed or excinfo is None or call.when != "call":
        return report
    if isinstance(excinfo.value, HangError):
        # A hang is not a bug at some line of code: its report is the task
        # tree, not a traceback into the kernel.
        error = excinfo.value
        report.longrepr = "\n".join([str(error), *getattr(error, "__notes__", ())])
    elif (
        isinstance(item, pytest.Function)
        and inspect.iscoroutinefunction(_test_function(item))
        and not is_tether_test(item)
        and "not natively supported" in str(excinfo.value)
    ):
        report.sections.append(
            (
                "tether",
                "To run this test under tether, mark it @pytest.mark.tether, or set "
                "tether_mode = true in the pytest configuration to run every async test.",
            )
        )
    return report


# -- settings -----------------------------------------------------------------


def _seconds(value: object, where: str) -> float | None:
    """A duration from the configuration: None when unset, disabled (0 or
    less) or infinite."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{where} must be a number of seconds, got {value!r}") from None
    if math.isnan(seconds) or seconds <= 0 or seconds == math.inf:
        return None
    return seconds


def _hang_timeout(item: pytest.Function) -> float | None:
    config = item.config
    option = config.getoption("tether_hang_timeout", None)
    if option is not None:
        return _seconds(option, "--tether-hang-timeout")
    ini = config.getini("tether_hang_timeout")
    if ini:
        return _seconds(ini, "tether_hang_timeout")
    timeout = _pytest_timeout(item)
    if timeout is None:
        return None
    # Leave pytest-timeout a margin to stay the backstop.
    return timeout - min(HANG_MARGIN_MAX, timeout * HANG_MARGIN_FRACTION)


def _pytest_timeout(item: pytest.Function) -> float | None:
    """pytest-timeout's timeout for `item`, if that plugin is in use."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.kwargs.get("timeout", marker.args[0] if marker.args else None)
        if value is not None:
            return _seconds(value, "the timeout marker")
    config = item.config
    option = config.getoption("timeout", None)
    if option is not None:
        return _seconds(option, "--timeout")
    environment = os.environ.get("PYTEST_TIMEOUT")
    if environment:
        return _seconds(environment, "PYTEST_TIMEOUT")
    try:
        ini = config.getini("timeout")
    except ValueError:  # pytest-timeout is not installed
        return None
    return _seconds(ini, "the timeout ini option")


def _deadlock_grace(config: pytest.Config) -> float | None:
    option = config.getoption("tether_deadlock_grace", None)
    if option is not None:
        return _seconds(option, "--tether-deadlock-grace")
    return _seconds(config.getini("tether_deadlock_grace"), "tether_deadlock_grace")

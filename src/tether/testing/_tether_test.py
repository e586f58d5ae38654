"""`tether_test`: run an async test function without the pytest plugin."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from ._run_options import RunOptions

# pytest hides this module's frames in failure reports.
__tracebackhide__ = True

P = ParamSpec("P")
T = TypeVar("T")


def tether_test(fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Turn an async test function into a synchronous one that runs it under
    `tether.run`, for test runners other than pytest or tests that do not use
    the plugin.

    Keyword arguments (for instance pytest fixtures or hypothesis draws)
    configure the run: a `Clock` is used as the run's clock, `Instrument`
    objects are installed, and a `Schedule` makes the run seeded (on a fresh
    autojump `MockClock`, unless a clock is given too). It composes with
    hypothesis: put ``@given(...)`` above ``@tether_test``.

    Async fixtures and the hang report need the pytest plugin
    (``@pytest.mark.tether``).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        options = RunOptions.from_arguments(kwargs, test=fn.__qualname__)
        call: Callable[[], Awaitable[T]] = functools.partial(fn, *args, **kwargs)
        return options.run(call)

    return wrapper

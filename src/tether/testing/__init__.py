"""Tools for testing code that runs on tether."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from .._core import Clock, Instrument, run, wait_all_tasks_blocked
from ._mock_clock import MockClock

P = ParamSpec("P")
T = TypeVar("T")


def tether_test(fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Turn an async test function into a synchronous one that runs it under
    `tether.run`. A `Clock` among the keyword arguments (for instance a
    pytest fixture) is used as the run's clock, and `Instrument` objects as
    its instruments."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        clocks = [value for value in kwargs.values() if isinstance(value, Clock)]
        if len(clocks) > 1:
            raise ValueError(f"too many clocks passed to {fn.__qualname__}: {clocks!r}")
        instruments = [value for value in kwargs.values() if isinstance(value, Instrument)]
        call: Callable[[], Awaitable[T]] = functools.partial(fn, *args, **kwargs)
        result: Any = run(call, clock=clocks[0] if clocks else None, instruments=instruments)
        return result  # type: ignore[no-any-return]

    return wrapper


__all__ = ["MockClock", "tether_test", "wait_all_tasks_blocked"]

"""Instruments: user hooks into the run loop, called only when installed.

`Instruments` maps each hook name to the instruments that implement it, and
holds no key for a hook nobody implements, so the run loop's check for
"anyone listening?" is one truthiness test of this dict. Which hooks an
instrument implements is read when it is installed (as in trio: replacing a
method afterwards takes effect only when it is removed and added again).
"""

from __future__ import annotations

import logging
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._task import Task

INSTRUMENT_LOGGER = logging.getLogger("tether.abc.Instrument")


class Instrument:
    """Base class for run-loop instruments. Override the hooks you need; the
    defaults do nothing. Install with ``tether.run(..., instruments=[...])``
    or `tether.lowlevel.add_instrument`. An instrument whose hook raises is
    removed and the error logged; the run is not affected."""

    __slots__ = ()

    def before_run(self) -> None:
        """Called at the start of `tether.run`."""

    def after_run(self) -> None:
        """Called just before `tether.run` returns."""

    def task_spawned(self, task: Task) -> None:
        """Called when `task` is created."""

    def task_scheduled(self, task: Task) -> None:
        """Called when `task` becomes runnable."""

    def before_task_step(self, task: Task) -> None:
        """Called before running one step of `task`."""

    def after_task_step(self, task: Task) -> None:
        """Called after running one step of `task`."""

    def task_exited(self, task: Task) -> None:
        """Called when `task` has finished."""

    def before_io_wait(self, timeout: float) -> None:
        """Called before the run loop waits for I/O for up to `timeout`
        seconds."""

    def after_io_wait(self, timeout: float) -> None:
        """Called after the run loop's wait for I/O returns."""


HOOK_NAMES = tuple(
    name for name, value in vars(Instrument).items() if isinstance(value, types.FunctionType)
)


class Instruments(dict[str, dict[Instrument, None]]):
    """The run's instruments: as a dict, hook name -> the instruments that
    implement it (in installation order). Invariant: no key for a hook
    that no instrument implements, so an empty dict means "none"."""

    __slots__ = ("installed", "io_wait_hooked")

    #: Every installed instrument, hooks or not (ordered, like a set).
    installed: dict[Instrument, None]
    #: Whether an I/O-wait hook is installed: the loop then polls for I/O
    #: (without waiting) on every turn, even when tasks are runnable, so
    #: that the hooks see each turn.
    io_wait_hooked: bool

    def __init__(self, incoming: Any) -> None:
        super().__init__()
        self.installed = {}
        self.io_wait_hooked = False
        for instrument in incoming:
            self.add_instrument(instrument)

    def add_instrument(self, instrument: Instrument) -> None:
        if instrument in self.installed:
            return
        self.installed[instrument] = None
        try:
            for name in HOOK_NAMES:
                impl = getattr(instrument, name, None)
                if impl is None:
                    continue
                if isinstance(impl, types.MethodType) and impl.__func__ is getattr(
                    Instrument, name
                ):
                    continue
                self.setdefault(name, {})[instrument] = None
        except BaseException:
            # (A property that raises, say: not installed at all.)
            self.remove_instrument(instrument)
            raise
        self._update_io_wait_hooked()

    def remove_instrument(self, instrument: Instrument) -> None:
        if instrument not in self.installed:
            raise KeyError(f"instrument {instrument!r} is not installed")
        del self.installed[instrument]
        for name in list(self):
            hooks = self[name]
            if instrument in hooks:
                del hooks[instrument]
                if not hooks:
                    del self[name]
        self._update_io_wait_hooked()

    def _update_io_wait_hooked(self) -> None:
        self.io_wait_hooked = "before_io_wait" in self or "after_io_wait" in self

    def call(self, hookname: str, *args: Any) -> None:
        for instrument in list(self.get(hookname, ())):
            try:
                getattr(instrument, hookname)(*args)
            except BaseException:
                self.remove_instrument(instrument)
                INSTRUMENT_LOGGER.exception(
                    "Exception raised when calling %r on instrument %r. "
                    "Instrument has been disabled.",
                    hookname,
                    instrument,
                )

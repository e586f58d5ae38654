"""Instruments: user hooks into the run loop, called only when installed.

What it must do:

* An instrument is any object with some of the hook methods that
  `Instrument` lists (deriving from `Instrument` is optional; its methods do
  nothing). ``tether.run(..., instruments=[...])`` installs instruments for a
  whole run, `lowlevel.add_instrument` / `lowlevel.remove_instrument` during
  it. Adding an installed instrument again does nothing; removing one that
  is not installed raises `KeyError`.
* The run loop calls each hook on every instrument that implements it, in
  the order they were installed. Which hooks an instrument implements is
  read once, when it is installed: a hook given to it later counts only
  after it is removed and installed again (a hook it has is looked up at
  each call, so replacing one takes effect at once, as in trio). If reading
  a hook raises (a property, say), `add_instrument` raises that and installs
  nothing.
* A hook that raises disables its instrument (it is removed for the rest of
  the run) and the error is logged with its traceback; the run and the other
  instruments carry on.
* With no instrument installed, the run loop pays nothing but a truth test.

Design: `Instruments` is a dict from hook name to the tuple of instruments
that implement it, with no key for a hook nobody implements. The run loop
tests it (``if instruments and "hook" in instruments``) at C speed. The
tuples are never changed in place (installing or removing builds new ones),
so `call` walks one without copying it, even if a hook installs or removes
instruments meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._task import Task

#: Where a failing hook is reported.
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


#: Every hook the run loop calls, with the do-nothing version `Instrument`
#: gives it (an instrument whose hook is that one does not implement it).
_NO_OP_HOOKS: dict[str, Callable[..., None]] = {
    name: member
    for name, member in vars(Instrument).items()
    if callable(member) and not name.startswith("_")
}

#: The hooks that make the loop poll for I/O on every turn.
_IO_WAIT_HOOKS = ("before_io_wait", "after_io_wait")


def _hooks_of(instrument: Any) -> list[str]:
    """The names of the hooks `instrument` implements. Raises what reading
    one raises."""
    found = []
    for name, no_op in _NO_OP_HOOKS.items():
        hook = getattr(instrument, name, None)
        if hook is not None and getattr(hook, "__func__", None) is not no_op:
            found.append(name)
    return found


class Instruments(dict[str, tuple[Any, ...]]):
    """The run's instruments. As a dict: hook name -> the instruments
    implementing it, in installation order. Invariant: no key for a hook
    nobody implements (empty means "none")."""

    __slots__ = ("io_wait_hooked", "members")

    #: The installed instruments in installation order (an ordered set),
    #: including those that implement no hook.
    members: dict[Any, None]
    #: Whether a hook around the I/O wait is installed: the loop then
    #: polls for I/O on every turn, even when tasks are runnable, so that
    #: the hooks see each turn.
    io_wait_hooked: bool

    def __init__(self, initial: Iterable[Any] = ()) -> None:
        super().__init__()
        self.members = {}
        self.io_wait_hooked = False
        for instrument in initial:
            self.add_instrument(instrument)

    def add_instrument(self, instrument: Any) -> None:
        """Install `instrument` (nothing happens if it is installed)."""
        if instrument in self.members:
            return
        hooks = _hooks_of(instrument)  # may raise: nothing changed yet
        self.members[instrument] = None
        for name in hooks:
            self[name] = (*self.get(name, ()), instrument)
        self._note_io_wait_hooks()

    def remove_instrument(self, instrument: Any) -> None:
        """Uninstall `instrument`.

        Raises:
          KeyError: it is not installed (never added, removed already, or
            disabled because a hook raised).
        """
        if instrument not in self.members:
            raise KeyError(f"{instrument!r} is not an installed instrument of this run")
        del self.members[instrument]
        for name, implementers in list(self.items()):
            if instrument in implementers:
                remaining = tuple(other for other in implementers if other is not instrument)
                if remaining:
                    self[name] = remaining
                else:
                    del self[name]
        self._note_io_wait_hooks()

    def _note_io_wait_hooks(self) -> None:
        self.io_wait_hooked = any(name in self for name in _IO_WAIT_HOOKS)

    def call(self, hookname: str, *args: Any) -> None:
        """Call hook `hookname` of every instrument implementing it."""
        for instrument in self.get(hookname, ()):
            try:
                getattr(instrument, hookname)(*args)
            except BaseException:
                # An instrument must not take the run down: it goes, and
                # the error is reported instead.
                if instrument in self.members:
                    self.remove_instrument(instrument)
                INSTRUMENT_LOGGER.exception(
                    "The %s hook of instrument %r raised. "
                    "Instrument has been disabled for the rest of the run.",
                    hookname,
                    instrument,
                )

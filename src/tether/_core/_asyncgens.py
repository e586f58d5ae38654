"""Finalizing async generators inside the run that iterated them.

Python calls the thread's async-generator hooks when an async generator is
first iterated (``firstiter``) and when one is garbage collected unfinished
(``finalizer``; the hook is recorded on the generator at its first
iteration, so it is ours exactly for the generators first iterated while the
run's hooks were installed). While a run is active:

- A generator first iterated in one of the run's tasks is *ours*: it goes in
  `alive` (weakly, so garbage collection works). If it is collected
  unfinished, a system task runs its ``aclose()`` (with a `ResourceWarning`:
  ``async with aclosing(...)`` would have closed it where it was used). When
  the main task and the system tasks are done, the run's root task closes
  every one still alive, one at a time (closing one may iterate another, so
  they cannot be closed concurrently), before `tether.run` returns.
- Any other one (first iterated outside a task, say in an abort function or
  by a host loop) is *foreign*: its id is remembered, and both hooks are
  passed on to the hooks that were installed before the run. With no
  finalizer there, it is closed the way Python closes a generator without
  hooks: one step of ``aclose()``, and an error if it wanted to await.

Foreign generators are remembered by id, not by weak reference: Python
clears a generator's weak references *before* it calls the finalizer hook,
so at that point a weak set no longer knows the generator. An id outlives
its generator when the generator finishes normally (no finalizer call
removes it) and may then be reused by a new one; so every first iteration
records the verdict for its id afresh (ours: the id is dropped from the
foreign set). Two live objects never share an id, so when a generator is
finalized, the entry for its id is the one its own first iteration made.

Closing one of ours runs in a cancelled, shielded scope, as trio does: its
cleanup can run synchronous code and `cancel_shielded_checkpoint`, and any
``await`` of a checkpoint raises `Cancelled`. Nothing a generator does while
being finalized can crash the run: an error escaping its ``aclose()`` is
logged to the ``tether.async_generator_errors`` logger, and the run goes on
and returns the main task's result.

Invariant: from the moment `finalize_remaining` starts, `alive` is a strong
set, so no generator of ours can be collected (and need a system task) after
the system nursery has closed. A generator collected in the one-turn window
just before that lands in `_trailing` and is closed with the others.
"""

from __future__ import annotations

import logging
import sys
import warnings
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

from ._cancel import CancelScope
from ._exceptions import RunFinishedError
from ._ki import disable_ki_protection
from ._run_context import GLOBAL_RUN_CONTEXT
from ._traps import Abort, wait_task_rescheduled

if TYPE_CHECKING:
    from ._run import Runner

AGen = AsyncGenerator[Any, Any]

#: Where errors escaping a finalized generator's ``aclose()`` are reported.
ASYNCGEN_LOGGER = logging.getLogger("tether.async_generator_errors")


def describe_asyncgen(agen: AGen) -> str:
    """``module.qualname`` of the async generator function `agen` came from."""
    frame = getattr(agen, "ag_frame", None)
    module = frame.f_globals.get("__name__", "?") if frame is not None else "?"
    qualname = getattr(agen, "__qualname__", None) or repr(agen)
    return f"{module}.{qualname}"


@disable_ki_protection
def _call_unprotected(fn: Callable[..., Any], *args: Any) -> Any:
    # Someone else's hook is their code, not tether's: Ctrl-C may interrupt it.
    return fn(*args)


def close_without_a_loop(agen: AGen) -> None:
    """Close `agen` as Python does for an async generator without hooks: throw
    `GeneratorExit` in and let it run until it stops. Errors (including one
    for a generator that wants to await during its cleanup) are raised for
    the interpreter to report as unraisable, since this runs from the
    garbage collector."""
    closer = agen.aclose()
    try:
        # A generator that yields again raises RuntimeError ("ignored
        # GeneratorExit") here, which propagates.
        _call_unprotected(closer.send, None)
    except StopIteration:
        return
    closer.close()
    raise RuntimeError(
        f"async generator {describe_asyncgen(agen)!r} was first iterated outside a tether "
        "task and awaited something during finalization, which needs an event loop; "
        "close it where it is used with 'async with contextlib.aclosing(...)', or "
        "install an async generator finalizer hook that can run it"
    )


class AsyncGenerators:
    """The async generators of one run, and the hooks that track them."""

    __slots__ = ("_foreign", "_prev_hooks", "_trailing", "alive", "runner")

    #: The run whose generators these are.
    runner: Runner
    #: Ours, not finished (as far as we know). Weak during the run;
    #: strong once the end-of-run finalization starts (the module's
    #: invariant).
    alive: weakref.WeakSet[AGen] | set[AGen]
    #: ids of the foreign generators (see the module docstring for why ids
    #: and why this is exact). Invariant: for every id, the entry reflects
    #: the latest generator with that id to be first iterated while the
    #: hooks were ours. An id of a foreign generator that finished normally
    #: stays until the id is reused or the run ends.
    _foreign: set[int]
    #: Ours, collected while the system nursery was closing.
    _trailing: set[AGen]
    #: The thread's hooks from before the run (``sys.get_asyncgen_hooks()``),
    #: put back at its end; None until installed.
    _prev_hooks: Any

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.alive = weakref.WeakSet()
        self._foreign = set()
        self._trailing = set()
        self._prev_hooks = None

    def install_hooks(self) -> None:
        self._prev_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._firstiter, finalizer=self._finalizer)

    def uninstall_hooks(self) -> None:
        if self._prev_hooks is not None:
            sys.set_asyncgen_hooks(*self._prev_hooks)

    # -- the hooks ---------------------------------------------------------

    def _firstiter(self, agen: AGen) -> None:
        runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
        if runner is self.runner and runner.current_task is not None:
            self.alive.add(agen)
            # (A foreign generator that finished normally may have had
            # this id: it is not this one.)
            self._foreign.discard(id(agen))
            return
        self._foreign.add(id(agen))
        previous = self._prev_hooks.firstiter
        if previous is not None:
            _call_unprotected(previous, agen)

    def _finalizer(self, agen: AGen) -> None:
        key = id(agen)
        if key in self._foreign:
            self._foreign.discard(key)
            previous = self._prev_hooks.finalizer
            if previous is not None:
                _call_unprotected(previous, agen)
            else:
                close_without_a_loop(agen)
            return
        name = describe_asyncgen(agen)
        try:
            self.runner.entry_queue.submit(self._spawn_finalizer, agen, name)
        except RunFinishedError:
            # Only a generator whose end-of-run close did not finish it can
            # get here: nothing is left to run an async cleanup.
            close_without_a_loop(agen)
            return
        # Last: with an "error" warnings filter this raises, and the
        # interpreter reports it as unraisable (the close is queued anyway).
        warnings.warn(
            f"Async generator {name!r} was garbage collected before it had been "
            "exhausted. Surround its use in 'async with aclosing(...):' to close it "
            "as soon as you are done with it.",
            ResourceWarning,
            stacklevel=2,
            source=agen,
        )

    # -- closing ours ------------------------------------------------------

    def _spawn_finalizer(self, agen: AGen, name: str) -> None:
        """Entry-queue callback: close a collected generator of ours in a
        system task (or with the rest, if system tasks can no longer
        start)."""
        nursery = self.runner.system_nursery
        if nursery is None or nursery._closed:
            self._trailing.add(agen)
            return
        self.runner.spawn_impl(
            self._finalize_one,
            (agen, name),
            nursery,
            f"close abandoned async generator {name}",
            system_task=True,
        )

    @staticmethod
    async def _finalize_one(agen: AGen, name: str) -> None:
        try:
            # Shielded and cancelled: the close runs to its end whatever
            # happens around it, and cannot block on anything.
            with CancelScope(shield=True) as scope:
                scope.cancel()
                await agen.aclose()
        except BaseException:
            ASYNCGEN_LOGGER.exception(
                "Exception ignored during finalization of async generator %r: close it "
                "where it is used with 'async with contextlib.aclosing(...)' to get "
                "such errors where they happen",
                name,
            )

    async def finalize_remaining(self) -> None:
        """Close every generator of ours that is still alive, one at a time,
        including ones first iterated while doing so. Called by the run's
        root task once the main task and the system tasks are done."""
        runner = self.runner
        self.alive = set(self.alive)
        # Callbacks queued by the finalizer just before (generators collected
        # while the system nursery was closing) run before this task wakes
        # up, and leave their generator in `_trailing`.
        init_task = runner.current_task
        assert init_task is not None
        runner.entry_queue.submit(runner.reschedule, init_task)
        await wait_task_rescheduled(_cannot_abort)
        self.alive.update(self._trailing)
        self._trailing.clear()
        while self.alive:
            batch = self.alive
            self.alive = set()
            for agen in batch:
                await self._finalize_one(agen, describe_asyncgen(agen))


def _cannot_abort(_: Callable[[], Any]) -> Abort:
    return Abort.FAILED

"""Finalizing async generators inside the run that created them.

Python calls the thread's async-generator hooks when an async generator is
first iterated (`firstiter`) and when one is garbage collected unfinished
(`finalizer`). While a run is active we track the generators first iterated
in its tasks; one collected unfinished gets its ``aclose()`` run in a system
task, and those still alive when the main task finishes are closed before
`tether.run` returns. Generators iterated outside our tasks are left to the
hooks that were installed before the run.

Telling ours from foreign ones in `finalizer` needs care: the interpreter
clears weak references to a generator just *before* calling the finalizer.
So the weakref callback moves a dying generator's id into `_dying`, which the
finalizer reads right after (within the same deallocation), and the run loop
empties it once per turn.
"""

from __future__ import annotations

import functools
import sys
import warnings
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from ._run_context import GLOBAL_RUN_CONTEXT

if TYPE_CHECKING:
    from ._run import Runner

AGen = AsyncGenerator[Any, Any]


def _name_of(agen: AGen) -> str:
    qualname = getattr(agen, "__qualname__", repr(agen))
    return f"{getattr(agen, '__module__', '?')}.{qualname}"


class AsyncGenerators:
    __slots__ = ("_dying", "_ours", "_prev_hooks", "alive", "runner")

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.alive: weakref.WeakSet[AGen] = weakref.WeakSet()
        self._ours: dict[int, weakref.ref[AGen]] = {}
        self._dying: set[int] = set()
        self._prev_hooks: Any = None

    def install_hooks(self) -> None:
        self._prev_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._firstiter, finalizer=self._finalizer)

    def uninstall_hooks(self) -> None:
        if self._prev_hooks is not None:
            sys.set_asyncgen_hooks(*self._prev_hooks)

    def _firstiter(self, agen: AGen) -> None:
        runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
        if runner is self.runner and runner.current_task is not None:
            self.alive.add(agen)
            key = id(agen)
            self._ours[key] = weakref.ref(agen, functools.partial(self._on_death, key))
        elif self._prev_hooks is not None and self._prev_hooks.firstiter is not None:
            self._prev_hooks.firstiter(agen)

    def _on_death(self, key: int, _ref: object) -> None:
        if self._ours.pop(key, None) is not None:
            self._dying.add(key)

    def _finalizer(self, agen: AGen) -> None:
        key = id(agen)
        if key in self._dying:
            self._dying.discard(key)
        elif self._prev_hooks is not None and self._prev_hooks.finalizer is not None:
            self._prev_hooks.finalizer(agen)
            return
        else:
            # Not one of ours and nobody else to ask: close it as Python would.
            self._close_synchronously(agen)
            return
        try:
            self.runner.entry_queue.run_sync_soon(self._spawn_finalizer, agen)
        except Exception:
            # The run is over; do what we can without an event loop.
            self._close_synchronously(agen)

    def _spawn_finalizer(self, agen: AGen) -> None:
        self.runner.spawn_impl(
            self._aclose,
            (agen,),
            self.runner.system_nursery,
            f"close {_name_of(agen)}",
            system_task=True,
        )

    @staticmethod
    async def _aclose(agen: AGen) -> None:
        from ._cancel import CancelScope

        # Finalization must run to completion even while the run shuts down.
        with CancelScope(shield=True):
            await agen.aclose()

    @staticmethod
    def _close_synchronously(agen: AGen) -> None:
        closer = agen.aclose()
        try:
            closer.send(None)
        except StopIteration:
            return
        except BaseException:
            pass
        closer.close()
        warnings.warn(
            f"async generator {_name_of(agen)!r} needed to await something while "
            "being finalized after its tether run had finished; its cleanup was cut short",
            ResourceWarning,
            stacklevel=1,
        )

    async def finalize_remaining(self) -> None:
        """Close every generator of ours that is still alive. Called by the
        run's root task once the main task and system tasks are done."""
        from ._nursery import open_nursery

        while self.alive:
            batch = list(self.alive)
            self.alive.clear()
            for agen in batch:
                self._ours.pop(id(agen), None)
            async with open_nursery() as nursery:
                for agen in batch:
                    nursery.start_soon(self._aclose, agen, name=f"close {_name_of(agen)}")

"""Running a test and its async fixtures inside one tether run.

pytest sets fixtures up before a test and tears them down after it, outside
any run. An async fixture must live *inside* the run of the test that uses
it: a nursery it opens has to stay open while the test runs, in the task that
will close it. So the plugin hands pytest a placeholder, `InRunFixture`, as
the fixture's value, and `TestRun` runs the test and those fixtures in one
`tether.run`:

* Each in-run fixture is a task. It waits until the fixtures it depends on
  are set up, sets itself up, waits until every user (the test, the fixtures
  that depend on it) is done, then tears down. Independent fixtures set up
  concurrently; teardown runs in reverse dependency order.
* The test is a task that starts once every fixture is set up.
* Fixtures and test share one `contextvars.Context`: a context variable set
  by a fixture is visible to the test.
* The first error anywhere (a fixture's setup or teardown, the test, a
  background task in a nursery a fixture holds open) *crashes* the test:
  fixtures still setting up and the test are cancelled, fixtures already set
  up tear down in order. Every error is reported.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any

from .. import Cancelled, CancelScope, open_nursery
from .._sync import Event
from ..lowlevel import cancel_shielded_checkpoint, current_task
from ._watchdog import HangError, HangWatchdog

# pytest hides this module's frames in failure reports.
__tracebackhide__ = True


class InRunFixture:
    """The value pytest holds for a fixture that runs inside its test's run.

    The real value exists only inside that run, where the test receives it.
    (So ``request.getfixturevalue()`` cannot fetch an async fixture.)
    """

    __slots__ = ("autouse", "func", "kwargs", "name")

    def __init__(
        self,
        name: str,
        func: Callable[..., object],
        kwargs: dict[str, object],
        *,
        autouse: bool = False,
    ) -> None:
        self.name = name
        self.func = func
        self.kwargs = kwargs
        #: Autouse fixtures set up before, and tear down after, the other
        #: fixtures (the ones that do not lead to them), as in pytest.
        self.autouse = autouse

    def __repr__(self) -> str:
        return (
            f"<tether in-run fixture {self.name!r}: its value exists only inside "
            "the test's tether run>"
        )


_Teardown = AsyncGenerator[Any, None] | Generator[Any, None, None] | None


class _FixtureState:
    """One in-run fixture's progress through one run."""

    __slots__ = (
        "dependencies",
        "fixture",
        "ready",
        "set_up",
        "setup_scope",
        "teardown",
        "users",
        "users_done",
        "value",
    )

    def __init__(self, fixture: InRunFixture) -> None:
        self.fixture = fixture
        self.dependencies: list[_FixtureState] = []
        self.value: object = None
        self.teardown: _Teardown = None
        self.set_up = False
        #: Set when setup has ended, well or not.
        self.ready = Event()
        #: The scope around the setup, while it runs: a crash cancels it.
        self.setup_scope: CancelScope | None = None
        self.users = 0
        self.users_done = Event()

    def user_finished(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.users_done.set()


class TestRun:
    """One run of a test function with its in-run fixtures. Pass `main` to
    `tether.run`; it raises the test's error, if any, at the end of the run.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self,
        test_fn: Callable[..., Awaitable[object]],
        args: Sequence[object],
        kwargs: dict[str, object],
        *,
        name: str,
        fixtures: Iterable[InRunFixture] = (),
        watchdog: HangWatchdog | None = None,
    ) -> None:
        self.name = name
        self._test_fn = test_fn
        self._args = args
        self._kwargs = kwargs
        self._watchdog = watchdog
        self._states: dict[InRunFixture, _FixtureState] = {}
        for value in [*fixtures, *kwargs.values()]:
            if isinstance(value, InRunFixture):
                self._add(value)
        for autouse in [state for state in self._states.values() if state.fixture.autouse]:
            below = self._dependencies_of(autouse)
            for state in self._states.values():
                if not state.fixture.autouse and state not in below:
                    state.dependencies.append(autouse)
                    autouse.users += 1
        # The test waits for every fixture, autouse ones included.
        for state in self._states.values():
            state.users += 1
        self.errors: list[BaseException] = []
        self.crashed = False
        self._test_scope = CancelScope()
        self._everything = CancelScope()
        self._context = contextvars.Context()

    def _add(self, fixture: InRunFixture) -> _FixtureState:
        state = self._states.get(fixture)
        if state is None:
            state = self._states[fixture] = _FixtureState(fixture)
            for value in fixture.kwargs.values():
                if isinstance(value, InRunFixture):
                    dependency = self._add(value)
                    state.dependencies.append(dependency)
                    dependency.users += 1
        return state

    def _dependencies_of(self, state: _FixtureState) -> set[_FixtureState]:
        found: set[_FixtureState] = set()
        pending = list(state.dependencies)
        while pending:
            dependency = pending.pop()
            if dependency not in found:
                found.add(dependency)
                pending.extend(dependency.dependencies)
        return found

    # -- the run -----------------------------------------------------------------

    async def main(self) -> None:
        self._context = contextvars.copy_context()
        with self._everything:
            if self._watchdog is not None:
                self._watchdog.start(self._everything.cancel)
            async with open_nursery() as nursery:
                for state in self._states.values():
                    nursery.start_soon(
                        self._run_fixture, state, name=f"fixture {state.fixture.name}"
                    )
                nursery.start_soon(self._run_test, name=f"test {self.name}")
        self._raise_errors()

    async def _adopt_context(self) -> None:
        # A task's context is read at every step, so from the next step on
        # this task runs in the shared one.
        current_task().context = self._context
        await cancel_shielded_checkpoint()

    def _crash(self, error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            _, rest = error.split(Cancelled)
            if rest is None:
                return
            error = rest
        self.errors.append(error)
        if not self.crashed:
            self.crashed = True
            self._test_scope.cancel()
            for state in self._states.values():
                if state.setup_scope is not None:
                    state.setup_scope.cancel()

    async def _run_test(self) -> None:
        await self._adopt_context()
        try:
            for state in self._states.values():
                await state.ready.wait()
            if self.crashed or not all(state.set_up for state in self._states.values()):
                return
            kwargs = {name: self._resolve(value) for name, value in self._kwargs.items()}
            with self._test_scope:
                await self._test_fn(*self._args, **kwargs)
        except Cancelled:
            raise
        except BaseException as exc:
            self._crash(exc)
        finally:
            for state in self._states.values():
                state.user_finished()

    async def _run_fixture(self, state: _FixtureState) -> None:
        await self._adopt_context()
        fixture = state.fixture
        try:
            for dependency in state.dependencies:
                await dependency.ready.wait()
            if self.crashed or not all(dependency.set_up for dependency in state.dependencies):
                return
            kwargs = {name: self._resolve(value) for name, value in fixture.kwargs.items()}
            # The scope encloses the fixture's whole life, because scopes the
            # fixture opens before its yield stay open until its teardown. A
            # crash cancels it only while the setup runs.
            with CancelScope() as scope:
                state.setup_scope = scope
                try:
                    state.value, state.teardown = await _call_fixture(fixture, kwargs)
                finally:
                    state.setup_scope = None
                state.set_up = True
                state.ready.set()
                await self._tear_down(state)
        except Cancelled:
            raise
        except BaseException as exc:
            self._crash(exc)
        finally:
            state.ready.set()
            for dependency in state.dependencies:
                dependency.user_finished()

    async def _tear_down(self, state: _FixtureState) -> None:
        name = state.fixture.name
        teardown = state.teardown
        try:
            if isinstance(teardown, AsyncGenerator):
                try:
                    await state.users_done.wait()
                except Cancelled as cancelled:
                    # A scope the fixture holds open around its yield was
                    # cancelled (say a nursery whose background task failed),
                    # or the whole test was: for the fixture's code, that
                    # happens at its yield.
                    await _finish_async_generator(name, teardown, cancelled)
                else:
                    await _finish_async_generator(name, teardown, None)
            else:
                try:
                    await state.users_done.wait()
                finally:
                    if isinstance(teardown, Generator):
                        _finish_generator(name, teardown)
        except Cancelled:
            raise
        except BaseException as exc:
            self._crash(exc)

    def _resolve(self, value: object) -> object:
        if isinstance(value, InRunFixture):
            return self._states[value].value
        return value

    def _raise_errors(self) -> None:
        hang: HangError | None = self._watchdog.error if self._watchdog is not None else None
        if hang is not None:
            if self.errors:
                hang.add_note(
                    "After it was cancelled, the test also raised: "
                    + ", ".join(repr(error) for error in self.errors)
                )
            raise hang
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        raise BaseExceptionGroup(
            f"{len(self.errors)} errors in {self.name} and its fixtures", self.errors
        )


async def _call_fixture(
    fixture: InRunFixture, kwargs: dict[str, object]
) -> tuple[object, _Teardown]:
    func: Any = fixture.func
    if inspect.isasyncgenfunction(func):
        agen: AsyncGenerator[Any, None] = func(**kwargs)
        try:
            value = await agen.asend(None)
        except StopAsyncIteration:
            raise RuntimeError(f"fixture {fixture.name!r} did not yield a value") from None
        return value, agen
    if inspect.iscoroutinefunction(func):
        return await func(**kwargs), None
    if inspect.isgeneratorfunction(func):
        gen: Generator[Any, None, None] = func(**kwargs)
        try:
            value = next(gen)
        except StopIteration:
            raise RuntimeError(f"fixture {fixture.name!r} did not yield a value") from None
        return value, gen
    return func(**kwargs), None


async def _finish_async_generator(
    name: str, agen: AsyncGenerator[Any, None], throw: BaseException | None
) -> None:
    try:
        if throw is None:
            await agen.asend(None)
        else:
            await agen.athrow(throw)
    except StopAsyncIteration:
        return
    await agen.aclose()
    raise RuntimeError(f"fixture {name!r} yielded more than once")


def _finish_generator(name: str, gen: Generator[Any, None, None]) -> None:
    try:
        next(gen)
    except StopIteration:
        return
    gen.close()
    raise RuntimeError(f"fixture {name!r} yielded more than once")

"""The story of a run under a schedule: which task ran, when, and where.

`Story` records one entry per task step while a schedule runs (only when
asked to: it costs a walk of the task's await chain per step): the task,
the virtual time, where the task resumed, whether the schedule deviated
from the default order to run it, and any cancellation the schedule made.
Where a step *yielded* is where the same task next resumes, or, for its
last step, where it is now (or that it exited).

`Story.format` turns that into the text added to a failure: one line per
step of the program's own tasks (steps whose task is inside tether's code
from start to end, such as the run's root task, are left out), decisions
that differ from the default order marked with ``*``. A long run is cut to
the steps around those decisions and the last steps before the end.
"""

from __future__ import annotations

import linecache
import os
import reprlib
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .. import CancelScope
from ..lowlevel import Task
from ._task_tree import is_internal, short_path

_STDLIB = tuple(os.path.join(sysconfig.get_paths()[name], "") for name in ("stdlib", "platstdlib"))

# Arguments shown in task names: short, but long enough for a callback's
# Handle ("<Handle list.append('callback')>").
_REPR = reprlib.Repr()
_REPR.maxother = 60
_REPR.maxstring = 40

#: A story longer than this many visible steps is shortened.
MAX_STEPS_SHOWN = 40
#: Steps kept around each marked step, and at the start and end, when
#: shortening.
CONTEXT_STEPS = 2
LAST_STEPS = 12
FIRST_STEPS = 4


@dataclass(frozen=True, slots=True)
class Location:
    filename: str
    lineno: int
    function: str

    def format(self, *, source: bool) -> str:
        text = f"{short_path(self.filename)}:{self.lineno} in {self.function}"
        if source:
            line = linecache.getline(self.filename, self.lineno).strip()
            if line:
                text += f": {line}"
        return text


def where(task: Task) -> Location | None:
    """The innermost frame of `task`'s await chain in the program's own code:
    outside tether and, if there is such a frame, outside the standard
    library (``asyncio.sleep`` is called from somewhere). None if the task
    is all tether, or has exited."""
    found = None
    for frame, lineno in task.iter_await_frames():
        code = frame.f_code
        filename = code.co_filename
        if is_internal(filename):
            continue
        if found is None or not filename.startswith(_STDLIB):
            found = (code, lineno)
    if found is None:
        return None
    code, lineno = found
    return Location(code.co_filename, lineno, code.co_name)


def has_started(task: Task) -> bool:
    """Whether `task`'s code has run at all (its coroutine is past its
    start, or finished)."""
    coro = task.code_coroutine()
    if getattr(coro, "cr_frame", None) is not None:
        return bool(coro.cr_suspended or coro.cr_running)
    if getattr(coro, "gi_frame", None) is not None:
        return bool(coro.gi_suspended or coro.gi_running)
    return True


@dataclass(slots=True)
class Step:
    number: int
    task: Task
    time: float
    #: Where the task resumed; None for its first step.
    resumed_at: Location | None
    #: Whether the task was inside tether only when this step began.
    internal: bool
    #: A non-default decision that chose this task: (decision number, the
    #: task the default order would have run).
    decision: tuple[int, Task] | None = None
    #: A cancellation the schedule made just before this step's batch.
    cancelled: CancelScope | None = None


class Story:
    """The steps of one run, recorded by the schedule's scheduler."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        #: Each task seen, with its arguments (as text) if it was seen before
        #: it started; in the order first seen, for naming them.
        self._seen: dict[Task, str | None] = {}

    def saw(self, batch: list[Task]) -> None:
        """Note the tasks of `batch` (in spawn order), so that tasks are
        numbered in the order they were started."""
        seen = self._seen
        for task in batch:
            if task not in seen:
                seen[task] = None if has_started(task) else _arguments(task)

    def record(self, number: int, task: Task, time: float) -> Step:
        started = has_started(task)
        location = where(task) if started else None
        internal = location is None if started else _code_is_internal(task)
        step = Step(number, task, time, location, internal)
        self.steps.append(step)
        return step

    # -- formatting --------------------------------------------------------------

    def format(self, *, decisions: int, headline: str) -> str:
        """The story as text: `headline`, then one line per visible step.
        `decisions` is the number of decisions the run made."""
        names = self._names()
        following = self._yield_locations()
        # Steps of tether's own tasks (all in tether when they start and
        # when they yield) are left out, unless the schedule acted on them.
        visible = [
            (step, following[index])
            for index, step in enumerate(self.steps)
            if not (step.internal and following[index][1])
            or step.decision is not None
            or step.cancelled is not None
        ]
        hidden = len(self.steps) - len(visible)
        marked = sum(1 for step, _ in visible if step.decision is not None)
        lines = [headline] if headline else []
        summary = (
            f"How the run went: {_plural(len(self.steps), 'step')}, "
            f"{_plural(decisions, 'scheduling decision')} ({marked} not the default order, "
            "marked *); times are the run's clock"
        )
        if hidden:
            summary += f"; {_plural(hidden, 'step')} of tether's own tasks left out"
        lines.append(summary + ":")
        width = len(str(self.steps[-1].number)) if self.steps else 1
        shown = list(_shorten(visible))
        times = {step.number: f"t={_time(step.time)}" for step, _ in visible}
        time_width = max(map(len, times.values()), default=0)
        name_width = max((len(names[step.task]) for step, _ in visible), default=0)
        indent = " " * (4 + width + 2 + time_width + 2)
        for item in shown:
            if item is None:
                lines.append("    ...")
                continue
            step, (yielded, _) = item
            mark = "*" if step.decision is not None else " "
            resumed = step.resumed_at.format(source=False) if step.resumed_at else "start"
            lines.append(
                f"  {mark} {step.number:>{width}}  {times[step.number]:<{time_width}}  "
                f"{names[step.task]:<{name_width}}  {resumed} -> {yielded}"
            )
            if step.cancelled is not None:
                deadline = _time(step.cancelled.deadline)
                lines.append(
                    f"{indent}^ the schedule made the deadline (t={deadline}) around "
                    f"{names[step.task]} fire just before this step"
                )
            if step.decision is not None:
                number, default = step.decision
                lines.append(
                    f"{indent}^ decision {number}: {names[step.task]} ran before "
                    f"{names[default]}, which the default order runs first"
                )
        return "\n".join(lines)

    def _yield_locations(self) -> list[tuple[str, bool]]:
        """For each step: where it yielded, as text, and whether that is
        inside tether only."""
        result: list[tuple[str, bool]] = [("", False)] * len(self.steps)
        later: dict[Task, Step] = {}
        for index in range(len(self.steps) - 1, -1, -1):
            step = self.steps[index]
            following = later.get(step.task)
            if following is not None:
                location = following.resumed_at
                result[index] = (
                    location.format(source=True) if location else "(in tether)",
                    location is None,
                )
            else:
                result[index] = _final_location(step.task)
            later[step.task] = step
        return result

    def _names(self) -> dict[Task, str]:
        """A name for each task: its function's name, with its arguments
        if other tasks run the same function, and a number (in order of
        starting) if that is still ambiguous."""
        base = {task: _short_name(task) for task in self._seen}
        names = {}
        for task, arguments in self._seen.items():
            name = base[task]
            if arguments is not None and _count(base.values(), name) > 1:
                name += arguments
            names[task] = name
        numbered: dict[str, int] = {}
        counts = {name: _count(names.values(), name) for name in names.values()}
        for task in self._seen:
            name = names[task]
            if counts[name] > 1:
                numbered[name] = numbered.get(name, 0) + 1
                names[task] = f"{name}#{numbered[name]}"
        return names


def _final_location(task: Task) -> tuple[str, bool]:
    coro = task.code_coroutine()
    frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
    if frame is None:
        return "exited", _code_is_internal(task)
    location = where(task)
    if location is None:
        return "(in tether)", True
    return location.format(source=True) + " (still there)", False


def _code_is_internal(task: Task) -> bool:
    coro = task.code_coroutine()
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    return code is not None and is_internal(code.co_filename)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _count(values: Iterable[str], value: str) -> int:
    return sum(1 for other in values if other == value)


def _arguments(task: Task) -> str | None:
    """``(arg, ...)`` for a task that has not started yet: the values its
    function was called with, shortened."""
    coro = task.code_coroutine()
    frame = getattr(coro, "cr_frame", None)
    if frame is None:
        return None
    code = frame.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    values = [
        _REPR.repr(frame.f_locals[name])
        for name in names
        if name not in ("self", "cls") and name in frame.f_locals
    ]
    return f"({', '.join(values)})"


def _short_name(task: Task) -> str:
    """ "package.module.function.<locals>.worker" -> "worker"; a name given
    with ``name=`` (or an asyncio task's "Task-3") is kept whole, followed by
    the task's function when it does not say it."""
    name = task.name
    if " " not in name and "." in name:
        return name.rsplit(".", 1)[-1]
    if "::" in name:
        # The plugin's "test path/to/test_x.py::test_y[param]".
        return name.rsplit("::", 1)[-1]
    coro = task.code_coroutine()
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    if code is not None and code.co_name not in name and not is_internal(code.co_filename):
        return f"{name} ({code.co_name})"
    return name


def _time(value: float) -> str:
    return f"{value:g}"


def _shorten(
    visible: list[tuple[Step, tuple[str, bool]]],
) -> Iterator[tuple[Step, tuple[str, bool]] | None]:
    """The visible steps, or, if there are too many, the first few, those
    around marked steps and the last few, with None where steps were cut."""
    if len(visible) <= MAX_STEPS_SHOWN:
        yield from visible
        return
    keep = set(range(FIRST_STEPS)) | set(range(len(visible) - LAST_STEPS, len(visible)))
    for index, (step, _) in enumerate(visible):
        if step.decision is not None or step.cancelled is not None:
            keep.update(range(index - CONTEXT_STEPS, index + CONTEXT_STEPS + 1))
    previous = -1
    for index in sorted(i for i in keep if 0 <= i < len(visible)):
        if index != previous + 1:
            yield None
        yield visible[index]
        previous = index

"""A text picture of a run's task tree: `format_task_tree`.

Used by the hang and deadlock reports of `tether.testing` and by the task
dump (`tether.lowlevel.install_task_dump`). It draws a snapshot
(`tether.lowlevel.current_task_tree`): tasks under the nursery they live
in, nurseries under the task that opened them, from the run's root task.
Each task shows its state if it is not blocked, what it waits on if it is,
the cancel scopes of its own code that say something (a deadline, a
shield, a cancellation), and its await frames, outermost first, where each
run of frames inside tether itself is shortened to its first frame and a
count.
"""

from __future__ import annotations

import functools
import linecache
import math
import os
import sys
from pathlib import Path

from ._core import (
    CancelScopeInfo,
    FrameInfo,
    Task,
    TaskInfo,
    TaskTree,
    current_root_task,
    format_time,
    in_tether_run,
    take_task_tree,
)

# Paths under the tether package are shown as "tether/...".
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
_PACKAGE_DIR = str(_PACKAGE_PARENT / "tether") + os.sep


def format_task_tree(root: Task | TaskTree | None = None) -> str:
    """Draw a run's tasks as text: under each task the nurseries it has
    open, under each nursery its tasks; for each task what it waits on, its
    cancel scopes, and where it is.

    `root` is a snapshot taken earlier (a `tether.lowlevel.TaskTree`), a
    task (the tree under it, taken now), or None (the whole current run,
    taken now). Not a checkpoint; it changes nothing. Taking the snapshot
    here needs the run's thread (a task, a callback, an instrument), or a
    `root` task when called from another thread, as a best effort.

    Raises:
      RuntimeError: outside a run, with no `root`.
    """
    if isinstance(root, TaskTree):
        tree = root
    else:
        if root is None and in_tether_run() and current_root_task() is None:
            return "(the run has no root task yet)"
        tree = take_task_tree(root, sys._getframe(1))
    lines: list[str] = []
    _draw_task(tree.root, tree.now, "", "", lines)
    return "\n".join(lines)


def _draw_task(
    root: TaskInfo, now: float, first_prefix: str, prefix: str, lines: list[str]
) -> None:
    """Append the drawing of `root` and everything under it to `lines`.
    (With an explicit stack: trees can be deeper than Python's recursion
    limit.)"""
    todo: list[tuple[TaskInfo, str, str] | str] = [(root, first_prefix, prefix)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            lines.append(item)
            continue
        info, first_prefix, prefix = item
        lines.extend(_task_lines(info, now, first_prefix, prefix))
        # Pushed in reverse, so that they come out in order.
        below: list[tuple[TaskInfo, str, str] | str] = []
        for index, nursery in enumerate(info.nurseries):
            last = index == len(info.nurseries) - 1
            scope_text = _scope_text(nursery.cancel_scope, now)
            label = "nursery" + (f" ({scope_text})" if scope_text else "")
            below.append(f"{prefix}{'└── ' if last else '├── '}{label}")
            child_prefix = prefix + ("    " if last else "│   ")
            if not nursery.children:
                below.append(f"{child_prefix}└── (no tasks)")
            for child_index, child in enumerate(nursery.children):
                child_last = child_index == len(nursery.children) - 1
                below.append(
                    (
                        child,
                        child_prefix + ("└── " if child_last else "├── "),
                        child_prefix + ("    " if child_last else "│   "),
                    )
                )
        todo.extend(reversed(below))


def _task_lines(info: TaskInfo, now: float, first_prefix: str, prefix: str) -> list[str]:
    """The task's own lines: its name and state, what it waits on, its
    scopes, its frames."""
    marks = []
    if info.system:
        marks.append("system")
    if info.state != "blocked":
        marks.append(info.state)
    lines = [f"{first_prefix}task {info.name!r}" + (f" ({', '.join(marks)})" if marks else "")]
    body = prefix + ("│   " if info.nurseries else "    ")
    if info.waiting_for is not None:
        lines.append(f"{body}blocked: {info.waiting_for.description}")
    for scope in info.cancel_scopes:
        text = _scope_text(scope, now) if scope.nursery is None else ""
        if text:
            lines.append(f"{body}in cancel scope: {text}")
    lines.extend(body + line for line in _await_chain(info.frames))
    return lines


def _scope_text(scope: CancelScopeInfo, now: float) -> str:
    """What is worth saying about a scope (empty for a plain one). A scope
    cancelled only because an outer one was is not marked: the outer one
    is."""
    parts = []
    if scope.cancel_called:
        parts.append(f"cancelled: {scope.cancel_reason}")
    elif scope.deadline != math.inf:
        parts.append(f"deadline {format_time(scope.deadline, now)}")
    if scope.shield:
        parts.append("shielded")
    return ", ".join(parts)


def _await_chain(frames: tuple[FrameInfo, ...]) -> list[str]:
    """One line per frame, outermost first; each run of frames inside
    tether itself is shortened to its first frame and a count."""
    lines: list[str] = []
    hidden = 0
    previous_internal = False
    for frame in frames:
        internal = is_internal(frame.filename)
        if internal and previous_internal:
            hidden += 1
            continue
        if hidden:
            lines[-1] += f"  (+{hidden} frames in tether)"
            hidden = 0
        previous_internal = internal
        source = linecache.getline(frame.filename, frame.lineno).strip()
        where = f"{short_path(frame.filename)}:{frame.lineno} in {frame.function}"
        lines.append(where + (f": {source}" if source else ""))
    if hidden:
        lines[-1] += f"  (+{hidden} frames in tether)"
    return lines


def is_internal(filename: str) -> bool:
    """Whether `filename` is a module of the tether package itself."""
    return filename.startswith(_PACKAGE_DIR)


#: How many file names `short_path` remembers (a tree of many tasks shows
#: the same few files again and again).
_SHORT_PATHS_CACHED = 1024


def short_path(filename: str) -> str:
    """`filename` relative to tether's parent directory or the working
    directory, when it is under one of them."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    return _short_path(filename, cwd)


@functools.lru_cache(maxsize=_SHORT_PATHS_CACHED)
def _short_path(filename: str, cwd: str) -> str:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return filename
    for base in (_PACKAGE_PARENT, Path(cwd) if cwd else None):
        if base is None:
            continue
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return filename

"""A text picture of a run's tasks, for reports on hung tests.

Tasks are shown under the nursery they live in, nurseries under the task that
opened them, starting from the run's root task. Each task lists its await
chain, outermost first: where it is blocked.
"""

from __future__ import annotations

import linecache
import os
from pathlib import Path

from ..lowlevel import Task, current_root_task, current_task, in_tether_task

# Paths under the tether package are shown as "tether/...".
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent.parent
_PACKAGE_DIR = str(_PACKAGE_PARENT / "tether") + os.sep


def format_task_tree(root: Task | None = None) -> str:
    """Draw the tree of tasks under `root` (default: the current run's root
    task). Call it from the run's thread, between task steps or inside a
    task. Not a checkpoint."""
    if root is None:
        root = current_root_task()
        if root is None:
            return "(the run has no root task yet)"
    lines: list[str] = []
    _draw_task(root, "", "", lines)
    return "\n".join(lines)


def _draw_task(task: Task, first_prefix: str, prefix: str, lines: list[str]) -> None:
    running = in_tether_task() and task is current_task()
    # A running task's frames are on the stack, not in its await chain.
    lines.append(f"{first_prefix}task {task.name!r}" + (" (running)" if running else ""))
    nurseries = task.child_nurseries
    frame_prefix = prefix + ("│   " if nurseries else "    ")
    for line in _await_chain(task):
        lines.append(frame_prefix + line)
    for index, nursery in enumerate(nurseries):
        last = index == len(nurseries) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}nursery")
        child_prefix = prefix + ("    " if last else "│   ")
        children = sorted(nursery.child_tasks, key=lambda t: (t.name, id(t)))
        if not children:
            lines.append(f"{child_prefix}└── (no tasks)")
        for child_index, child in enumerate(children):
            child_last = child_index == len(children) - 1
            _draw_task(
                child,
                child_prefix + ("└── " if child_last else "├── "),
                child_prefix + ("    " if child_last else "│   "),
                lines,
            )


def _await_chain(task: Task) -> list[str]:
    """One line per frame of the task's await chain; each run of frames
    inside tether itself is shortened to its first frame and a count."""
    lines: list[str] = []
    hidden = 0
    previous_internal = False
    for frame, lineno in task.iter_await_frames():
        code = frame.f_code
        internal = is_internal(code.co_filename)
        if internal and previous_internal:
            hidden += 1
            continue
        if hidden:
            lines[-1] += f"  (+{hidden} frames in tether)"
            hidden = 0
        previous_internal = internal
        source = linecache.getline(code.co_filename, lineno).strip()
        where = f"{short_path(code.co_filename)}:{lineno} in {code.co_name}"
        lines.append(where + (f": {source}" if source else ""))
    if hidden:
        lines[-1] += f"  (+{hidden} frames in tether)"
    return lines


def is_internal(filename: str) -> bool:
    """Whether `filename` is a module of the tether package itself."""
    return filename.startswith(_PACKAGE_DIR)


def short_path(filename: str) -> str:
    """`filename` relative to tether's parent directory or the working
    directory, when it is under one of them."""
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return filename
    for base in (_PACKAGE_PARENT, Path.cwd()):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return filename

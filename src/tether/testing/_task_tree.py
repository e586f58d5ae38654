"""A text picture of a run's tasks, for reports on hung tests.

The drawing itself lives with the task dump (`tether._task_tree_text`), so
that `tether.lowlevel.install_task_dump` can use it without importing the
testing tools; this module gives it its `tether.testing` name.
"""

from __future__ import annotations

from .._task_tree_text import format_task_tree, is_internal, short_path

__all__ = ["format_task_tree", "is_internal", "short_path"]

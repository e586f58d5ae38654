"""asyncio's other module-level names, for code that looks them up on
``tether.aio`` as it would on ``asyncio``.

Libraries written against asyncio reach for names beyond the high-level API:
the policy and loop classes (``DefaultEventLoopPolicy``,
``SelectorEventLoop``, ``EventLoop``), the base loop class, the child
watchers, and the private hooks that event-loop implementations and task
libraries call (``_get_running_loop``, ``_register_task``,
``_enter_task``...). tether.aio gives its own classes under the loop and
policy names; every other name is the standard library's own object, which
works with tether's loop because tether keeps its running loop and current
task in the standard library's registries (see `_stdlib.py`). A name that
asyncio does not have on this Python is not invented here either.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: Private asyncio names that are part of how event loops and task
#: libraries plug into asyncio; they are also on the ``asyncio`` module.
_PRIVATE_HOOKS = frozenset(
    {
        "_get_running_loop",
        "_set_running_loop",
        "_register_task",
        "_unregister_task",
        "_enter_task",
        "_leave_task",
        "_get_event_loop",
        "_register_eager_task",
        "_unregister_eager_task",
        "_swap_current_task",
    }
)


def lookup(name: str) -> Any:
    """The standard library's asyncio object for `name`, if `name` is one of
    asyncio's public names (``asyncio.__all__``) or plug-in hooks; otherwise
    `AttributeError` (as a module's missing attribute)."""
    if name in _PRIVATE_HOOKS or name in asyncio.__all__:
        try:
            return getattr(asyncio, name)
        except AttributeError:
            pass
    raise AttributeError(f"module 'tether.aio' has no attribute {name!r}")

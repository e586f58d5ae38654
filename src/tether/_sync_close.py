"""`ClosesSynchronously`: the ``aclose`` of a resource whose closing never
waits.

Some resources close at once: `FdStream`, the in-memory and lockstep test
streams and the memory channels do all their closing in a synchronous
``close()``. Their ``aclose()`` is then always the same two steps, written
here once: ``close()``, then a checkpoint.

Invariant: the order. The resource is closed before the checkpoint, so it
is closed even when the checkpoint raises `Cancelled`, as
`tether.abc.AsyncResource.aclose` requires.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ._core import checkpoint

__all__ = ["ClosesSynchronously"]


class ClosesSynchronously(ABC):
    """Mixin for a resource with a synchronous `close`: provides `aclose`.
    List it before the `tether.abc` class, whose ``aclose`` is abstract."""

    __slots__ = ()

    @abstractmethod
    def close(self) -> None:
        """Close the resource now. Not a checkpoint."""

    async def aclose(self) -> None:
        """`close`, then a checkpoint. Closed even if cancelled (the
        checkpoint then raises `Cancelled`)."""
        self.close()
        await checkpoint()

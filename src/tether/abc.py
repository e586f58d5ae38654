"""Abstract base classes users implement to plug into tether."""

from ._core import Clock, Instrument

__all__ = ["Clock", "Instrument"]

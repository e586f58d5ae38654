"""`RunVar`: a variable whose value is local to one `tether.run` call."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ._run_context import GLOBAL_RUN_CONTEXT

T = TypeVar("T")

_NO_DEFAULT: Any = object()


class RunVarToken(Generic[T]):
    """What `RunVar.set` returns: pass it to `RunVar.reset` to put back the
    value the variable had before (``previous_value``). Usable once."""

    __slots__ = ("_redeemed", "_var", "previous_value")

    #: The variable it was made by.
    _var: RunVar[T]
    #: Public: the value before the `set` (a private marker for "none").
    previous_value: Any
    #: Used by `reset` already (a token works once).
    _redeemed: bool

    def __init__(self, var: RunVar[T], previous_value: Any) -> None:
        self._var = var
        self.previous_value = previous_value
        self._redeemed = False


class RunVar(Generic[T]):
    """Like a `contextvars.ContextVar`, but one value per run instead of per
    task: every task of a run sees the same value, and a new run starts from
    the default. Useful for per-run caches in libraries. Only usable inside
    `tether.run` (outside, `RuntimeError`)."""

    __slots__ = ("_default", "_name")

    #: For error messages and ``repr``.
    _name: str
    #: The value before any `set` in a run; a private marker for none.
    _default: T

    def __init__(self, name: str, default: T = _NO_DEFAULT) -> None:
        self._name = name
        self._default = default

    def _values(self) -> dict[RunVar[Any], Any]:
        try:
            return GLOBAL_RUN_CONTEXT.runner.run_vars
        except AttributeError:
            raise RuntimeError(f"RunVar {self._name!r} used outside of tether.run") from None

    def get(self, default: T = _NO_DEFAULT) -> T:
        """The value for this run; `default`, then the variable's default,
        when unset; `LookupError` if neither exists."""
        values = self._values()
        try:
            value: T = values[self]
            return value
        except KeyError:
            if default is not _NO_DEFAULT:
                return default
            if self._default is not _NO_DEFAULT:
                return self._default
            raise LookupError(self) from None

    def set(self, value: T) -> RunVarToken[T]:
        """Set the value for this run; returns a token for `reset`."""
        values = self._values()
        previous = values.get(self, _NO_DEFAULT)
        values[self] = value
        return RunVarToken(self, previous)

    def reset(self, token: RunVarToken[T]) -> None:
        """Restore the value that was current before the `set` that returned
        `token`. A token can be used once, with the variable that made it."""
        if not isinstance(token, RunVarToken):
            raise TypeError(f"expected a RunVarToken, got {token!r}")
        if token._var is not self:
            # (trio's words; the token came from another RunVar's set().)
            raise ValueError("token is not for us")
        if token._redeemed:
            raise ValueError("token has already been used")
        values = self._values()
        if token.previous_value is _NO_DEFAULT:
            values.pop(self, None)
        else:
            values[self] = token.previous_value
        token._redeemed = True

    def __repr__(self) -> str:
        return f"<RunVar name={self._name!r}>"

"""tether's public API, read from the code: which modules are public, what
each one exports, and which exported names lack a docstring.

The documentation build (`tether_docs.py`) and the test suite
(``tests/docs/test_public_api.py``) both use this module, so the rule is
the same in both places:

* A public module is ``tether`` or a submodule whose dotted path has no
  component starting with ``_`` (``tether.lowlevel``, ``tether.aio.subprocess``;
  ``tether.socket`` as soon as it exists). Every public module has ``__all__``.
* A name in ``__all__`` is one of: a submodule, a class, an exception, a
  function, or data (a constant such as ``TASK_STATUS_IGNORED``).
* A name whose object is defined outside tether (``tether.aio.Lock`` is
  ``asyncio.Lock``) is a *re-export*; the reference names its origin instead
  of copying another project's documentation.
* Everything else needs a docstring: classes and functions their own
  ``__doc__``; their public methods and properties a docstring of their own or
  one inherited from the tether method they override; data a Sphinx attribute
  comment (``#:`` lines above the assignment, or a string right after it) at
  the place where it is defined, found by following the ``from ... import``
  chain from the public module.

This module needs nothing but the standard library (no Sphinx), so the test
suite can run it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import types
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

ROOT_PACKAGE = "tether"

MODULE = "module"
CLASS = "class"
EXCEPTION = "exception"
FUNCTION = "function"
DATA = "data"


@dataclass(frozen=True)
class Entry:
    """One name in a public module's ``__all__``."""

    module: str  # the public module that lists it
    name: str
    kind: str  # MODULE, CLASS, EXCEPTION, FUNCTION or DATA
    #: For a re-export, the public dotted name of the original
    #: (``asyncio.Lock``, ``TimeoutError``); None for tether's own objects.
    origin: str | None
    #: The docstring (for data: its attribute comment); None if it has none.
    doc: str | None

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.name}"


def public_modules(root: str = ROOT_PACKAGE) -> list[str]:
    """``root`` and its public submodules, recursively, sorted."""
    found = [root]
    package = importlib.import_module(root)
    for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
        if info.name.startswith("_"):
            continue
        name = f"{root}.{info.name}"
        if info.ispkg:
            found.extend(public_modules(name))
        else:
            importlib.import_module(name)
            found.append(name)
    return sorted(found)


def entries(module_name: str) -> list[Entry]:
    """Every name in ``module_name.__all__``, classified, in ``__all__`` order."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        raise LookupError(f"public module {module_name} has no __all__")
    return [_entry(module, name) for name in names]


def _entry(module: types.ModuleType, name: str) -> Entry:
    obj = getattr(module, name)
    if inspect.ismodule(obj):
        origin = None if _is_tether(obj.__name__) else obj.__name__
        return Entry(module.__name__, name, MODULE, origin, obj.__doc__ or None)
    if inspect.isclass(obj) or _is_function(obj):
        if inspect.isclass(obj):
            kind = EXCEPTION if issubclass(obj, BaseException) else CLASS
            # A class's own docstring only: inspect.getdoc would find a base's.
            doc = obj.__dict__.get("__doc__")
            if dataclasses.is_dataclass(obj) and doc == _dataclass_generated_doc(obj):
                doc = None  # what @dataclass writes when the class has none
        else:
            kind = FUNCTION
            doc = obj.__doc__
        defined_in = getattr(obj, "__module__", None) or ""
        if _is_tether(defined_in):
            return Entry(module.__name__, name, kind, None, doc or None)
        return Entry(module.__name__, name, kind, _public_origin(obj, name), doc or None)
    defined_in, defined_as = _find_definition(module.__name__, name)
    if not _is_tether(defined_in):
        return Entry(module.__name__, name, DATA, f"{defined_in}.{defined_as}", None)
    doc = _attribute_docs(defined_in).get(defined_as)
    if doc is None and defined_as not in _static_names(defined_in):
        # Not assigned by any statement (e.g. copied in a loop with
        # globals()): a re-export if a module imported there has it.
        origin = _dynamic_origin(defined_in, defined_as, obj)
        if origin is not None:
            return Entry(module.__name__, name, DATA, origin, None)
    return Entry(module.__name__, name, DATA, None, doc)


def _dataclass_generated_doc(cls: type) -> str:
    try:
        signature = str(inspect.signature(cls)).replace(" -> None", "")
    except (TypeError, ValueError):
        return ""
    return cls.__name__ + signature


def _is_tether(module_name: str) -> bool:
    return module_name == ROOT_PACKAGE or module_name.startswith(ROOT_PACKAGE + ".")


def _is_function(obj: object) -> bool:
    return inspect.isroutine(obj) or (callable(obj) and hasattr(obj, "__wrapped__"))


def _public_origin(obj: object, exported_as: str) -> str:
    """The name users know a foreign object by: ``asyncio.Lock`` rather than
    ``asyncio.locks.Lock``, ``asyncio.Future`` rather than ``_asyncio.Future``."""
    defined_in: str = getattr(obj, "__module__", "") or ""
    own_name: str = getattr(obj, "__qualname__", exported_as)
    if defined_in == "builtins":
        return own_name
    parts = defined_in.split(".")
    # Shortest public module first: asyncio, then asyncio.locks.
    candidates = [".".join(p.lstrip("_") for p in parts[: i + 1]) for i in range(len(parts))]
    for candidate in candidates:
        try:
            home = importlib.import_module(candidate)
        except ImportError:
            continue
        for attribute in (own_name, exported_as):
            if getattr(home, attribute, None) is obj:
                return f"{candidate}.{attribute}"
    return f"{defined_in}.{own_name}"


def _find_definition(module_name: str, name: str) -> tuple[str, str]:
    """Follow ``from X import name`` statements from ``module_name`` to the
    module that assigns ``name``: returns (that module, the name there).
    A module outside tether ends the search (it is the origin)."""
    seen: set[tuple[str, str]] = set()
    while _is_tether(module_name):
        if (module_name, name) in seen:
            break
        seen.add((module_name, name))
        tree = _syntax_tree(module_name)
        if tree is None:
            break
        imported = _imported_from(tree, module_name, name)
        if imported is None:
            return module_name, name  # assigned here (or not at all: no doc found)
        module_name, name = imported
    return module_name, name


@cache
def _static_names(module_name: str) -> frozenset[str]:
    """Names that a statement of the module assigns or imports."""
    tree = _syntax_tree(module_name)
    if tree is None:
        return frozenset()
    names: set[str] = set()
    for node in _top_level(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            names.update(_assigned_names(node))
    return frozenset(names)


def _dynamic_origin(module_name: str, name: str, value: object) -> str | None:
    """For a name a module sets dynamically: ``M.name`` if a non-tether
    module ``M`` that it imports has an attribute ``name`` equal to
    ``value`` (``import socket as _socket`` and a loop copying constants)."""
    tree = _syntax_tree(module_name)
    if tree is None:
        return None
    for node in _top_level(tree):
        if not isinstance(node, ast.Import):
            continue
        for alias in node.names:
            if _is_tether(alias.name):
                continue
            try:
                source = importlib.import_module(alias.name)
            except ImportError:
                continue
            if hasattr(source, name) and getattr(source, name) == value:
                return f"{alias.name}.{name}"
    return None


def _imported_from(tree: ast.Module, module_name: str, name: str) -> tuple[str, str] | None:
    assigned = False
    imported: tuple[str, str] | None = None
    for node in _top_level(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    source = importlib.util.resolve_name(
                        "." * node.level + (node.module or ""), _package_of(module_name)
                    )
                    imported = (source, alias.name)
        elif name in _assigned_names(node):
            assigned = True
    return None if assigned else imported


def _package_of(module_name: str) -> str:
    spec = importlib.util.find_spec(module_name)
    if spec is not None and spec.submodule_search_locations is not None:
        return module_name
    return module_name.rpartition(".")[0]


@cache
def _syntax_tree(module_name: str) -> ast.Module | None:
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    with open(spec.origin, encoding="utf-8") as source:
        return ast.parse(source.read(), filename=spec.origin)


@cache
def _source_lines(module_name: str) -> list[str]:
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None
    with open(spec.origin, encoding="utf-8") as source:
        return source.read().splitlines()


def _top_level(tree: ast.Module) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside if/try/with blocks."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        yield node
        if isinstance(node, ast.If | ast.Try | ast.With):
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)


def _assigned_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    return []


@cache
def _attribute_docs(module_name: str) -> dict[str, str]:
    """The attribute comments of a module's top-level assignments, in
    Sphinx's two spellings: ``#:`` lines right above (or at the end of) the
    assignment, or a string literal right after it."""
    tree = _syntax_tree(module_name)
    if tree is None:
        return {}
    lines = _source_lines(module_name)
    docs: dict[str, str] = {}
    body = list(_top_level(tree))
    for index, node in enumerate(body):
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        names = _assigned_names(node)
        if not names:
            continue
        doc = None
        following = body[index + 1] if index + 1 < len(body) else None
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            doc = inspect.cleandoc(following.value.value)
        else:
            comment: list[str] = []
            line = node.lineno - 2  # the line above, 0-based
            while line >= 0 and lines[line].strip().startswith("#:"):
                comment.insert(0, lines[line].strip()[2:].strip())
                line -= 1
            trailing = lines[node.lineno - 1].partition("#:")[2].strip()
            doc = "\n".join(comment) or trailing or None
        for name in names:
            if doc:
                docs[name] = doc
    return docs


def clear_caches() -> None:
    """Forget the source files read so far (for tests that make modules)."""
    for cached in (_syntax_tree, _source_lines, _attribute_docs, _static_names):
        cached.cache_clear()


def undocumented_members(cls: type) -> list[str]:
    """Public methods and properties defined in ``cls`` that have no
    docstring, their own or one inherited from a base class."""
    missing = []
    for attribute, value in vars(cls).items():
        if attribute.startswith("_"):
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if not (isinstance(value, property) or inspect.isroutine(value)):
            continue  # plain class attributes and dataclass fields
        if not (value.__doc__ or _inherited_tether_doc(cls, attribute)):
            missing.append(attribute)
    return missing


def _inherited_tether_doc(cls: type, attribute: str) -> str | None:
    """The docstring of the method ``attribute`` overrides, if a tether base
    class documents it. (An override of a standard-library method needs its
    own: it says what tether's version does, and the reference does not
    show the standard library's text as tether's.)"""
    for base in cls.__mro__[1:]:
        if attribute in vars(base):
            if not _is_tether(base.__module__):
                return None
            value = vars(base)[attribute]
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            doc = getattr(value, "__doc__", None)
            if doc:
                return str(doc)
    return None


def missing_docstrings(module_names: list[str] | None = None) -> list[str]:
    """One message per public name (or public member of a public class) of
    tether that has no docstring, naming it; empty when all are documented."""
    problems: list[str] = []
    classes_seen: set[type] = set()
    for module_name in module_names or public_modules():
        try:
            module_entries = entries(module_name)
        except LookupError as error:
            problems.append(str(error))
            continue
        for entry in module_entries:
            if entry.origin is not None:
                continue  # a re-export: documented where it comes from
            if not entry.doc:
                how = (
                    "add a '#:' comment above its assignment"
                    if entry.kind == DATA
                    else "add a docstring"
                )
                problems.append(f"{entry.qualified_name} ({entry.kind}) has no docstring: {how}")
            if entry.kind in (CLASS, EXCEPTION):
                cls = getattr(importlib.import_module(entry.module), entry.name)
                if cls in classes_seen:
                    continue
                classes_seen.add(cls)
                problems.extend(
                    f"{entry.qualified_name}.{member} (public member) has no docstring: "
                    "add a docstring"
                    for member in undocumented_members(cls)
                )
    return problems

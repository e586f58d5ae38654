"""Sphinx configuration for tether's documentation site.

Build (from the repository root, with the docs extra installed)::

    .venv/bin/sphinx-build -W --keep-going -q docs docs/_build/html

The Markdown pages are parsed by myst-parser; the reference (``api/``) is
generated from the public modules' ``__all__`` by ``_ext/tether_docs.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import tether  # noqa: E402  (after the path set-up above, like every conf.py)

project = "tether"
author = "the tether developers"
copyright = "the tether developers"
release = tether.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "tether_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# benchmarks-latest.md is not a page of its own: benchmarks.md includes it.
exclude_patterns = ["_build", "examples", "_ext", "**/.pytest_cache", "benchmarks-latest.md"]

# Docstrings write `name` for a name: make that a cross-reference (rendered
# as code whether or not it resolves).
default_role = "py:obj"

# Markdown: "#running"-style links to headings, as on GitHub.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# tether's docstrings are Google-style ("Args:", "Raises:", "Attributes:").
napoleon_google_docstring = True
napoleon_numpy_docstring = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
python_use_unqualified_type_names = True
add_module_names = False

html_theme = "furo"
html_title = f"tether {release}"
html_static_path: list[str] = []

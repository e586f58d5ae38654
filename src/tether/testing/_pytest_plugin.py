"""pytest plugin for tether (registered through the ``pytest11`` entry point).

Placeholder until the testing-toolkit work lands: it registers the
``tether`` marker so that tests can already use it.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tether: run this async test under tether.run")

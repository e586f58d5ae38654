"""sniffio reports "tether" inside tether tasks, and only there."""

import contextvars
from contextlib import contextmanager

import pytest

import tether
from tether import lowlevel
from tether._core import forget_async_library, mark_tether_context

sniffio = pytest.importorskip("sniffio")


def test_inside_tasks_only():
    async def main():
        return sniffio.current_async_library()

    with pytest.raises(sniffio.AsyncLibraryNotFoundError):
        sniffio.current_async_library()
    assert tether.run(main) == "tether"
    with pytest.raises(sniffio.AsyncLibraryNotFoundError):
        sniffio.current_async_library()


@contextmanager
def another_library_marked():
    # What another library running in this thread would have set.
    token = sniffio.current_async_library_cvar.set("otherio")
    previous, sniffio.thread_local.name = sniffio.thread_local.name, "otherio"
    try:
        yield
    finally:
        sniffio.thread_local.name = previous
        sniffio.current_async_library_cvar.reset(token)


def test_new_tasks_report_tether_whatever_their_spawner_set():
    seen = []

    async def report(label):
        seen.append((label, sniffio.current_async_library()))

    def sync_returning_coroutine(label):
        # Called while the task is being spawned, in the spawner's thread.
        seen.append((label + " (call)", sniffio.current_async_library()))
        return report(label)

    async def main():
        with another_library_marked():
            lowlevel.spawn_system_task(report, "system")
        async with tether.open_nursery() as nursery:
            with another_library_marked():
                nursery.start_soon(report, "child")
                nursery.start_soon(sync_returning_coroutine, "wrapped")

    tether.run(main)
    assert sorted(seen) == [
        ("child", "tether"),
        ("system", "tether"),
        ("wrapped", "tether"),
        ("wrapped (call)", "tether"),
    ]


def test_forget_async_library_clears_a_copied_context():
    async def main():
        context = contextvars.copy_context()
        forget_async_library(context)
        return context.run(sniffio.current_async_library_cvar.get)

    assert tether.run(main) is None


def test_mark_tether_context_marks_a_context():
    context = contextvars.Context()
    mark_tether_context(context)
    assert context.run(sniffio.current_async_library) == "tether"

"""tether.lowlevel.start_thread_soon: the process-wide cache of worker threads.

No tether run is involved: jobs are handed over and results collected with
`queue.Queue` and `threading.Event`, each wait bounded by GATE_TIMEOUT so a
broken cache fails the test instead of hanging it.
"""

import ctypes
import gc
import os
import queue
import sys
import threading

import pytest

from tether import lowlevel
from tether._core import _thread_cache

pytestmark = pytest.mark.timeout(20)

GATE_TIMEOUT = 10  # seconds; only reached when a test is already failing


def run_job(fn, name=None):
    """Run `fn` through the cache and return its outcome."""
    results = queue.Queue()
    lowlevel.start_thread_soon(fn, results.put, name)
    return results.get(timeout=GATE_TIMEOUT)


def test_deliver_receives_the_outcome_of_fn():
    assert run_job(lambda: 42).unwrap() == 42

    def fails():
        raise LookupError("from the worker")

    with pytest.raises(LookupError, match="from the worker"):
        run_job(fails).unwrap()


def test_the_job_runs_in_a_daemon_thread_other_than_the_caller():
    worker = run_job(threading.current_thread).unwrap()
    assert worker is not threading.current_thread()
    assert worker.daemon


def test_fn_is_released_once_the_job_is_done():
    collected = threading.Event()

    class Job:
        def __call__(self):
            return "done"

        def __del__(self):
            collected.set()

    assert run_job(Job()).unwrap() == "done"
    gc.collect()
    # The idle worker must not keep the job's callable (and whatever it
    # refers to, such as a context) alive until its next job.
    assert collected.wait(GATE_TIMEOUT)


def test_a_job_started_from_deliver_reuses_the_delivering_thread():
    # Make several workers idle first, so that picking the wrong one (not the
    # most recently idle) would show.
    barrier = threading.Barrier(4, timeout=GATE_TIMEOUT)
    results = queue.Queue()
    for _ in range(4):
        lowlevel.start_thread_soon(barrier.wait, results.put)
    for _ in range(4):
        results.get(timeout=GATE_TIMEOUT).unwrap()

    seen = []
    done = threading.Event()

    def deliver(remaining, _outcome):
        seen.append(threading.current_thread())
        if remaining:
            lowlevel.start_thread_soon(lambda: None, lambda o: deliver(remaining - 1, o))
        else:
            done.set()

    lowlevel.start_thread_soon(lambda: None, lambda o: deliver(5, o))
    assert done.wait(GATE_TIMEOUT)
    assert len(seen) == 6
    assert len(set(seen)) == 1


def test_jobs_handed_over_together_all_run_at_once():
    # Each job blocks until all have started: none may wait in the queue for
    # a busy worker.
    count = 8
    results = queue.Queue()
    # First leave `count` idle workers, so that handing the jobs over wakes
    # sleeping threads instead of starting new ones.
    release = threading.Event()
    for _ in range(count):
        lowlevel.start_thread_soon(lambda: release.wait(GATE_TIMEOUT), results.put)
    release.set()
    for _ in range(count):
        assert results.get(timeout=GATE_TIMEOUT).unwrap()

    barrier = threading.Barrier(count, timeout=GATE_TIMEOUT)
    for _ in range(count):
        lowlevel.start_thread_soon(barrier.wait, results.put)
    for _ in range(count):
        results.get(timeout=GATE_TIMEOUT).unwrap()


def test_jobs_queued_for_a_delivering_worker_do_not_wait_for_each_other():
    # Both jobs are handed over while one worker delivers, so both wait for
    # it; the first blocks until the second has run, so the second must get
    # a thread of its own.
    second_ran = threading.Event()
    results = queue.Queue()

    def deliver(_outcome):
        lowlevel.start_thread_soon(lambda: second_ran.wait(GATE_TIMEOUT), results.put)
        lowlevel.start_thread_soon(second_ran.set, results.put)

    lowlevel.start_thread_soon(lambda: None, deliver)
    outcomes = [results.get(timeout=GATE_TIMEOUT) for _ in range(2)]
    assert [o.unwrap() for o in outcomes] == [None, True]


def test_a_job_without_a_thread_raises_and_never_runs(monkeypatch):
    cache = _thread_cache.ThreadCache()  # no idle workers: needs a new thread
    ran = []

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        cache.start_thread_soon(lambda: ran.append(1), lambda _outcome: None)
    monkeypatch.undo()
    # The cache is usable again, and the refused job did not linger in it.
    results = queue.Queue()
    cache.start_thread_soon(lambda: "next", results.put)
    assert results.get(timeout=GATE_TIMEOUT).unwrap() == "next"
    assert ran == []


def test_an_error_in_deliver_is_printed_and_the_worker_carries_on(capfd):
    first = queue.Queue()

    def bad_deliver(result):
        first.put(threading.current_thread())
        raise RuntimeError("deliver went wrong")

    lowlevel.start_thread_soon(lambda: None, bad_deliver)
    worker = first.get(timeout=GATE_TIMEOUT)
    # The failing worker went idle before delivering, so it is the most
    # recently idle one and takes the next job.
    assert run_job(threading.current_thread).unwrap() is worker
    err = capfd.readouterr().err
    assert "deliver went wrong" in err
    assert "delivering result" in err
    assert "Traceback" in err


def test_idle_workers_exit_after_the_idle_timeout(monkeypatch):
    monkeypatch.setattr(_thread_cache, "IDLE_TIMEOUT", 0.01)
    # A new cache, so that the worker is fresh and reads the patched timeout.
    cache = _thread_cache.ThreadCache()
    results = queue.Queue()
    cache.start_thread_soon(threading.current_thread, results.put)
    worker = results.get(timeout=GATE_TIMEOUT).unwrap()
    worker.join(GATE_TIMEOUT)
    assert not worker.is_alive()


def test_the_thread_carries_the_job_name_while_the_job_runs():
    def names():
        return threading.current_thread(), threading.current_thread().name

    worker, during = run_job(names, name="resize images").unwrap()
    assert during == "resize images"
    assert worker.name.startswith("Tether thread ")
    # Without a name the worker keeps its own.
    worker, during = run_job(names).unwrap()
    assert during == worker.name
    assert during.startswith("Tether thread ")


def os_thread_name():
    """The calling thread's OS-level name, or None if it cannot be read."""
    try:
        libc = ctypes.CDLL(None)
        getname = libc.pthread_getname_np
    except (OSError, AttributeError, TypeError):
        return None
    getname.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    libc.pthread_self.restype = ctypes.c_void_p
    buffer = ctypes.create_string_buffer(64)
    if getname(libc.pthread_self(), buffer, 64) != 0:
        return None
    return buffer.value.decode("ascii")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux thread names")
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("short", "short"),
        ("a name longer than fifteen bytes", "a name longer t"),
        ("caf\N{LATIN SMALL LETTER E WITH ACUTE} \N{BLUE HEART}", "caf? ?"),
    ],
)
def test_the_os_thread_name_follows_the_job_name_on_linux(name, expected):
    def job():
        return threading.current_thread(), os_thread_name()

    worker, during = run_job(job, name=name).unwrap()
    assert during == expected
    # Back to the worker's own name (also truncated) afterwards.
    _, after = run_job(job).unwrap()
    assert after == worker.name[:15]


def test_without_os_thread_names_jobs_still_run(monkeypatch):
    # Platforms without pthread_setname_np: only Thread.name changes.
    monkeypatch.setattr(_thread_cache, "set_os_thread_name", None)
    assert run_job(lambda: threading.current_thread().name, name="plain").unwrap() == "plain"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_workers():
    # Leave an idle worker in the cache: the child inherits the cache but not
    # the thread, and must not hand a job to a worker that does not exist.
    run_job(lambda: None).unwrap()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child process)
        try:
            ok = run_job(lambda: "child").unwrap() == "child"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_jobs_function_is_released_before_its_result_is_delivered():
    # A task that gets a worker thread's result must find the objects the
    # job held (its function, so the context copy and arguments of
    # to_thread.run_sync) already gone: checked from inside `deliver`.
    import weakref

    class Held:
        pass

    refs = []

    def make_fn():
        # (Only the job holds the function, and so the object.)
        held = Held()
        refs.append(weakref.ref(held))
        return lambda: held and None

    alive_at_delivery = queue.Queue()

    def deliver(result):
        alive_at_delivery.put(refs[0]() is not None)

    lowlevel.start_thread_soon(make_fn(), deliver)
    assert alive_at_delivery.get(timeout=10) is False

"""tether as a guest of Tk's mainloop: a cancellable download with a progress bar.

A window with a Start button, a Cancel button and a progress bar. Start
runs a download-like task (chunks arriving one by one) in tether; Cancel
cancels it. Tk's ``mainloop()`` owns the main thread, and tether runs on
that same thread as its guest (`tether.lowlevel.start_guest_run`): the
tether code updates the widgets directly, and the button callbacks start
and cancel tether work directly. No ``root.update()`` polling loop, no
second thread for the async code (only tether's waits for I/O happen in a
worker thread).

Run it:

    python docs/examples/guest_tk.py --demo
        clicks its own buttons (start, cancel at 50%, start again, let it
        finish), prints what happened, and closes the window
    python docs/examples/guest_tk.py
        the same window, for you to click

It needs a display: tests/docs/test_gui_examples.py runs it under a virtual
one (Xvfb) when there is one to use. It prints:

    download 1: started
    download 1: cancelled at 50%
    download 2: started
    download 2: done (100%)
    window closed; tether guest run finished with: bye
"""

import collections
import sys
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

import outcome

import tether

CHUNKS = 10
#: How long each chunk of the "download" takes to arrive.
CHUNK_SECONDS = 0.05


class TkHost:
    """Tk's event loop as a host for a tether guest run.

    Tk must only be used from its own thread. A worker thread may still
    queue a callback and ask Tk to run one (tkinter forwards a Tcl call made
    from another thread to Tk's thread), so both of tether's ways in go
    through a queue and one registered Tcl command that runs the oldest
    callback in it."""

    def __init__(self, root: tk.Tk) -> None:
        self.root = root
        self.pending: collections.deque[Callable[[], object]] = collections.deque()
        self.command = root.register(self._run_one)

    def _run_one(self) -> None:
        self.pending.popleft()()

    def run_sync_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self.pending.append(fn)  # (a deque's append is atomic)
        self.root.call("after", "idle", self.command)

    # From Tk's own thread the same code is fine.
    run_sync_soon_not_threadsafe = run_sync_soon_threadsafe


class DownloadWindow:
    """The widgets, and the tether code behind them."""

    def __init__(self, root: tk.Tk, nursery: tether.Nursery) -> None:
        self.root = root
        self.nursery = nursery
        self.closed = tether.Event()
        self.downloads = 0
        self.scope: tether.CancelScope | None = None
        #: Called with each download's progress, and with its end (a demo
        #: hooks these to click the buttons itself).
        self.on_progress: Callable[[int], None] = lambda percent: None
        self.on_end: Callable[[bool], None] = lambda cancelled: None

        root.title("tether guest of Tk")
        self.bar = ttk.Progressbar(root, length=300, maximum=100)
        self.status = ttk.Label(root, text="press Start")
        self.start_button = ttk.Button(root, text="Start", command=self.start)
        self.cancel_button = ttk.Button(root, text="Cancel", command=self.cancel)
        self.cancel_button.state(["disabled"])
        for widget in (self.bar, self.status, self.start_button, self.cancel_button):
            widget.pack(padx=10, pady=5)
        root.protocol("WM_DELETE_WINDOW", self.closed.set)

    def start(self) -> None:
        # A Tk callback starting tether work: it runs on the guest run's
        # thread, so it may call tether's synchronous functions.
        self.nursery.start_soon(self.download)

    def cancel(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    async def download(self) -> None:
        self.downloads += 1
        name = f"download {self.downloads}"
        print(f"{name}: started")
        self.start_button.state(["disabled"])
        self.cancel_button.state(["!disabled"])
        self.bar["value"] = 0
        with tether.CancelScope() as self.scope:
            for chunk in range(1, CHUNKS + 1):
                await tether.sleep(CHUNK_SECONDS)  # a chunk arrives
                percent = 100 * chunk // CHUNKS
                self.bar["value"] = percent
                self.status["text"] = f"{name}: {percent}%"
                self.on_progress(percent)
        self.scope = None
        self.start_button.state(["!disabled"])
        self.cancel_button.state(["disabled"])
        if self.bar["value"] < 100:
            self.status["text"] = f"{name}: cancelled at {self.bar['value']:.0f}%"
        else:
            self.status["text"] = f"{name}: done"
        print(self.status["text"].replace("done", "done (100%)"))
        self.on_end(self.bar["value"] < 100)


def click_through(window: DownloadWindow) -> None:
    """The --demo: press Start, Cancel at 50%, Start again, and close the
    window when the second download is done, as a user would."""

    def on_progress(percent: int) -> None:
        if window.downloads == 1 and percent == 50:
            window.cancel_button.invoke()

    def on_end(cancelled: bool) -> None:
        if cancelled:
            window.start_button.invoke()
        else:
            window.closed.set()

    window.on_progress = on_progress
    window.on_end = on_end
    window.root.after_idle(window.start_button.invoke)


async def tether_main(root: tk.Tk, demo: bool) -> str:
    async with tether.open_nursery() as nursery:
        window = DownloadWindow(root, nursery)
        if demo:
            click_through(window)
        await window.closed.wait()
        nursery.cancel_scope.cancel()  # stop a download still running
    return "bye"


def main(demo: bool) -> None:
    root = tk.Tk()
    host = TkHost(root)
    result: list[outcome.Outcome[Any]] = []

    def done(run_outcome: outcome.Outcome[Any]) -> None:
        result.append(run_outcome)
        root.destroy()  # ends mainloop()

    tether.lowlevel.start_guest_run(
        tether_main,
        root,
        demo,
        run_sync_soon_threadsafe=host.run_sync_soon_threadsafe,
        run_sync_soon_not_threadsafe=host.run_sync_soon_not_threadsafe,
        done_callback=done,
    )
    root.mainloop()
    print(f"window closed; tether guest run finished with: {result[0].unwrap()}")


if __name__ == "__main__":
    main(demo="--demo" in sys.argv[1:])

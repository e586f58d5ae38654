"""A small tether program: workers in a nursery, a deadline, a cancellation.

Three "downloads" run concurrently. The whole batch gets a deadline; one
download is slow and gets cancelled when the deadline passes, one fails and
its error is reported, and the program prints what happened to each.

Run it: python docs/examples/crawl_with_deadline.py

It prints:

    deadline hit: True
      fast: done after 0.1s
      slow: cancelled
    error reported: ConnectionError('broken: connection reset')
      sibling: cancelled
    finished in 0.60s (not 10s: cancelled work stopped at once)

(tests/docs/test_examples.py checks that it does.)
"""

import tether


async def download(name: str, seconds: float, results: dict[str, str]) -> None:
    try:
        await tether.sleep(seconds)
        if name == "broken":
            raise ConnectionError(f"{name}: connection reset")
        results[name] = f"done after {seconds}s"
    except tether.Cancelled:
        results[name] = "cancelled"
        raise  # always let Cancelled propagate to the scope that caused it


async def main() -> None:
    results: dict[str, str] = {}
    start = tether.current_time()
    with tether.move_on_after(0.5) as scope:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(download, "fast", 0.1, results)
            nursery.start_soon(download, "slow", 5.0, results)
    print(f"deadline hit: {scope.cancelled_caught}")
    for name, what in sorted(results.items()):
        print(f"  {name}: {what}")

    try:
        async with tether.open_nursery() as nursery:
            nursery.start_soon(download, "broken", 0.1, results)
            nursery.start_soon(download, "sibling", 5.0, results)
    except* ConnectionError as group:
        print(f"error reported: {group.exceptions[0]!r}")
        print(f"  sibling: {results['sibling']}")
    elapsed = tether.current_time() - start
    print(f"finished in {elapsed:.2f}s (not 10s: cancelled work stopped at once)")


if __name__ == "__main__":
    tether.run(main)

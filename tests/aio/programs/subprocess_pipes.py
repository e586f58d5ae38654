"""Subprocesses: communicate, wait, streaming stdout."""

import asyncio
import sys


async def main():
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; print(sys.stdin.read()[::-1]); sys.exit(4)",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(b"olleh")
    print("communicate", out, err, proc.returncode)
    proc = await asyncio.create_subprocess_shell(
        "echo first; echo second", stdout=asyncio.subprocess.PIPE
    )
    async for line in proc.stdout:
        print("line", line)
    print("exit", await proc.wait())
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(10)")
    try:
        await asyncio.wait_for(proc.wait(), 0.05)
    except TimeoutError:
        print("still running", proc.returncode)
    proc.kill()
    print("killed", await proc.wait())


asyncio.run(main())

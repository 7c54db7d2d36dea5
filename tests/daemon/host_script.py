"""A host process for the daemon tests: `python host_script.py LOCATION JOB COUNT [--wait]`.

Opens a workspace over LOCATION with the instance at RUNTIME_HOME, launches
COUNT runs of JOB, prints each run id on its own line once stored, and with
--wait waits until every run ended; otherwise it waits until it is killed.
"""

from __future__ import annotations

import sys

import anyio

from runtime import Workspace


async def main(location: str, job: str, count: int, wait: bool) -> None:
    async with Workspace.from_targets(python_files=[location]) as ws:
        runs = []
        for _ in range(count):
            run = await ws.launch_run(job=job)
            print(run.run_id, flush=True)  # noqa: T201 (the test reads it)
            runs.append(run)
        if not wait:
            await anyio.sleep_forever()
        for run in runs:
            await run.wait()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), "--wait" in sys.argv[4:])

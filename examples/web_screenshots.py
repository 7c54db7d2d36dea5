"""Take the README's screenshots of the web UI: `python examples/web_screenshots.py`.

Serves examples/hello_world, a small pipeline whose steps take a moment (for
the timeline) and a location that fails to import, launches runs, and has
Debian's headless Chromium (/usr/bin/chromium, driven by Playwright) photograph
the pages into examples/screenshots/. Needs the test extra and `apt-get install chromium`.
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import anyio

HERE = Path(__file__).parent
OUT = HERE / "screenshots"

PIPELINE = """
import asyncio, time
from runtime import Definitions, asset, job, op

@op
async def fetch_orders() -> list[int]:
    await asyncio.sleep(0.3)
    return list(range(100))

@op
def clean(orders: list[int]) -> list[int]:
    time.sleep(0.2)
    return [o for o in orders if o % 7]

@op
async def enrich(orders: list[int]) -> list[int]:
    await asyncio.sleep(0.45)
    return [o * 2 for o in orders]

@op
def score(orders: list[int]) -> float:
    time.sleep(0.25)
    return sum(orders) / len(orders)

@op
def publish(cleaned: list[int], enriched: list[int], scored: float) -> None:
    print(f"published {len(cleaned)} orders, score {scored:.1f}")

@job(tags={"team": "analytics"})
def nightly_orders():
    orders = fetch_orders()
    publish(clean(orders), enrich(orders), score(orders))

@asset
def customers() -> list[str]:
    return ["ada", "grace"]

@asset
def segments(customers: list[str]) -> dict[str, int]:
    return {c: len(c) for c in customers}

defs = Definitions(jobs=[nightly_orders], assets=[customers, segments])
"""

BROKEN = """
import pandas_but_misspelled  # the location fails to import: the UI shows why
"""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def main() -> None:
    from playwright.async_api import async_playwright

    from runtime import Instance, Workspace
    from runtime.web import create_app, serve

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "orders.py").write_text(textwrap.dedent(PIPELINE))
        (folder / "legacy_reports.py").write_text(textwrap.dedent(BROKEN))
        files = [
            HERE / "hello_world" / "definitions.py",
            folder / "orders.py",
            folder / "legacy_reports.py",
        ]
        async with (
            Instance.ephemeral() as instance,
            Workspace.from_targets(python_files=files, instance=instance, restart=False) as ws,
            serve(create_app(ws), "127.0.0.1", 0) as at,
            async_playwright() as playwright,
        ):
            for _ in range(2):
                await (await ws.launch_run(job="etl", tags={"trigger": "manual"})).wait()
            run = await ws.launch_run(job="nightly_orders", tags={"env": "staging"})
            await run.wait()
            context = await playwright.chromium.launch_persistent_context(
                str(folder / "profile"),
                executable_path="/usr/bin/chromium",
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1360, "height": 860},
            )
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(at.url + "/")
            await page.locator('[data-status="error"]').wait_for()
            await page.screenshot(path=str(OUT / "locations.png"), full_page=True)
            await page.goto(f"{at.url}/runs/{run.run_id}")
            await page.locator('tr.event[data-type="RUN_SUCCESS"]').wait_for()
            await page.screenshot(path=str(OUT / "run.png"), full_page=True)
            await page.goto(f"{at.url}/locations/orders/jobs/nightly_orders")
            await page.locator('[data-node="publish"]').wait_for()
            await page.screenshot(path=str(OUT / "launchpad.png"), full_page=True)
            await context.close()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    anyio.run(main)

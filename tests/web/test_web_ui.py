"""The UI in a real headless Chromium against a real server, code servers and instance."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.web.browser import chromium_page
from tests.web.web_helpers import LOCATION, wait_for_file, web_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


async def test_the_locations_page_shows_status_live_and_a_broken_locations_error(
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    async with (
        web_server(tmp_path, broken=True) as srv,
        chromium_page(tmp_path / "profile") as page,
    ):
        await page.goto(srv.url + "/")
        good = page.locator(f'tr.location[data-location="{LOCATION}"]')
        await expect(good.locator('[data-status="loaded"]')).to_be_visible()
        await expect(
            page.locator('tr.location[data-location="broken_orders"] [data-status="error"]')
        ).to_be_visible()
        error = page.locator('tr.location-error[data-location="broken_orders"]')
        await expect(error).to_contain_text("ZeroDivisionError: the orders table is empty")
        await expect(error.locator("pre.traceback")).to_contain_text("broken_orders.py")
        await expect(page.locator("#live")).to_have_text("● live")

        # Reloading: the row follows the location to its new server without a page load.
        old = srv.workspace.locations[LOCATION].server_id
        assert old is not None
        await expect(good).to_contain_text(old[:8])
        await good.get_by_role("button", name="Reload").click()
        await expect(good.locator('[data-status="loaded"]')).to_be_visible()
        new = srv.workspace.locations[LOCATION]
        await expect(page.locator(f'tr.location[data-location="{LOCATION}"]')).not_to_contain_text(
            old[:8]
        )
        assert new.server_id != old
        await expect(page.locator(f'tr.location[data-location="{LOCATION}"]')).to_contain_text(
            f"pid {new.pid}"
        )


async def test_a_run_launched_from_the_launchpad_shows_its_events_as_they_happen(
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    async with web_server(tmp_path) as srv, chromium_page(tmp_path / "profile") as page:
        await page.goto(f"{srv.url}/locations/{LOCATION}/jobs/blocked")
        await expect(page.locator('#job-graph [data-node="blocking_step"]')).to_be_visible()
        await expect(page.locator('#job-graph [data-node="after_block"]')).to_be_visible()
        await page.fill("#run-tags", "team=web")
        await page.click("#launch")
        await page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
        run_id = page.url.rsplit("/", 1)[1]
        # The step is blocked: its start is on the page, the run's end is not.
        await expect(page.locator('tr.event[data-type="STEP_START"]')).to_have_count(1)
        await wait_for_file(srv.control / "blocking_started")
        await expect(page.locator('#run-status [data-status="STARTED"]')).to_be_visible()
        assert await page.locator('tr.event[data-type="RUN_SUCCESS"]').count() == 0
        await expect(page.locator('#steps tr[data-step="blocking_step"]')).to_have_attribute(
            "data-status", "IN_PROGRESS"
        )

        (srv.control / "release").write_text("")
        await expect(page.locator('tr.event[data-type="RUN_SUCCESS"]')).to_have_count(1)
        await expect(page.locator('#run-status [data-status="SUCCESS"]')).to_be_visible()
        await expect(page.locator('#steps tr[data-step="after_block"]')).to_have_attribute(
            "data-status", "SUCCESS"
        )
        await expect(page.locator("#gantt rect.bar")).to_have_count(2)
        await expect(page.locator("#run-ended")).to_contain_text("all events received")
        sequences = await page.locator("tr.event").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.sequence))"
        )
        assert sequences == list(range(1, len(sequences) + 1))
        run = (await srv.client.get(f"/api/runs/{run_id}")).json()
        assert run["tags"] == {"team": "web"}
        assert run["event_count"] == len(sequences)


async def test_the_launchpad_shows_the_servers_validation_message(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with web_server(tmp_path) as srv, chromium_page(tmp_path / "profile") as page:
        await page.goto(f"{srv.url}/locations/{LOCATION}/jobs/configured")
        editor = page.locator("#run-config")
        # The editor starts from the config the step takes.
        await expect(editor).to_have_value(
            re.compile(r"greet:\n\s+config:\n\s+name: \"\"\n\s+times: 1")
        )
        await editor.fill("ops:\n  greet:\n    config:\n      name: [not, a, string]\n")
        await editor.press("Control+Enter")
        box = page.locator("#launch-error")
        await expect(box).to_contain_text("RunConfigError")
        await expect(box).to_contain_text("$.ops.greet.config.name")
        assert "/runs/" not in page.url
        assert (await srv.client.get("/api/runs")).json() == []

        await editor.fill("ops:\n  greet:\n    config:\n      name: browser\n")
        await page.click("#launch")
        await page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
        await expect(page.locator('#run-status [data-status="SUCCESS"]')).to_be_visible()


async def test_a_long_run_is_cancelled_from_its_page(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with web_server(tmp_path) as srv, chromium_page(tmp_path / "profile") as page:
        run_id = await srv.launch("slow_async")
        await page.goto(f"{srv.url}/runs/{run_id}")
        await expect(page.locator('tr.event[data-type="STEP_START"]')).to_have_count(1)
        cancel = page.locator("#cancel")
        await expect(cancel).to_be_enabled()
        await expect(page.locator("#reexecute-all")).to_be_disabled()
        await cancel.click()
        await expect(page.locator('#run-status [data-status="CANCELED"]')).to_be_visible()
        await expect(page.locator('tr.event[data-type="RUN_CANCELED"]')).to_have_count(1)
        await expect(cancel).to_be_disabled()
        stored = (await srv.client.get(f"/api/runs/{run_id}")).json()
        assert stored["status"] == "CANCELED"
        # The page folds the events as the server does.
        step = next(s for s in stored["steps"] if s["step_key"] == "long_async")
        await expect(page.locator('#steps tr[data-step="long_async"]')).to_have_attribute(
            "data-status", step["status"]
        )

        # Re-executing from the page opens the new run.
        await page.click("#reexecute-all")
        await page.wait_for_url(re.compile(r"/runs/(?!" + run_id + r")[0-9a-f-]{36}$"))
        new_id = page.url.rsplit("/", 1)[1]
        assert (await srv.client.get(f"/api/runs/{new_id}")).json()["parent_run_id"] == run_id
        await srv.client.post(f"/api/runs/{new_id}/cancel")


async def test_runs_filter_and_the_other_pages_draw(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with web_server(tmp_path) as srv, chromium_page(tmp_path / "profile") as page:
        ok = await srv.launch("diamond")
        failed = await srv.launch("recoverable")
        assets_run = await srv.launch("__ASSET_JOB")
        for run_id in (ok, failed, assets_run):
            await srv.wait_for_status(run_id, {"SUCCESS", "FAILURE"})

        await page.goto(f"{srv.url}/runs")
        await expect(page.locator("#runs tbody tr[data-run]")).to_have_count(3)
        await page.select_option("#filter-status", "FAILURE")
        await page.press("#filter-job", "Enter")
        await expect(page.locator("#runs tbody tr[data-run]")).to_have_count(1)
        await expect(page.locator(f'#runs tr[data-run="{failed}"]')).to_be_visible()
        assert "status=FAILURE" in page.url

        # Keyboard: "g" then "a" opens the assets.
        await page.locator("body").press("g")
        await page.locator("body").press("a")
        await page.wait_for_url(re.compile(r"/assets$"))
        await expect(page.locator('#asset-graph [data-node="doubled"]')).to_be_visible()
        await expect(page.locator('#assets tr[data-asset="numbers"]')).to_contain_text(
            assets_run[:8]
        )
        await page.locator('#asset-graph [data-node="doubled"]').focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#asset-detail")).to_contain_text("numbers")

        await page.goto(f"{srv.url}/schedules")
        row = page.locator('#schedules tr[data-instigator="hourly"]')
        await expect(row).to_contain_text("0 * * * *")
        await expect(row.locator('[data-status="running"]')).to_be_visible()
        await page.goto(f"{srv.url}/sensors")
        sensor = page.locator('#sensors tr[data-instigator="watcher"]')
        await expect(sensor).to_contain_text("every 45 s")
        await expect(sensor.locator('[data-status="stopped"]')).to_be_visible()
        await sensor.get_by_role("button", name="Start").click()
        await expect(sensor.locator('[data-status="running"]')).to_be_visible()
        await expect(sensor.get_by_role("button", name="Stop")).to_be_visible()
        listed = (await srv.client.get("/api/sensors")).json()
        assert listed[0]["status"] == "running" and listed[0]["state_stored"]

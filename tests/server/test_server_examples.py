"""The examples, served through every target flag, and the demo program."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers_server import start_code_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODULE_LOCATION = str(EXAMPLES / "module_location")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "target",
    [
        ("--package-name", "orders_pipeline"),
        ("-m", "orders_pipeline"),
        ("--module-name", "orders_pipeline", "--attribute", "defs"),
    ],
)
async def test_module_location_by_package_or_module(target: tuple[str, ...]) -> None:
    args = (*target, "-d", MODULE_LOCATION, "--port", "0")
    async with start_code_server(*args) as server:
        async with server.client() as client:
            snapshot = await client.snapshot()
    assert snapshot.error is None
    expected_name = "orders_pipeline:defs" if "--attribute" in target else "orders_pipeline"
    assert snapshot.location_name == expected_name
    deps = {asset.key: asset.deps for asset in snapshot.assets}
    assert deps == {
        "raw_orders": [],
        "raw_customers": [],
        "daily_revenue": ["raw_orders"],
        "top_customers": ["raw_orders", "raw_customers"],
    }
    (reports,) = [job for job in snapshot.jobs if job.name == "refresh_reports"]
    assert [step.key for step in reports.steps] == ["daily_revenue", "top_customers"]
    assert snapshot.schedules[0].execution_timezone == "Europe/Paris"


@pytest.mark.anyio
async def test_module_location_from_its_folder_without_working_directory() -> None:
    async with start_code_server("-m", "orders_pipeline", "-p", "0", cwd=MODULE_LOCATION) as server:
        async with server.client() as client:
            assert len((await client.snapshot()).assets) == 4


@pytest.mark.anyio
async def test_lazy_repository_example() -> None:
    path = str(EXAMPLES / "lazy_repository" / "repo.py")
    async with start_code_server("-f", path, "-p", "0", "--location-name", "lazy") as server:
        async with server.client() as client:
            snapshot = await client.snapshot()
    assert snapshot.error is None
    assert [job.name for job in snapshot.jobs] == ["nightly", "backfill"]
    (nightly,) = [job for job in snapshot.jobs if job.name == "nightly"]
    assert nightly.description == "Built on first use."
    assert [step.key for step in nightly.steps] == ["fetch", "summarize"]


@pytest.mark.anyio
async def test_a_lazy_job_that_fails_to_build_is_a_served_load_error(tmp_path: Path) -> None:
    path = tmp_path / "lazy_broken.py"
    path.write_text(
        textwrap.dedent(
            """
            from runtime import repository

            def build_report_job():
                raise RuntimeError("report config missing")

            @repository
            def reports():
                return {"jobs": {"report": build_report_job}}
            """
        )
    )
    async with start_code_server("-f", str(path), "-p", "0", "--lazy-load-user-code") as server:
        async with server.client() as client:
            snapshot = await client.snapshot()
    assert snapshot.error is not None
    assert snapshot.error.type == "runtime.errors.DefinitionError"
    assert "'report'" in snapshot.error.message
    assert "report config missing" in snapshot.error.message


def test_demo_launches_a_run_and_stops_every_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RUNTIME_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "hello_world" in out and "remote_hello" in out and "orders_pipeline" in out
    assert "RUN_STARTING" in out and "STEP_SUCCESS" in out and "RUN_SUCCESS" in out
    assert "double" in out and "extract" in out
    assert "code server processes still running: none" in out

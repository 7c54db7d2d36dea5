"""orders_pipeline: a code location whose assets live in submodules.

Serve it as a package or a module, from examples/module_location (a TCP port needs a
token: set RUNTIME_CODE_SERVER_TOKEN, or pass --auth-token-file):
    runtime api grpc --package-name orders_pipeline --working-directory examples/module_location --port 4000
    runtime api grpc --module-name orders_pipeline --working-directory examples/module_location --port 4000
"""

from __future__ import annotations

from orders_pipeline.assets import ingest, reporting
from runtime import Definitions, define_asset_job, load_assets_from_modules, schedule

all_assets = load_assets_from_modules([ingest, reporting])

reporting_job = define_asset_job("refresh_reports", selection=["daily_revenue", "top_customers"])


@schedule(cron_schedule="0 6 * * *", job=reporting_job, execution_timezone="Europe/Paris")
def morning_reports(context: object) -> dict[str, object]:
    return {}


defs = Definitions(assets=all_assets, jobs=[reporting_job], schedules=[morning_reports])

"""The hello-world example served over TCP and a Unix socket."""

from __future__ import annotations

import pytest

from tests.helpers_server import start_code_server
from tests.server.server_helpers import HELLO


@pytest.mark.anyio
async def test_hello_world_over_tcp_port_zero() -> None:
    async with start_code_server("--python-file", HELLO, "--port", "0") as server:
        assert server.address.startswith("127.0.0.1:")
        assert not server.address.endswith(":0")
        async with server.client() as client:
            reply = await client.ping("hi")
            assert reply.echo == "hi"
            assert reply.server_id == server.server_id
            snapshot = await client.snapshot()
    assert snapshot.error is None
    assert snapshot.location_name == "definitions"
    assert {job.name for job in snapshot.jobs} >= {"etl", "__ASSET_JOB"}
    assert {asset.key for asset in snapshot.assets} == {
        "raw_orders",
        "order_count",
        "revenue_by_customer",
    }
    assert [s.name for s in snapshot.schedules] == ["hourly_etl"]
    assert [s.name for s in snapshot.sensors] == ["every_third_tick"]

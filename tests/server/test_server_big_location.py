"""A location with 10,000 assets loads, and its snapshot crosses in chunks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime.protocol.messages import CHUNK_SIZE, encode
from tests.helpers_server import start_code_server

if TYPE_CHECKING:
    from pathlib import Path

ASSET_COUNT = 10_000


def write_big_location(path: Path) -> None:
    lines = ["from runtime import Definitions, asset", ""]
    for index in range(ASSET_COUNT):
        # Layers of 100: each asset of a layer depends on one asset of the layer before.
        parameter = f"asset_{index - 100:05d}: int" if index >= 100 else ""
        body = f"asset_{index - 100:05d} + 1" if index >= 100 else "0"
        lines += ["@asset", f"def asset_{index:05d}({parameter}) -> int:", f"    return {body}", ""]
    names = ", ".join(f"asset_{index:05d}" for index in range(ASSET_COUNT))
    lines.append(f"defs = Definitions(assets=[{names}])")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_ten_thousand_assets(tmp_path: Path) -> None:
    path = tmp_path / "big_location.py"
    write_big_location(path)
    async with start_code_server("-f", str(path), "--socket", str(tmp_path / "big.sock")) as server:
        async with server.client() as client:
            snapshot = await client.snapshot(timeout=60)
    assert snapshot.error is None
    assert len(snapshot.assets) == ASSET_COUNT
    by_key = {asset.key: asset for asset in snapshot.assets}
    assert by_key["asset_00150"].deps == ["asset_00050"]
    (asset_job,) = [job for job in snapshot.jobs if job.name == "__ASSET_JOB"]
    assert len(asset_job.steps) == ASSET_COUNT
    # More than one chunk crossed the wire: the message limit was never in play.
    assert len(encode(snapshot)) > CHUNK_SIZE

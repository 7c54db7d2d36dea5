"""The latest materialization of each asset, read forward from the instance's event log.

The storage has no per-asset index, so this reads every event once, in
storage order, and afterwards only the events stored since the last read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from runtime.protocol.messages import AssetMaterializationPayload
from runtime.web.models import MaterializationBody

if TYPE_CHECKING:
    from runtime.instance.instance import Instance

_PAGE = 2000


class LatestMaterializations:
    """`await latest(instance)` maps asset keys to their newest materialization."""

    def __init__(self) -> None:
        self._cursor = 0
        self._latest: dict[str, MaterializationBody] = {}
        self._lock = anyio.Lock()
        self._instance: Instance | None = None

    async def latest(self, instance: Instance) -> dict[str, MaterializationBody]:
        async with self._lock:
            if instance is not self._instance:
                self._instance, self._cursor, self._latest = instance, 0, {}
            storage = instance.storage
            while True:
                page = await storage.get_events_after(self._cursor, limit=_PAGE)
                for stored in page:
                    event = stored.event
                    payload = event.payload
                    if isinstance(payload, AssetMaterializationPayload):
                        self._latest[payload.asset_key] = MaterializationBody(
                            run_id=event.run_id,
                            step_key=event.step_key,
                            timestamp=event.timestamp,
                            metadata=payload.metadata,
                        )
                if page:
                    self._cursor = page[-1].storage_id
                if len(page) < _PAGE:
                    return dict(self._latest)

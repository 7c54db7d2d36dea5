"""WebContext: what every handler reads: the workspace, the app's closing signal, caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from runtime.web.http import ApiError
from runtime.web.materializations import LatestMaterializations

if TYPE_CHECKING:
    from runtime.host.workspace import Workspace
    from runtime.instance.instance import Instance
    from runtime.workspace.location import CodeLocation


@dataclass
class WebContext:
    workspace: Workspace
    # Set when the app shuts down: every event stream ends.
    closing: anyio.Event = field(default_factory=anyio.Event)
    materializations: LatestMaterializations = field(default_factory=LatestMaterializations)

    def location(self, name: str) -> CodeLocation:
        """The location called `name`; ApiError 404 listing the known names."""
        location = self.workspace.locations.get(name)
        if location is None:
            known = ", ".join(sorted(self.workspace.locations)) or "none"
            raise ApiError(
                404,
                "CodeLocationError",
                f"No code location named {name!r} in the workspace; the locations are: {known}.",
            )
        return location

    async def open_instance(self) -> Instance:
        """The workspace's instance, opened (the workspace opens it when runs are first read)."""
        instance = self.workspace.instance
        if not instance.is_open:
            await self.workspace.count_runs()
        return instance

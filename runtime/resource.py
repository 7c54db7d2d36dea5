"""OpenedResource: the one `async with` -> open() ... aclose() shape every long-lived resource shares.

anyio's AsyncResource gives `__aexit__` calling `aclose()`; resources that must
open something first (a storage, an instance) add `open()` and get an
`__aenter__` that calls it. `aclose()` must be safe to call twice.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

from anyio.abc import AsyncResource

if TYPE_CHECKING:
    from typing import Self


class OpenedResource(AsyncResource):
    """An async resource that `async with` opens (`open()`) and closes (`aclose()`)."""

    @abstractmethod
    async def open(self) -> None:
        """Acquire what the resource holds; raise if it cannot."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

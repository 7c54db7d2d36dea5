"""define_asset_job: a job over a selection of assets, resolved against the Definitions that hold it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.definitions.asset import AssetsDefinition
from runtime.definitions.introspect import check_name, check_tags, short_repr
from runtime.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from runtime.definitions.asset_graph import AssetGraph
    from runtime.definitions.graph import JobDefinition


class AssetJob:
    """An asset job before it meets its assets; Definitions and repositories resolve it.

    `selection` is a tuple of asset keys, or None for every asset.
    """

    def __init__(
        self,
        name: str,
        selection: tuple[str, ...] | None,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.selection = selection
        self.description = description
        self.tags = dict(tags or {})

    def resolve(self, graph: AssetGraph) -> JobDefinition:
        """The JobDefinition over the selected assets of `graph`.

        Raises DefinitionError naming this job and a selected key that is not an asset.
        """
        return graph.build_job(
            self.name, self.selection, description=self.description, tags=self.tags
        )

    def __repr__(self) -> str:
        return f"<asset job {self.name!r}>"


def define_asset_job(
    name: str,
    selection: str | Iterable[str | AssetsDefinition] | None = None,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> AssetJob:
    """Define a job that materializes the selected assets, in dependency order.

    `selection` is None or "*" for every asset, or a list of assets and asset
    keys. Selected assets whose upstream assets are not selected read those
    upstream values from the IO manager. Raises DefinitionError for an invalid
    name, tags or selection entry; unknown keys are reported when the job is
    resolved against its Definitions.
    """
    job_name = check_name(name, kind="job")
    keys: tuple[str, ...] | None
    if selection is None or selection == "*":
        keys = None
    elif isinstance(selection, str):
        keys = (check_name(selection, kind=f"asset job {job_name!r} selection:"),)
    else:
        collected: dict[str, None] = {}
        for item in selection:
            if isinstance(item, AssetsDefinition):
                collected[item.key] = None
            elif isinstance(item, str):
                collected[check_name(item, kind=f"asset job {job_name!r} selection:")] = None
            else:
                raise DefinitionError(
                    f"asset job {job_name!r} has selection entry {short_repr(item)}; "
                    'pass assets, asset keys, or "*".'
                )
        if not collected:
            raise DefinitionError(f"asset job {job_name!r} selects no assets.")
        keys = tuple(collected)
    return AssetJob(
        job_name, keys, description=description, tags=check_tags(tags, kind="job", name=job_name)
    )

"""What one invocation of the benchmarks measures, from the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Shared by every scenario: the scale, the repetitions, and where to work."""

    quick: bool
    # Interpreter with dagster installed, for the side-by-side figures; None skips them.
    peer_python: Path | None
    # Scratch folder for generated definitions, sockets and databases.
    workdir: Path
    repeats: int
    warmup: int
    # Repetitions for Dagster, whose runs take seconds each.
    peer_repeats: int
    # The instance storage of the storage-bound scenarios (events, launch): sqlite or postgres.
    storage: str = "sqlite"
    # A superuser URL of the server `--storage postgres` creates its scratch database on.
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # The executor of the steps scenario: in_process (its usual rows) or dask.
    executor: str = "in_process"

    def pick(self, full: tuple[int, ...], quick: tuple[int, ...]) -> tuple[int, ...]:
        """The sizes to measure: the quick subset under --quick, else the full list."""
        return quick if self.quick else full

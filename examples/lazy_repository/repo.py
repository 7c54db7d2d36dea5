"""A @repository whose jobs are built only when first asked for.

Building a job can be expensive (reading config, importing a heavy library);
a lazy repository defers it: the dict maps each name to a zero-argument
function. Serve it (a TCP port needs a token):
    RUNTIME_CODE_SERVER_TOKEN=<secret> runtime api grpc --python-file examples/lazy_repository/repo.py --port 4000
"""

from __future__ import annotations

from runtime import job, op, repository


@op
def fetch(context: object) -> list[int]:
    return list(range(10))


@op
def summarize(values: list[int]) -> dict[str, float]:
    return {"count": len(values), "mean": sum(values) / len(values)}


def build_nightly_job() -> object:
    """Pretend this reads a big config first; it runs when the job is first needed."""

    @job(description="Built on first use.")
    def nightly() -> None:
        summarize(fetch())

    return nightly


def build_backfill_job() -> object:
    @job
    def backfill() -> None:
        summarize(fetch())

    return backfill


@repository
def analytics() -> dict[str, dict[str, object]]:
    return {"jobs": {"nightly": build_nightly_job, "backfill": build_backfill_job}}

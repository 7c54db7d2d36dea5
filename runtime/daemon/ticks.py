"""One tick of a schedule or sensor: evaluate it in its code location, launch what it
asks for, and store how it went.

The tick is stored STARTED first, so a daemon that dies mid-tick leaves a trace
the next one finishes. Evaluation runs in the location's code server under
the daemon's `tick_timeout`; an error there, a timeout or an unreachable
location is a FAILURE tick with the reason, never an exception out of the
loop. Run requests with a run key are claimed in the instance before they are
launched (`Instance.add_run_keys` hands each key out once, across processes),
so a key never launches twice, whoever evaluates the instigator and however
often. Leaving early (the daemon stopping) still stores the tick, as FAILURE
saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import msgspec

from runtime.daemon import tags as T
from runtime.errors import RuntimeFrameworkError
from runtime.instance.daemon_records import TickRecord, TickStatus

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from runtime.daemon.context import DaemonContext
    from runtime.daemon.instigators import Instigator
    from runtime.protocol.client import CodeLocationClient
    from runtime.protocol.messages import ErrorInfo, RunRequestData, TickResult

__all__ = ["TickPlan", "describe_error", "run_tick"]

logger = logging.getLogger("runtime.daemon")

STOPPED_MID_TICK = "The daemon stopped before this tick finished."


@dataclass
class TickPlan:
    """What one tick is: who, when, how to evaluate it, and what its runs are tagged with."""

    instigator: Instigator
    tick_time: float
    evaluate: Callable[[CodeLocationClient, float], Awaitable[TickResult]]
    tags: dict[str, str] = field(default_factory=dict)
    # Claimed run keys are `prefix + run_key`: a schedule scopes them to its cron time.
    run_key_prefix: str = ""
    # Schedules also claim requests without a run key, by position, so a tick
    # retried after a crash does not launch them twice.
    claim_unkeyed: bool = False
    notes: list[str] = field(default_factory=list)
    # A STARTED tick a stopped daemon left for this same tick time.
    resume: TickRecord | None = None


def describe_error(error: ErrorInfo) -> str:
    """`Type: message`, then the traceback, as a tick stores it."""
    text = f"{error.type}: {error.message}"
    if error.traceback:
        text += "\n" + error.traceback.rstrip()
    return text


async def run_tick(ctx: DaemonContext, plan: TickPlan) -> tuple[TickRecord, TickResult | None]:
    """Evaluate, launch and store one tick; return the stored tick and the evaluation (None
    when there was none to speak of: a timeout, an unreachable location, a stop)."""
    instigator = plan.instigator
    if plan.resume is not None:
        tick = plan.resume
    else:
        tick = await ctx.instance.create_tick(instigator.id, plan.tick_time)
    try:
        result, problem = await _evaluate(ctx, plan)
        if problem is not None:
            tick = _ended(tick, TickStatus.FAILURE, error=problem, notes=plan.notes)
        elif result is not None and result.error is not None:
            tick = _ended(
                tick, TickStatus.FAILURE, error=describe_error(result.error), notes=plan.notes
            )
        elif result is not None and result.run_requests:
            # Claimed run keys must become runs: a stop waits for the launches.
            with anyio.CancelScope(shield=True):
                tick = await _launch(ctx, plan, tick, result)
        else:
            reason = (result.skip_reason if result is not None else None) or (
                f"{instigator.kind.capitalize()} {instigator.name!r} requested no runs."
            )
            tick = _ended(tick, TickStatus.SKIPPED, skip_reason=reason, notes=plan.notes)
        if result is not None and result.error is None:
            tick = msgspec.structs.replace(tick, cursor=result.cursor)
        with anyio.CancelScope(shield=True):
            tick = await ctx.instance.update_tick(tick)
    except BaseException as exc:
        # Stopped (or broken) mid-tick: the tick still ends, saying why.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            why = STOPPED_MID_TICK
        else:
            why = f"The daemon failed during this tick: {type(exc).__name__}: {exc}"
        with anyio.CancelScope(shield=True):
            try:
                await ctx.instance.update_tick(
                    _ended(tick, TickStatus.FAILURE, error=why, notes=plan.notes)
                )
            except Exception:
                logger.exception("could not store the end of a tick of %s", instigator.label)
        raise
    _log(instigator, tick)
    return tick, result


async def _evaluate(ctx: DaemonContext, plan: TickPlan) -> tuple[TickResult | None, str | None]:
    """(result, None), or (None, why there is none)."""
    instigator = plan.instigator
    timeout = ctx.options.tick_timeout
    try:
        location = ctx.workspace.location(instigator.location)
        async with location.lease() as server:
            with anyio.fail_after(timeout + 1):  # the RPC's own deadline should come first
                return await plan.evaluate(server.client, timeout), None
    except TimeoutError:
        return None, (
            f"{instigator.label.capitalize()} did not finish its evaluation within "
            f"{timeout:g} s (the daemon's tick_timeout)."
        )
    except RuntimeFrameworkError as exc:
        return None, f"{instigator.label.capitalize()} could not be evaluated: {exc}"


async def _launch(
    ctx: DaemonContext, plan: TickPlan, tick: TickRecord, result: TickResult
) -> TickRecord:
    instigator = plan.instigator
    requests = list(result.run_requests)
    claims = [_claim(plan, index, request) for index, request in enumerate(requests)]
    wanted = [claim for claim in claims if claim is not None]
    fresh = await ctx.instance.add_run_keys(instigator.id, wanted) if wanted else set()
    run_ids: list[str] = []
    errors: list[str] = []
    reused: list[str] = []
    notes = list(plan.notes)
    for index, (request, claim) in enumerate(zip(requests, claims, strict=True)):
        if claim is not None:
            if claim not in fresh:
                reused.append(request.run_key or f"#{index + 1}")
                continue
            fresh.discard(claim)  # a key given twice in one tick launches once
        job = request.job_name or instigator.job_name
        what = f"run request {index + 1} (job {job!r}" + (
            f", run key {request.run_key!r})" if request.run_key else ")"
        )
        if job is None:
            errors.append(f"{what.capitalize()} names no job, and the {instigator.kind} has none.")
            continue
        run_tags = {**request.tags, **plan.tags, T.TICK_ID_TAG: tick.tick_id}
        if request.run_key:
            run_tags[T.RUN_KEY_TAG] = request.run_key
        timeout = ctx.options.tick_timeout
        try:
            with anyio.fail_after(timeout):
                handle = await ctx.workspace.launch_run(
                    job=job,
                    location=instigator.location,
                    run_config=request.run_config,
                    tags=run_tags,
                )
        except TimeoutError:
            errors.append(f"{what.capitalize()} was not launched within {timeout:g} s.")
            continue
        except RuntimeFrameworkError as exc:
            errors.append(f"{what.capitalize()} could not launch: {exc}")
            continue
        run_ids.append(handle.run_id)
    if reused:
        notes.append(
            f"{len(reused)} run request(s) not launched: their run keys were used before "
            f"({', '.join(reused)})."
        )
    if errors:
        return _ended(
            tick, TickStatus.FAILURE, error="\n".join(errors), run_ids=run_ids, notes=notes
        )
    if not run_ids:
        return _ended(
            tick,
            TickStatus.SKIPPED,
            skip_reason="Every run request's run key was used before: " + ", ".join(reused) + ".",
            notes=notes,
        )
    return _ended(tick, TickStatus.SUCCESS, run_ids=run_ids, notes=notes)


def _claim(plan: TickPlan, index: int, request: RunRequestData) -> str | None:
    if request.run_key:
        return plan.run_key_prefix + request.run_key
    if plan.claim_unkeyed:
        return f"{plan.run_key_prefix}#{index + 1}"
    return None


def _ended(
    tick: TickRecord,
    status: TickStatus,
    *,
    error: str | None = None,
    skip_reason: str | None = None,
    run_ids: list[str] | None = None,
    notes: list[str] | None = None,
) -> TickRecord:
    return msgspec.structs.replace(
        tick,
        status=status,
        error=error,
        skip_reason=skip_reason,
        run_ids=run_ids if run_ids is not None else list(tick.run_ids),
        notes=notes if notes is not None else list(tick.notes),
    )


def _log(instigator: Instigator, tick: TickRecord) -> None:
    if tick.status is TickStatus.SUCCESS:
        logger.info("%s launched %s", instigator.label, ", ".join(tick.run_ids))
    elif tick.status is TickStatus.SKIPPED:
        logger.info("%s skipped: %s", instigator.label, tick.skip_reason)
    else:
        first = (tick.error or "").splitlines()[0] if tick.error else ""
        logger.warning("%s failed: %s", instigator.label, first)

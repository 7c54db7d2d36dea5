"""Turn what a schedule or sensor function did into a TickEvaluation.

A user function may return or yield RunRequests, return a SkipReason or None,
and (schedules only) return a run config dict. Whatever it raises becomes
TickEvaluation.error: a failing tick is data for the daemon, not a crash. The
evaluation is plain definition-level data; the code server turns it into the
wire's TickResult.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.definitions.introspect import short_repr
from runtime.definitions.run_request import RunRequest, SkipReason

if TYPE_CHECKING:
    from collections.abc import Callable


class InvalidTickValue(Exception):
    """A schedule or sensor function returned something that is not a tick result."""


@dataclass(frozen=True, slots=True)
class TickEvaluation:
    """What one tick decided: runs to request, or why it skipped, or the exception it raised.

    Each run request has its job name and the tick's tags filled in. `cursor`
    is the sensor's cursor after the tick (None for schedules); a tick whose
    function raised still reports the cursor it had set by then. `error` is
    the user's exception, or InvalidTickValue for a value that is not a tick
    result.
    """

    run_requests: list[RunRequest] = field(default_factory=list)
    skip_reason: str | None = None
    cursor: str | None = None
    error: BaseException | None = None


class TickTarget:
    """Who is ticking and for which job: used to fill in and check run requests."""

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        job_name: str | None,
        tags: Mapping[str, str],
        allow_run_config_dict: bool,
    ) -> None:
        self.kind = kind
        self.name = name
        self.job_name = job_name
        self.tags = tags
        self.allow_run_config_dict = allow_run_config_dict

    def run_request(self, request: RunRequest) -> RunRequest:
        """The request with its job name and the tick's tags filled in.

        Raises InvalidTickValue when neither the request nor the target names a job.
        """
        job_name = request.job_name or self.job_name
        if job_name is None:
            raise InvalidTickValue(
                f"{self.kind} {self.name!r} requested a run without job_name, "
                f"and the {self.kind} targets no job."
            )
        return RunRequest(
            run_key=request.run_key,
            job_name=job_name,
            run_config=dict(request.run_config),
            tags={**self.tags, **request.tags},
        )

    def result(self, value: object, cursor: str | None) -> TickEvaluation:
        """The evaluation of what the function returned (generators already drained)."""
        if value is None:
            if self.allow_run_config_dict:
                return TickEvaluation(
                    skip_reason=f"{self.kind} {self.name!r} returned None.", cursor=cursor
                )
            return TickEvaluation(cursor=cursor)
        if isinstance(value, SkipReason):
            return TickEvaluation(skip_reason=value.message, cursor=cursor)
        if isinstance(value, RunRequest):
            return TickEvaluation(run_requests=[self.run_request(value)], cursor=cursor)
        if isinstance(value, Mapping):
            if not self.allow_run_config_dict:
                raise InvalidTickValue(
                    f"{self.kind} {self.name!r} returned a dict; a sensor returns "
                    "RunRequest(s), a SkipReason or None."
                )
            request = RunRequest(run_config=dict(value))
            return TickEvaluation(run_requests=[self.run_request(request)], cursor=cursor)
        if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            return self._many(list(value), cursor)
        raise self._invalid(value)

    def _many(self, values: list[object], cursor: str | None) -> TickEvaluation:
        requests: list[RunRequest] = []
        skips: list[str] = []
        for item in values:
            if isinstance(item, RunRequest):
                requests.append(self.run_request(item))
            elif isinstance(item, SkipReason):
                skips.append(item.message)
            else:
                raise self._invalid(item)
        if requests and skips:
            raise InvalidTickValue(
                f"{self.kind} {self.name!r} produced both RunRequests and a SkipReason; "
                "a tick either requests runs or skips."
            )
        return TickEvaluation(
            run_requests=requests, skip_reason="; ".join(skips) if skips else None, cursor=cursor
        )

    def _invalid(self, value: object) -> InvalidTickValue:
        allowed = "RunRequest(s), a SkipReason, None"
        if self.allow_run_config_dict:
            allowed += " or a run config dict"
        return InvalidTickValue(
            f"{self.kind} {self.name!r} produced {short_repr(value)}; it must return or yield {allowed}."
        )


def drain(value: object) -> object:
    """Run a generator to completion so its exceptions belong to this tick."""
    if inspect.isgenerator(value):
        return list(value)
    return value


async def adrain(value: object) -> object:
    """Await a coroutine and drain an async generator."""
    if inspect.iscoroutine(value):
        value = await value
    if inspect.isasyncgen(value):
        return [item async for item in value]
    return drain(value)


def evaluate_sync(
    fn: Callable[[Any], object],
    context: Any,
    target: TickTarget,
    cursor: Callable[[], str | None],
) -> TickEvaluation:
    """Call a tick function outside an event loop; async functions get a fresh loop.

    Raises RuntimeError when called for an async function from a running loop
    (use evaluate_async there).
    """
    try:
        value = fn(context)
        if inspect.iscoroutine(value) or inspect.isasyncgen(value):
            value = _run_in_fresh_loop(value, target)
        return target.result(drain(value), cursor())
    except _LoopMisuse:
        raise
    except Exception as exc:
        return TickEvaluation(error=exc, cursor=cursor())


class _LoopMisuse(RuntimeError):
    pass


def _run_in_fresh_loop(value: Any, target: TickTarget) -> object:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_adrain_coro(value))
    if inspect.iscoroutine(value):
        value.close()  # never awaited: close it so Python does not warn
    raise _LoopMisuse(
        f"{target.kind} {target.name!r} is async and evaluate() was called from a running "
        "event loop; await aevaluate() instead."
    )


async def _adrain_coro(value: object) -> object:
    return await adrain(value)


async def evaluate_async(
    fn: Callable[[Any], object],
    context: Any,
    target: TickTarget,
    cursor: Callable[[], str | None],
) -> TickEvaluation:
    """Call a tick function from an event loop: async ones on it, sync ones in a worker thread."""
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        try:
            value = await adrain(fn(context))
            return target.result(value, cursor())
        except Exception as exc:
            return TickEvaluation(error=exc, cursor=cursor())
    import anyio.to_thread

    # Sync user code never runs on the server's loop.
    return await anyio.to_thread.run_sync(evaluate_sync, fn, context, target, cursor)

"""LOG events: context.log, Python logging records and print() output made during a step."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import pytest

from runtime.execution import capture
from runtime.protocol.messages import EnginePayload, LogPayload
from tests.execution.graph_builders import make_job, run_job, step

if TYPE_CHECKING:
    from runtime.execution.context import StepContext
    from runtime.protocol.messages import RunEvent

pytestmark = pytest.mark.anyio

user_logger = logging.getLogger("user.pipeline")


def logs(events: list[RunEvent], key: str) -> list[tuple[str, str, str, str]]:
    found = []
    for event in events:
        if event.event_type == "LOG" and event.step_key == key:
            assert isinstance(event.payload, LogPayload)
            p = event.payload
            found.append((p.source, p.level, p.logger, p.message))
    return found


async def test_context_log_every_level_with_formatting() -> None:
    async def chatty(context: StepContext) -> None:
        context.log.debug("debug %d", 1)
        context.log.info("info")
        context.log.warning("warn %s", "x")
        try:
            raise ValueError("bad")
        except ValueError:
            context.log.exception("caught")

    _, events = await run_job(make_job("j", step("chatty", chatty)))
    found = logs(events, "chatty")
    assert found[:3] == [
        ("logger", "DEBUG", "chatty", "debug 1"),
        ("logger", "INFO", "chatty", "info"),
        ("logger", "WARNING", "chatty", "warn x"),
    ]
    source, level, _, message = found[3]
    assert (source, level) == ("logger", "ERROR")
    assert message.startswith("caught\nTraceback") and "ValueError: bad" in message


async def test_print_and_logging_in_async_and_thread_steps_become_step_logs() -> None:
    async def in_loop() -> None:
        print("hello from the loop")  # noqa: T201
        print("to stderr", file=sys.stderr)  # noqa: T201
        user_logger.warning("loop warning %s", 42)

    def in_thread() -> None:
        print("part one, ", end="")  # noqa: T201
        print("part two")  # noqa: T201
        print("no newline at the end", end="")  # noqa: T201
        user_logger.error("thread error")

    job = make_job("j", step("in_loop", in_loop), step("in_thread", in_thread))
    _, events = await run_job(job)
    assert logs(events, "in_loop") == [
        ("stdout", "INFO", "stdout", "hello from the loop"),
        ("stderr", "WARNING", "stderr", "to stderr"),
        ("logger", "WARNING", "user.pipeline", "loop warning 42"),
    ]
    assert logs(events, "in_thread") == [
        ("stdout", "INFO", "stdout", "part one, part two"),
        ("logger", "ERROR", "user.pipeline", "thread error"),
        # The partial line is flushed when the step ends.
        ("stdout", "INFO", "stdout", "no newline at the end"),
    ]


async def test_output_outside_steps_passes_through(capsys: pytest.CaptureFixture[str]) -> None:
    async def quiet() -> None:
        print("inside")  # noqa: T201

    _, events = await run_job(make_job("j", step("quiet", quiet)))
    print("outside")  # noqa: T201
    out = capsys.readouterr().out
    assert "outside" in out and "inside" not in out
    assert logs(events, "quiet") == [("stdout", "INFO", "stdout", "inside")]
    assert capture.current_step.get() is None


async def test_log_event_and_output_metadata() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    async def op_with_meta(context: StepContext) -> int:
        context.log_event("checkpoint", {"rows": 3, "thing": Opaque()})
        context.add_output_metadata({"rows": 3})
        return 3

    _, events = await run_job(make_job("j", step("m", op_with_meta)))
    engine = [e.payload for e in events if e.event_type == "ENGINE_EVENT"]
    assert engine == [
        EnginePayload(message="checkpoint", metadata={"rows": 3, "thing": "<opaque>"}),
        EnginePayload(message="Output metadata", metadata={"rows": 3}),
    ]

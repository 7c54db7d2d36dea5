"""RunLog: the one place a run's events are numbered.

Every writer of a run's events goes through a RunLog: the engine in the code
server, the host's run driver (RUN_STARTING, failures it detects), a code
server refusing a run, and the instance failing a run whose host died. A log
stamps the run id, the next gapless sequence number and a timestamp under one
lock and hands the event to its sink, so the order of the sequence numbers is
the order in which the sink receives them. Whoever continues a run's log
elsewhere starts it at `next_sequence` of the part before (the host passes it
to the code server with the run).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

from runtime.protocol.messages import NoPayload, RunEvent

if TYPE_CHECKING:
    from runtime.protocol.messages import AnyPayload, EventType

NO_PAYLOAD = NoPayload()


class EventSink(Protocol):
    """Receives every event of a run, in sequence order.

    `put` is called from the event loop and from worker threads, must be
    thread-safe and must not block.
    """

    def put(self, event: RunEvent) -> None: ...


class RunLog:
    """Numbers one run's events from `next_sequence` on and puts them in a sink.

    Raises ValueError for a `next_sequence` below 1.
    """

    __slots__ = ("_lock", "_sequence", "_sink", "run_id")

    def __init__(self, run_id: str, sink: EventSink, *, next_sequence: int = 1) -> None:
        if next_sequence < 1:
            raise ValueError(
                f"A run's events are numbered from 1; got next_sequence={next_sequence} "
                f"for run {run_id!r}."
            )
        self.run_id = run_id
        self._sink = sink
        self._sequence = next_sequence - 1
        # Sequence numbers and delivery order must agree across threads.
        self._lock = threading.Lock()

    @property
    def last_sequence(self) -> int:
        """The sequence number of the last event emitted (next_sequence - 1 before the first)."""
        return self._sequence

    @property
    def next_sequence(self) -> int:
        """The sequence number the next event will get."""
        return self._sequence + 1

    def emit(
        self,
        event_type: EventType,
        step_key: str | None = None,
        payload: AnyPayload = NO_PAYLOAD,
        *,
        timestamp: float | None = None,
    ) -> RunEvent:
        """Stamp one event, hand it to the sink and return it. Safe from any thread."""
        with self._lock:
            self._sequence += 1
            event = RunEvent(
                run_id=self.run_id,
                sequence=self._sequence,
                timestamp=time.time() if timestamp is None else timestamp,
                event_type=event_type,
                step_key=step_key,
                payload=payload,
            )
            self._sink.put(event)
        return event

    def forward(self, event: RunEvent) -> None:
        """Put an event numbered where this log continues (the code server running the run).

        Raises ValueError unless it is the run's next event, so a run's
        stored sequence stays gapless whoever numbered each part.
        """
        with self._lock:
            if event.run_id != self.run_id or event.sequence != self._sequence + 1:
                raise ValueError(
                    f"Event {event.event_type} of run {event.run_id} has sequence "
                    f"{event.sequence}, but the next event of run {self.run_id} is "
                    f"{self._sequence + 1}."
                )
            self._sequence = event.sequence
            self._sink.put(event)


class ListSink:
    """A sink that keeps every event in a list; for in-process execution and tests."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def put(self, event: RunEvent) -> None:
        # list.append is atomic under the GIL, and the log's lock orders calls.
        self.events.append(event)

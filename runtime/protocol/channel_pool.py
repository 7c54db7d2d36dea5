"""The connections of one client to one code server: a control channel and a pool of data channels.

An HTTP/2 connection carries at most the server's MAX_CONCURRENT_STREAMS
calls at once (100 by default); every further call on it waits for a stream
to close. A location with a hundred runs streaming their events would then
starve its heartbeats, and the code server would exit for lack of them. So
control calls (ping, heartbeat, server info, shutdown, cancel) have a
connection of their own that never fills, and data calls (run streams,
validations, snapshots, ticks) are spread over as many connections as they
need: the first with room takes the call, a new one opens when all are near
the limit, and an extra connection closes as soon as it is idle (calls fill
the oldest first, so extras drain).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from grpclib.client import Channel

# What h2 servers (grpclib's included) advertise by default; also the most
# calls a channel takes before the server's own setting is known.
DEFAULT_MAX_STREAMS = 100
# Streams kept free below the server's limit: a stream a call has finished
# with may not have closed on the wire yet.
STREAM_HEADROOM = 10


@dataclass(eq=False)
class _PooledChannel:
    channel: Channel
    in_flight: int = 0


class ChannelPool:
    """Channels to one server, opened by `open_channel()` when first needed.

    `control()` is the control-plane channel; `data()` lends a data channel
    for the length of one call. `close()` closes them all and is safe twice.
    """

    def __init__(self, open_channel: Callable[[], Channel]) -> None:
        self._open_channel = open_channel
        self._control: Channel | None = None
        self._data: list[_PooledChannel] = []
        self._closed = False

    @property
    def data_channels(self) -> int:
        """How many data channels are open now."""
        return len(self._data)

    def control(self) -> Channel:
        """The channel for control calls; it carries nothing else, so it never fills."""
        self._check_open()
        if self._control is None:
            self._control = self._open_channel()
        return self._control

    @contextlib.contextmanager
    def data(self) -> Iterator[Channel]:
        """A data channel with room for one more call, for as long as the block runs."""
        self._check_open()
        pooled = self._with_room()
        pooled.in_flight += 1
        try:
            yield pooled.channel
        finally:
            pooled.in_flight -= 1
            self._close_idle_extras()

    def close(self) -> None:
        """Close every channel; calls in flight fail. Idempotent."""
        self._closed = True
        channels = [pooled.channel for pooled in self._data]
        if self._control is not None:
            channels.append(self._control)
        self._control = None
        self._data = []
        for channel in channels:
            # Synchronous: nothing here can be interrupted by a cancellation.
            channel.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("The channel pool is closed.")

    def _with_room(self) -> _PooledChannel:
        for pooled in self._data:
            if pooled.in_flight < _capacity(pooled.channel):
                return pooled
        pooled = _PooledChannel(self._open_channel())
        self._data.append(pooled)
        return pooled

    def _close_idle_extras(self) -> None:
        # The first channel stays open: the next call would only reopen it.
        if self._closed:
            return
        idle = [pooled for pooled in self._data[1:] if pooled.in_flight == 0]
        for pooled in idle:
            self._data.remove(pooled)
            pooled.channel.close()


def _capacity(channel: Channel) -> int:
    """How many calls `channel` takes at once: its server's stream limit, less the headroom."""
    return max(1, min(_server_max_streams(channel), DEFAULT_MAX_STREAMS) - STREAM_HEADROOM)


def _server_max_streams(channel: Channel) -> int:
    # grpclib does not expose the peer's settings; h2 holds them. Before the
    # server's SETTINGS frame arrives h2 reports "unlimited", hence the min()
    # with the default in _capacity.
    protocol = getattr(channel, "_protocol", None)
    try:
        settings = protocol.connection._connection.remote_settings  # type: ignore[union-attr]
        return int(settings.max_concurrent_streams)
    except (AttributeError, TypeError, ValueError):
        return DEFAULT_MAX_STREAMS

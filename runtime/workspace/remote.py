"""Supervision of one grpc_server location: a code server the workspace does not own.

Connect, fetch the snapshot, then poll the server's id: a new id means the
server restarted (maybe with new code), so the snapshot is fetched again. An
unreachable server puts the location in error, naming the address, and is
retried with backoff, and so is one that refuses the token (missing or
wrong); `reload()` refreshes at once.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import anyio

from runtime.errors import CodeLocationError
from runtime.workspace.location import LocationServer
from runtime.workspace.state import LocationFailure
from runtime.workspace.supervisor import (
    CALL_TIMEOUT,
    UNREACHABLE,
    ReloadRequest,
    unreachable_failure,
)

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectSendStream

    from runtime.protocol.client import CodeLocationClient
    from runtime.workspace.location import CodeLocation
    from runtime.workspace.options import SupervisorOptions

logger = logging.getLogger("runtime.workspace")


class RemoteSupervisor:
    """Keeps a grpc_server location's snapshot current; see the module docstring."""

    def __init__(self, location: CodeLocation, options: SupervisorOptions) -> None:
        self._location = location
        self._options = options
        self._inbox_send: MemoryObjectSendStream[ReloadRequest] | None = None

    async def reload(self) -> None:
        """Fetch the snapshot again now; return when it arrived or failed."""
        if self._inbox_send is None:
            raise CodeLocationError(f"location {self._location.name!r} is not running.")
        request = ReloadRequest(done=anyio.Event())
        self._inbox_send.send_nowait(request)
        await request.done.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect and fetch, then keep the snapshot current until cancelled."""
        from runtime.protocol.auth import token_from_environment
        from runtime.protocol.client import CodeLocationClient

        spec = self._location.spec
        send, receive = anyio.create_memory_object_stream[ReloadRequest](math.inf)
        self._inbox_send = send
        self._location._attach(self)
        try:
            token = spec.auth_token or token_from_environment()
            if spec.socket is not None:
                client = CodeLocationClient(socket=spec.socket, ssl=spec.ssl, auth_token=token)
            else:
                client = CodeLocationClient(
                    spec.host or "127.0.0.1", spec.port, ssl=spec.ssl, auth_token=token
                )
            async with send, receive, client:
                task_status.started()
                await self._refresh(client, "loading")
                failures = 0
                while True:
                    if self._location.status == "error":
                        wait = self._options.remote_retry.delay(failures)
                    else:
                        wait = self._options.remote_poll_interval
                    request: ReloadRequest | None = None
                    with anyio.move_on_after(wait):
                        request = await receive.receive()
                    if request is not None:
                        await self._refresh(client, "reloading")
                        request.done.set()
                    elif self._location.status == "error":
                        failures = 0 if await self._refresh(client, None) else failures + 1
                    else:
                        await self._poll(client)
        finally:
            self._inbox_send = None
            self._location._detach()

    async def _poll(self, client: CodeLocationClient) -> None:
        location = self._location
        try:
            info = await client.server_info(timeout=CALL_TIMEOUT)
        except UNREACHABLE as exc:
            self._fail(unreachable_failure(location.name, location.spec.address, exc))
            return
        if info.server_id != location.server_id:
            logger.info(
                "location %r: the code server at %s restarted (server id %s); fetching its snapshot.",
                location.name,
                location.spec.address,
                info.server_id,
            )
            await self._refresh(client, "reloading")

    async def _refresh(self, client: CodeLocationClient, status: str | None) -> bool:
        """Fetch server info and snapshot; swap them in. `status`: shown while fetching."""
        location = self._location
        if status == "reloading" and location.status == "loaded":
            location._set_status("reloading", error=location.error)
        elif status == "loading" and location.status != "loading":
            location._set_status("loading", error=location.error)
        started = anyio.current_time()
        try:
            info = await client.server_info(timeout=CALL_TIMEOUT)
            snapshot = await client.snapshot(timeout=CALL_TIMEOUT)
        except UNREACHABLE as exc:
            self._fail(unreachable_failure(location.name, location.spec.address, exc))
            return False
        if snapshot.error is not None:
            self._fail(
                LocationFailure.from_error_info(
                    snapshot.error, timings=snapshot.timings, time=time.time()
                )
            )
            return False
        location.load_seconds = anyio.current_time() - started
        location._swap_server(LocationServer(client=client, info=info, snapshot=snapshot))
        location._set_status("loaded", error=None)
        return True

    def _fail(self, failure: LocationFailure) -> None:
        location = self._location
        if location.status == "error" and location.error is not None:
            if location.error.message == failure.message:
                return  # still down for the same reason: no new state change
        logger.warning("%s", failure.first_line)
        location._swap_server(None)
        location._set_status("error", error=failure)

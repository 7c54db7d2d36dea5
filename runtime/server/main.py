"""The code server process: load, listen, print the ready line, serve until told to stop.

Stops on SIGTERM or SIGINT (a second one exits at once), on a Shutdown RPC,
when heartbeats stop (with --heartbeat), and, through the kernel, when the
supervising parent dies. Stopping refuses new runs, lets the runs in flight
finish within the shutdown grace (--shutdown-grace for a signal, the
request's own for Shutdown) and then cancels them, each saying why; their
last events still reach their hosts.
Without --lazy-load-user-code a load error is printed
on stderr and the process exits with status 1 before it ever listens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import uuid
from typing import TYPE_CHECKING

import anyio

from runtime.protocol.error_info import describe_error
from runtime.protocol.load_status import write_load_status
from runtime.protocol.ready_line import ReadyInfo, format_ready_line
from runtime.server.location import LocationState

if TYPE_CHECKING:
    import ssl

    from runtime.protocol.messages import LoadTimings
    from runtime.server.options import ServerOptions
    from runtime.server.runs import CodeServerRuns
    from runtime.server.service import CodeLocationService

logger = logging.getLogger("runtime.server")

# How often the load status file is refreshed while user code imports.
STATUS_FILE_INTERVAL = 0.1
# After the shutdown grace: how long canceled runs get to end before they are abandoned.
CANCEL_SECONDS = 2.0
LOAD_ERROR_EXIT_STATUS = 1


class StopRequest:
    """The first reason to stop wins; the server drains runs for up to `grace_seconds`."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.reason = ""
        self.grace_seconds = 0.0
        self.exit_status = 0

    def request(self, reason: str, *, grace_seconds: float = 0.0, exit_status: int = 0) -> None:
        if self.event.is_set():
            return
        self.reason = reason
        self.grace_seconds = grace_seconds
        self.exit_status = exit_status
        self.event.set()


def format_timings(timings: LoadTimings) -> str:
    """One line about where loading spent its time."""
    slowest = ", ".join(f"{t.module} {t.seconds:.3f} s" for t in timings.slowest_modules[:5])
    line = f"Loading took {timings.total_seconds:.3f} s (imports {timings.import_seconds:.3f} s)"
    return f"{line}; slowest imports: {slowest}." if slowest else f"{line}."


def run_server(options: ServerOptions) -> int:
    """Run a code server until it stops; returns the process exit status."""
    # Supervisors log user output as it comes; don't let it sit in a block buffer.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    status = asyncio.run(_serve(options))
    main = threading.main_thread()
    if any(t is not main and t.is_alive() for t in threading.enumerate()):
        # User code is still busy in a thread (a hung import, a long sensor, a
        # step that ignores cancellation; anyio's worker threads are not daemon
        # threads). The server is done: exit without joining them at shutdown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


async def _serve(options: ServerOptions) -> int:
    from runtime.protocol.transport import serve
    from runtime.server.heartbeat import HeartbeatWatchdog
    from runtime.server.runs import CodeServerRuns
    from runtime.server.service import CodeLocationService

    server_id = uuid.uuid4().hex
    location = LocationState(
        options.target, location_name=options.location_name, server_id=server_id
    )
    stop = StopRequest()
    _install_signal_handlers(stop, options.shutdown_grace)
    async with anyio.create_task_group() as tg:
        if options.load_status_file:
            tg.start_soon(_write_status_while_loading, location, options.load_status_file)
        if not options.lazy_load_user_code:
            tg.start_soon(location.load)
            await _first_of(location.done, stop.event)
            if not location.done.is_set():
                tg.cancel_scope.cancel()
                return stop.exit_status
            if location.error is not None:
                _report_load_error(location, options)
                tg.cancel_scope.cancel()
                return LOAD_ERROR_EXIT_STATUS
        watchdog = HeartbeatWatchdog(options.heartbeat_timeout) if options.heartbeat else None
        service = CodeLocationService(
            location,
            request_stop=lambda grace: stop.request("a Shutdown request", grace_seconds=grace),
            watchdog=watchdog,
        )
        runs = service.runs = CodeServerRuns()
        # The runs are left inside the serving block: the runs a shutdown cancels
        # still stream their last events (RUN_CANCELED) to their hosts.
        async with (
            serve(
                [service],
                host=options.host,
                port=options.port,
                path=options.socket,
                ssl_context=_ssl_context(options),
            ) as bound,
            runs,
        ):
            ready = ReadyInfo(address=bound.address, pid=os.getpid(), server_id=server_id)
            sys.stdout.write(format_ready_line(ready))
            sys.stdout.flush()
            logger.info(
                "Code server %s for %r listening on %s.",
                server_id,
                options.location_name,
                bound.address,
            )
            if options.lazy_load_user_code:
                tg.start_soon(location.load)
            if watchdog is not None:
                tg.start_soon(watchdog.run, lambda: _heartbeat_expired(stop, options))
            await stop.event.wait()
            logger.info("Stopping: %s.", stop.reason)
            await _drain_runs(service, runs, stop)
        tg.cancel_scope.cancel()
    return stop.exit_status


async def _drain_runs(
    service: CodeLocationService, runs: CodeServerRuns, stop: StopRequest
) -> None:
    """Refuse new runs, let those in flight finish within the grace, then cancel them."""
    runs.stop_accepting(stop.reason)
    await service.wait_for_runs(stop.grace_seconds)
    if service.runs_in_flight:
        runs.cancel_all(
            f"The code server is shutting down ({stop.reason}): the run did not finish "
            f"within its {stop.grace_seconds:g} s shutdown grace and was canceled."
        )
        # Async steps stop at once; a thread step that ignores its cancellation
        # is abandoned when the runs are closed, after this.
        await service.wait_for_runs(CANCEL_SECONDS)


def _ssl_context(options: ServerOptions) -> ssl.SSLContext | None:
    if options.ssl_certfile is None:
        return None
    from runtime.protocol.tls import server_context

    return server_context(options.ssl_certfile, options.ssl_keyfile)


def _heartbeat_expired(stop: StopRequest, options: ServerOptions) -> None:
    message = f"no heartbeat arrived within {options.heartbeat_timeout} s"
    sys.stderr.write(f"runtime code server {options.location_name!r}: {message}; exiting.\n")
    stop.request(message)


async def _first_of(*events: anyio.Event) -> None:
    """Return as soon as any of the events is set."""
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)


def _install_signal_handlers(stop: StopRequest, grace: float) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.event.is_set():
            # A second signal: the user (or supervisor) does not want to wait.
            sys.stderr.write(f"runtime code server: second {name}; exiting now.\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        stop.request(f"received {name}", grace_seconds=grace)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


async def _write_status_while_loading(location: LocationState, path: str) -> None:
    """Keep the status file current until loading ends, then write the final timings."""
    recorder = location.recorder
    last: tuple[str | None, int] | None = None
    while not location.done.is_set():
        current = (recorder.importing_module, int(recorder.elapsed_seconds * 10))
        if current != last:
            # A few hundred bytes: cheaper inline than a thread hop.
            write_load_status(path, location.current_timings())
            last = current
        with anyio.move_on_after(STATUS_FILE_INTERVAL):
            await location.done.wait()
    write_load_status(path, location.timings)


def _report_load_error(location: LocationState, options: ServerOptions) -> None:
    assert location.error is not None
    sys.stderr.write(
        f"runtime code server: could not load code location {options.location_name!r} "
        f"from {options.target.describe()}.\n"
        f"{describe_error(location.error)}\n{format_timings(location.timings)}\n"
    )
    sys.stderr.flush()

"""`runtime api grpc`: a standalone code server, with the flags Dagster users already type."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def register(subparsers: Any) -> None:
    """Add the `api` command group."""
    api = subparsers.add_parser("api", help="Machine-facing commands (code servers).")
    api_commands = api.add_subparsers(dest="api_command", metavar="COMMAND", required=True)
    grpc = api_commands.add_parser(
        "grpc",
        help="Serve one code location over gRPC.",
        description=(
            "Load a code location and serve it over gRPC on a TCP port or a Unix socket. "
            "Once listening it prints one line `RUNTIME_CODE_SERVER_READY {json}` on stdout."
        ),
    )
    target = grpc.add_argument_group("code location (exactly one)")
    which = target.add_mutually_exclusive_group(required=True)
    which.add_argument("-f", "--python-file", help="A Python file that defines the location.")
    which.add_argument("-m", "--module-name", help="A module that defines the location.")
    which.add_argument("--package-name", help="A package that defines the location.")
    target.add_argument("-a", "--attribute", help="The Definitions or repository to load, by name.")
    target.add_argument(
        "-d",
        "--working-directory",
        help="Put first on sys.path (default: the file's folder, or the current directory).",
    )
    target.add_argument("--location-name", help="The location's name (default: from the target).")

    listen = grpc.add_argument_group("listening (exactly one of --port and --socket)")
    listen.add_argument(
        "--host", default="127.0.0.1", help="TCP interface to bind (default 127.0.0.1)."
    )
    where = listen.add_mutually_exclusive_group(required=True)
    where.add_argument("-p", "--port", type=int, help="TCP port; 0 picks a free one.")
    where.add_argument("-s", "--socket", help="Unix socket path (created with mode 0600).")
    listen.add_argument(
        "--ssl-certfile", help="Serve TLS on the TCP port with this PEM certificate chain."
    )
    listen.add_argument(
        "--ssl-keyfile", help="The certificate's private key (default: inside --ssl-certfile)."
    )

    life = grpc.add_argument_group("lifecycle")
    life.add_argument(
        "--heartbeat",
        action="store_true",
        help="Exit when no Heartbeat request arrives within --heartbeat-timeout.",
    )
    life.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=None,
        help="Seconds without a heartbeat before exiting (default 30).",
    )
    life.add_argument(
        "--shutdown-grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="On SIGTERM or SIGINT, how long runs in flight may take to finish before they "
        "are canceled; new runs are refused meanwhile (default 10).",
    )
    life.add_argument(
        "--lazy-load-user-code",
        action="store_true",
        help="Listen first and load in the background; a load error is served, not fatal.",
    )
    life.add_argument(
        "--load-status-file",
        help="Keep this file updated with import progress while user code loads (for supervisors).",
    )
    life.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="Server log level."
    )
    grpc.set_defaults(handler=_grpc, parser=grpc)


def _grpc(args: argparse.Namespace) -> int:
    from runtime.loader.target import LoadTarget
    from runtime.server.options import (
        DEFAULT_HEARTBEAT_TIMEOUT,
        DEFAULT_SHUTDOWN_GRACE,
        ServerOptions,
    )

    parser: argparse.ArgumentParser = args.parser
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0 to 65535).")
    if args.ssl_keyfile is not None and args.ssl_certfile is None:
        parser.error("--ssl-keyfile needs --ssl-certfile.")
    if args.ssl_certfile is not None and args.socket is not None:
        parser.error("--ssl-certfile applies to --port; a Unix socket is private already.")
    if args.heartbeat_timeout is not None:
        if not args.heartbeat:
            parser.error("--heartbeat-timeout needs --heartbeat.")
        if args.heartbeat_timeout <= 0:
            parser.error(f"--heartbeat-timeout must be positive, not {args.heartbeat_timeout}.")
    if args.shutdown_grace is not None and args.shutdown_grace < 0:
        parser.error(f"--shutdown-grace cannot be negative, not {args.shutdown_grace}.")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    target = LoadTarget(
        python_file=args.python_file,
        module_name=args.module_name,
        package_name=args.package_name,
        attribute=args.attribute,
        working_directory=args.working_directory,
    )
    options = ServerOptions(
        target=target,
        location_name=args.location_name or target.default_location_name(),
        host=args.host,
        port=args.port,
        socket=args.socket,
        heartbeat=args.heartbeat,
        heartbeat_timeout=args.heartbeat_timeout or DEFAULT_HEARTBEAT_TIMEOUT,
        lazy_load_user_code=args.lazy_load_user_code,
        load_status_file=args.load_status_file,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        shutdown_grace=(
            DEFAULT_SHUTDOWN_GRACE if args.shutdown_grace is None else args.shutdown_grace
        ),
    )
    if options.ssl_certfile is not None:
        import ssl

        from runtime.protocol.tls import server_context

        try:
            server_context(options.ssl_certfile, options.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            parser.exit(
                1,
                f"runtime api grpc: cannot serve TLS with certificate {options.ssl_certfile}"
                f"{f' and key {options.ssl_keyfile}' if options.ssl_keyfile else ''}: {exc}\n",
            )
    from runtime.server.parent import ParentGoneError, die_with_parent

    try:
        die_with_parent()
    except ParentGoneError as exc:
        parser.exit(1, f"runtime api grpc: {exc}\n")
    from runtime.protocol.transport import ListenError
    from runtime.server.main import run_server

    try:
        return run_server(options)
    except* ListenError as group:
        # Raised inside the server's task group, hence the except*.
        parser.exit(1, "".join(f"runtime api grpc: {exc}\n" for exc in group.exceptions))

"""ServerOptions: everything `runtime api grpc` was asked to do, parsed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.protocol.messages import DEFAULT_MAX_REQUEST_BYTES

if TYPE_CHECKING:
    from runtime.loader.target import LoadTarget
    from runtime.protocol.auth import AuthToken

DEFAULT_HEARTBEAT_TIMEOUT = 30.0
# On SIGTERM or SIGINT: how long runs in flight may take to finish before they are canceled.
DEFAULT_SHUTDOWN_GRACE = 10.0


@dataclass(frozen=True)
class ServerOptions:
    """A code server's configuration: what to load and where to listen.

    Exactly one of `port` (0 picks a free one) and `socket` (a Unix socket path).
    A TCP port needs an `auth_token`; a socket (private to its owner) may go without.
    """

    target: LoadTarget
    location_name: str
    host: str = "127.0.0.1"
    port: int | None = None
    socket: str | None = None
    heartbeat: bool = False
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT
    lazy_load_user_code: bool = False
    # Rewritten with import progress while user code loads (see protocol.load_status).
    load_status_file: str | None = None
    # TLS on the TCP port: the certificate chain and its key (or None: in the certfile).
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # Every RPC must carry this token (runtime.protocol.auth); None: none is asked for.
    auth_token: AuthToken | None = None
    # The absolute directory run outputs are kept under, for re-execution
    # (runtime.server.storage); None keeps them in memory only.
    storage_dir: str | None = None
    # The largest request message accepted; larger ones get RESOURCE_EXHAUSTED.
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE

    def __post_init__(self) -> None:
        if (self.port is None) == (self.socket is None):
            raise ValueError("A code server listens on exactly one of a port and a socket.")
        if self.port is not None and self.auth_token is None:
            raise ValueError(
                "A code server on a TCP port needs an auth token (any local user can reach "
                "the port): pass --auth-token-file FILE or set RUNTIME_CODE_SERVER_TOKEN."
            )
        if self.max_request_bytes <= 0:
            raise ValueError(f"max_request_bytes must be positive, not {self.max_request_bytes}.")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("A TLS key needs its certificate (--ssl-certfile).")

"""ServerOptions: everything `runtime api grpc` was asked to do, parsed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.loader.target import LoadTarget

DEFAULT_HEARTBEAT_TIMEOUT = 30.0
# On SIGTERM or SIGINT: how long runs in flight may take to finish before they are canceled.
DEFAULT_SHUTDOWN_GRACE = 10.0


@dataclass(frozen=True)
class ServerOptions:
    """A code server's configuration: what to load and where to listen.

    Exactly one of `port` (0 picks a free one) and `socket` (a Unix socket path).
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
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE

    def __post_init__(self) -> None:
        if (self.port is None) == (self.socket is None):
            raise ValueError("A code server listens on exactly one of a port and a socket.")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("A TLS key needs its certificate (--ssl-certfile).")

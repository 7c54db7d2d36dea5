"""TLS contexts for code servers and the clients that reach them.

Clients verify the server against the system trust store, which OpenSSL
extends with SSL_CERT_FILE / SSL_CERT_DIR, so a private CA is one environment
variable away. (grpclib's own default pins certifi's bundle instead, which
could never trust a private CA.) Both sides speak HTTP/2 through ALPN.
"""

from __future__ import annotations

import ssl


def client_context() -> ssl.SSLContext:
    """A context that verifies the server's certificate and host name."""
    context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A context serving `certfile` (with `keyfile`, or the key inside certfile).

    Raises OSError or ssl.SSLError when the files cannot be read or do not match.
    """
    context = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["h2"])
    return context

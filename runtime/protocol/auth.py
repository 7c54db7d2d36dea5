"""The shared secret between a host and a code server: one token, sent as gRPC metadata.

A code server started with a token refuses every RPC whose metadata does not
carry it (UNAUTHENTICATED, saying whether the token was missing or wrong);
tokens are compared in constant time. Tokens travel by environment or file,
never on a command line: /proc/<pid>/cmdline is readable by every user.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# gRPC metadata keys are lower case ASCII; this one carries the token.
TOKEN_METADATA_KEY = "runtime-auth-token"
# A standalone server reads its token from here (when no --auth-token-file is
# given); a managed one gets a fresh token here from its host; a client of a
# grpc_server location with no auth_token of its own sends this one.
TOKEN_ENV_VAR = "RUNTIME_CODE_SERVER_TOKEN"
# 32 random bytes: far beyond guessing, short enough for an environment variable.
_TOKEN_BYTES = 32


@dataclass(frozen=True)
class AuthToken:
    """A token whose value never shows in a repr, a log line or an error message."""

    value: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.value:
            raise ValueError("An auth token cannot be empty.")

    def __repr__(self) -> str:
        return "AuthToken('***')"

    @classmethod
    def generate(cls) -> AuthToken:
        """A fresh random token."""
        return cls(secrets.token_urlsafe(_TOKEN_BYTES))

    def metadata(self) -> dict[str, str]:
        """The gRPC metadata that carries this token."""
        return {TOKEN_METADATA_KEY: self.value}


def token_problem(expected: AuthToken, metadata: Mapping[str, str | bytes] | None) -> str | None:
    """Why a request's metadata does not carry `expected` ("no token", "a wrong token"); None if it does."""
    sent = metadata.get(TOKEN_METADATA_KEY) if metadata is not None else None
    if sent is None or sent == "":
        return "no auth token"
    given = sent.encode() if isinstance(sent, str) else sent
    if not hmac.compare_digest(given, expected.value.encode()):
        return "a wrong auth token"
    return None


def token_from_environment(environ: Mapping[str, str] | None = None) -> AuthToken | None:
    """The token in RUNTIME_CODE_SERVER_TOKEN, or None when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(TOKEN_ENV_VAR, "").strip()
    return AuthToken(value) if value else None


def read_token_file(path: str) -> AuthToken:
    """The token in a file (surrounding whitespace dropped).

    Raises ValueError naming the file when it cannot be read, is empty, or
    other users may read or change it (a shared secret must stay secret).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"Cannot read the auth token file {path}: {exc.strerror}.") from exc
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            raise ValueError(
                f"The auth token file {path} has mode {mode:o}: other users may read or change "
                f"it. Run `chmod 600 {path}`."
            )
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(64 * 1024)
    finally:
        os.close(fd)
    value = data.decode("utf-8", errors="replace").strip()
    if not value:
        raise ValueError(f"The auth token file {path} is empty; write the token into it.")
    return AuthToken(value)

"""The ready line: how a code server tells its supervisor (runtime.process) it is listening.

Exactly one stdout line, `RUNTIME_CODE_SERVER_READY {"address": ..., "pid": ...,
"server_id": ...}`, flushed once the server accepts connections. User code may
print too (before the line when it loads first), so readers look for the
marker on every line.
"""

from __future__ import annotations

import msgspec

READY_MARKER = "RUNTIME_CODE_SERVER_READY"


class ReadyInfo(msgspec.Struct, frozen=True, kw_only=True):
    # "host:port" or "unix:/path"; CodeLocationClient.for_address takes it.
    address: str
    pid: int
    server_id: str


_decoder = msgspec.json.Decoder(ReadyInfo)


def format_ready_line(info: ReadyInfo) -> str:
    """The line (with its newline) a server prints once it listens."""
    return f"{READY_MARKER} {msgspec.json.encode(info).decode()}\n"


def parse_ready_line(line: str | bytes) -> ReadyInfo | None:
    """The ReadyInfo in line, or None when line is not a ready line (e.g. user output)."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    start = text.find(READY_MARKER)
    if start < 0:
        return None
    try:
        return _decoder.decode(text[start + len(READY_MARKER) :].strip())
    except msgspec.DecodeError:
        return None

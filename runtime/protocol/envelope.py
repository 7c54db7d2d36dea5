"""Envelopes: a payload struct plus the protocol version, in and out of protobuf.

Both ends of the wire use these helpers, so the version check and the chunking
of large payloads are written once. Decoding checks the version before it
touches the payload: a peer on another version gets a sentence naming both
versions, never a msgpack decode failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from runtime.errors import ProtocolError, ProtocolVersionError
from runtime.protocol._generated.runtime_api import Chunk, Envelope
from runtime.protocol.messages import CHUNK_SIZE, PROTOCOL_VERSION, Message, encode

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import msgspec

T = TypeVar("T")


def wrap(message: Message) -> Envelope:
    """Encode a payload struct into an Envelope stamped with this side's protocol version."""
    return Envelope(protocol_version=PROTOCOL_VERSION, payload=encode(message))


def version_mismatch_message(peer_version: int, *, peer: str) -> str:
    """The sentence both sides use when versions differ."""
    return (
        f"{peer} speaks protocol version {peer_version} but this process speaks version "
        f"{PROTOCOL_VERSION}; run the same runtime version on the host and the code server."
    )


def check_version(version: int, *, peer: str) -> None:
    """Raise ProtocolVersionError when `version` is not this side's protocol version."""
    if version != PROTOCOL_VERSION:
        raise ProtocolVersionError(version_mismatch_message(version, peer=peer))


def unwrap(envelope: Envelope, decoder: msgspec.msgpack.Decoder[T], *, peer: str) -> T:
    """Check the envelope's version, then decode its payload.

    Raises ProtocolVersionError on another version and ProtocolError when the
    payload is not the struct the RPC promises.
    """
    check_version(envelope.protocol_version, peer=peer)
    return decode_payload(envelope.payload, decoder, peer=peer)


def decode_payload(data: bytes, decoder: msgspec.msgpack.Decoder[T], *, peer: str) -> T:
    """Decode a payload, translating msgspec's errors into ProtocolError."""
    import msgspec

    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"{peer} sent a payload this side cannot decode: {exc}.") from exc


def split_into_chunks(data: bytes, *, chunk_size: int = CHUNK_SIZE) -> Iterator[Chunk]:
    """Slice an encoded payload into Chunk messages; the last one has `last=True`.

    An empty payload still yields one (empty, last) chunk so the reader always
    sees an end marker.
    """
    view = memoryview(data)
    count = max(1, -(-len(data) // chunk_size))
    for index in range(count):
        piece = bytes(view[index * chunk_size : (index + 1) * chunk_size])
        yield Chunk(protocol_version=PROTOCOL_VERSION, data=piece, last=index == count - 1)


def join_chunks(chunks: Iterable[Chunk], *, peer: str) -> bytes:
    """Reassemble chunks (already received) into the payload; checks versions and the end marker."""
    parts: list[bytes] = []
    for chunk in chunks:
        check_version(chunk.protocol_version, peer=peer)
        parts.append(chunk.data)
        if chunk.last:
            return b"".join(parts)
    raise ProtocolError(f"{peer} ended the chunk stream before its last chunk.")

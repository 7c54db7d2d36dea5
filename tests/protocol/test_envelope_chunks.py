"""Envelopes and chunks: round trips and version checks, without a network."""

from __future__ import annotations

import pytest

from runtime.errors import ProtocolError, ProtocolVersionError
from runtime.protocol._generated.runtime_api import Chunk, Envelope
from runtime.protocol.envelope import join_chunks, split_into_chunks, unwrap, wrap
from runtime.protocol.messages import PROTOCOL_VERSION, PingReply, decoder

PEER = "The code server at unix:/tmp/x.sock"


def test_wrap_and_unwrap_round_trip() -> None:
    envelope = wrap(PingReply(echo="hi", server_id="abc"))
    assert envelope.protocol_version == PROTOCOL_VERSION
    assert unwrap(envelope, decoder(PingReply), peer=PEER) == PingReply(echo="hi", server_id="abc")


def test_unwrap_of_another_version_names_both_versions() -> None:
    envelope = Envelope(protocol_version=PROTOCOL_VERSION + 1, payload=b"\xc1garbage")
    with pytest.raises(ProtocolVersionError) as caught:
        unwrap(envelope, decoder(PingReply), peer=PEER)
    assert str(caught.value).startswith(
        f"{PEER} speaks protocol version {PROTOCOL_VERSION + 1} but this process speaks "
        f"version {PROTOCOL_VERSION}"
    )


def test_undecodable_payload_is_a_protocol_error() -> None:
    envelope = Envelope(protocol_version=PROTOCOL_VERSION, payload=b"\xc1")
    with pytest.raises(ProtocolError, match="cannot decode"):
        unwrap(envelope, decoder(PingReply), peer=PEER)


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 35])
def test_chunks_round_trip(size: int) -> None:
    data = bytes(range(256)) * 4
    data = data[:size]
    chunks = list(split_into_chunks(data, chunk_size=10))
    assert all(len(c.data) <= 10 for c in chunks)
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert join_chunks(chunks, peer=PEER) == data


def test_a_stream_without_its_last_chunk_is_an_error() -> None:
    chunks = list(split_into_chunks(b"x" * 30, chunk_size=10))[:-1]
    with pytest.raises(ProtocolError, match="before its last chunk"):
        join_chunks(chunks, peer=PEER)


def test_a_chunk_of_another_version_is_refused() -> None:
    with pytest.raises(ProtocolVersionError):
        join_chunks([Chunk(protocol_version=0, data=b"", last=True)], peer=PEER)

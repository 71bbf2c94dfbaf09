"""The gateway's gRPC channels (embedder, vector-search): one message limit, TLS when set."""

from __future__ import annotations

import grpc

from fashionrec_common.grpc_auth import ClientTls, aio_channel

# Batches of uploads (embedder) and of vectors (vector-search Upsert) pass gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def channel(address: str, tls: ClientTls | None) -> grpc.aio.Channel:
    """An aio channel to ``address`` (host:port) taking and sending up to MAX_MESSAGE_BYTES."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    return aio_channel(address, tls, options)

"""The upstream's raw answer in the log: ``upstream.responded``, what ``lynkr replay --check`` converts again.

The pool records one for every attempt whose answer started (a 2xx head): the bytes exactly as they arrived,
the sizes of the reads they arrived in, and what converting them took (:class:`lynkr.wire.streams.Conversion`);
for a streaming client, also the SSE bytes it was sent.  Those are the upstream's own bytes again for an
Anthropic-native upstream, and content addressing stores them once.

The bytes go to the log's blob database under their digest, packed with zlib once, by the store's worker thread:
the session's stream keeps a small record, so folding a session never reads them, and the hot path pays one list
append per read plus the join.  The recorder masks known secrets in them as in every payload.
"""

from __future__ import annotations

import struct

import attrs

from lynkr.events.records import STORED, Event, event
from lynkr.events.transcript import NO_BLOBS, BlobSource, MissingBlob, blob_digest
from lynkr.wire.streams import Conversion


def packed_sizes(reads: list[bytes]) -> bytes:
    """The size of each read as little-endian uint32s.

    Bytes rather than a list of ints: the recorder's scrub searches one short bytes value instead of walking
    hundreds of ints, and nothing is converted when the event is built (together a third of what recording costs
    on the event loop).  No secret can be masked in them: a read's size has a NUL in its top bytes unless it is
    over 16 MiB, and a secret has none.
    """
    return struct.pack(f"<{len(reads)}I", *map(len, reads))


@event("upstream.responded")
@attrs.frozen(kw_only=True)
class UpstreamResponded(Event):
    """One attempt's answer as the upstream sent it.

    Recorded, ``body`` holds the bytes; stored (:meth:`stored_form`) they move to the blob database and
    ``digest`` names them.  Read back from the log, :meth:`raw` fetches them through ``blobs``.
    """

    request_id: str
    provider: str  # the configured provider's name
    kind: str  # its kind (databricks, azure-openai, ...)
    attempt: int
    wire: str  # the format converted: "anthropic", "openai" or "ollama"
    streamed: bool  # an SSE or NDJSON stream; False for one JSON body
    complete: bool  # the answer was read to its end; False when it broke off or failed in-band
    message_id: str  # conversion options: see lynkr.wire.streams.Conversion
    model: str
    input_tokens: int
    tool_ids: str  # the tool-call id scheme of the request sent upstream
    reads: bytes  # the size of each read, in order (packed_sizes)
    size: int  # bytes as they arrived, before any secret was masked
    digest: bytes = b""  # where the bytes are in the blob database, once stored
    body: bytes = b""  # the bytes, until stored
    # The same for the SSE bytes a streaming client was sent; none for a JSON client or an agent loop's round
    # (the loop relays its rounds as events).
    sent_digest: bytes = b""
    sent: bytes = b""
    blobs: BlobSource = attrs.field(default=NO_BLOBS, eq=False, repr=False, metadata={STORED: False})

    @property
    def conversion(self) -> Conversion:
        return Conversion(wire=self.wire, message_id=self.message_id, model=self.model, input_tokens=self.input_tokens)

    def raw(self) -> bytes:
        """The answer's bytes (known secrets masked); raises ``MissingBlob`` when the log lost them."""
        if self.body or not self.digest:
            return self.body
        stored = self.blobs.blob(self.digest)
        if stored is None:
            raise MissingBlob(f"the upstream answer to {self.request_id} ({self.digest.hex()[:16]}) is not in the log")
        return stored

    def client_sse(self) -> bytes | None:
        """The SSE bytes the client was sent, None when none were kept; raises ``MissingBlob`` as :meth:`raw`."""
        if self.sent or not self.sent_digest:
            return self.sent or None
        stored = self.blobs.blob(self.sent_digest)
        if stored is None:
            raise MissingBlob(f"the SSE sent for {self.request_id} ({self.sent_digest.hex()[:16]}) is not in the log")
        return stored

    @property
    def read_sizes(self) -> tuple[int, ...]:
        return struct.unpack(f"<{len(self.reads) // 4}I", self.reads[: len(self.reads) // 4 * 4])

    def read_pieces(self) -> list[bytes]:
        """The bytes cut back into the reads they arrived in.

        A masked secret changes the body's length; the pieces after it are then cut a little off their reads, which
        changes nothing in what they convert to.
        """
        data = self.raw()
        pieces: list[bytes] = []
        offset = 0
        for size in self.read_sizes:
            pieces.append(data[offset : offset + size])
            offset += size
        if offset < len(data):
            pieces.append(data[offset:])
        return pieces

    def stored_form(self) -> tuple[UpstreamResponded, dict[bytes, bytes]]:
        if not self.body and not self.sent:
            return self, {}
        blobs: dict[bytes, bytes] = {}
        digest, sent_digest = self.digest, self.sent_digest
        if self.body:
            digest = blob_digest(self.body)
            blobs[digest] = self.body
        if self.sent:
            sent_digest = blob_digest(self.sent)
            blobs[sent_digest] = self.sent
        stored = attrs.evolve(self, digest=digest, body=b"", sent_digest=sent_digest, sent=b"", blobs=NO_BLOBS)
        return stored, blobs

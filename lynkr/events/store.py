"""The event log interface: the seam where another storage engine plugs in.

An :class:`EventStore` appends batches durably, hands out strictly increasing sequence numbers starting at 1,
and reads back from any sequence number, optionally for one stream only.  Its methods block: actors call
them through ``trio.to_thread.run_sync``.  Live subscription is not the store's business; the recorder
actor publishes what it commits.

Some events refer to content stored apart from them: a request's transcript is split into blobs, each stored
once under the digest of its bytes (see :mod:`lynkr.events.transcript`).  Blobs belong to the log as much
as records do: ``append`` stores the blobs of a batch's events in the same atomic step as the records, and
``blob`` hands them back to the events read from the store.

Reading is forgiving where it must be and strict where it matters: a record that is corrupt or whose event
type this build does not know is skipped, counted and logged, so replay never crashes on one bad record;
a record from a *newer* lynkr raises :class:`~lynkr.events.records.EventFromTheFuture`, so a newer log is
never silently misread.  :class:`SkippingDecoder` implements that policy once for every engine.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from typing import Protocol

import attrs

from lynkr.events.codec import CorruptRecord, decode, decode_payload
from lynkr.events.records import Event, Payload, Recorded, UnknownEventType
from lynkr.events.transcript import BlobSource

log = logging.getLogger("lynkr.events")


@attrs.frozen(kw_only=True)
class StoreStats:
    events: int
    last_seq: int
    bytes_used: int  # bytes the log's data occupies
    bytes_on_disk: int  # size of the files, which may be larger than what is used
    map_size: int  # for memory-mapped engines the current map size, otherwise 0
    skipped_corrupt: int  # records skipped by reads through this handle
    skipped_unknown: int


@attrs.frozen(kw_only=True)
class StreamSummary:
    stream: str
    events: int
    first_seq: int
    last_seq: int


class EventStore(Protocol):
    def append(self, batch: Sequence[tuple[str, Event]], *, time_ns: int | None = None) -> list[int]:
        """Append ``(stream, event)`` pairs atomically; durable when it returns.

        Assigns the next sequence numbers and the time (``time_ns`` when given, else now) and returns the
        sequence numbers in batch order.  Each event is stored in its ``stored_form()``, and the blobs that
        form refers to are stored with it, each once.  Nothing of a batch is stored when it raises.
        """
        ...

    def blob(self, digest: bytes) -> bytes | None:
        """The blob stored under ``digest``, or None when there is none."""
        ...

    def last_seq(self) -> int:
        """The highest sequence number stored, 0 for an empty log."""
        ...

    def read(
        self, start: int = 1, *, stream: str | None = None, topics: Collection[str] | None = None
    ) -> Iterator[Recorded]:
        """Records with ``seq >= start`` in order, skipping (and counting) unreadable ones.

        With ``topics``, only records of those topics; intact records of other known topics are passed
        over undecoded, while corrupt and unknown ones are still skipped and counted as above.  Events
        that refer to blobs find them through this store while it is open.
        """
        ...

    def read_payloads(
        self, start: int = 1, *, stream: str | None = None, topics: Collection[str] | None = None
    ) -> Iterator[tuple[int, int, str, str, Payload]]:
        """``(seq, time_ns, topic, stream, payload)`` of what :meth:`read` would return, with no event objects
        built.

        Payloads are upcast to their event's current version; what folds over payloads read.
        """
        ...

    def read_raw(self, start: int = 1, *, stream: str | None = None) -> Iterator[tuple[int, bytes]]:
        """The stored bytes with their sequence numbers, undecoded."""
        ...

    def iter_streams(self) -> Iterator[StreamSummary]:
        """Every stream with its event count and sequence range, in stream order."""
        ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


class SkippingDecoder:
    """Decodes records for reading, skipping and counting the corrupt and the unknown."""

    def __init__(self, blobs: BlobSource | None = None) -> None:
        self._blobs = blobs
        self.skipped_corrupt = 0
        self.skipped_unknown = 0
        self._unknown_seen: set[str] = set()

    def decode(self, seq: int, data: bytes | memoryview) -> Recorded | None:
        """The record, or None when it must be skipped; raises ``EventFromTheFuture``."""
        try:
            return decode(seq, data, self._blobs)
        except (CorruptRecord, UnknownEventType) as error:
            self._skip(seq, error)
        return None

    def decode_payload(self, seq: int, data: bytes | memoryview) -> tuple[int, int, str, str, Payload] | None:
        """``(seq, time_ns, topic, stream, payload)``, or None when the record must be skipped."""
        try:
            return decode_payload(seq, data)
        except (CorruptRecord, UnknownEventType) as error:
            self._skip(seq, error)
        return None

    def _skip(self, seq: int, error: CorruptRecord | UnknownEventType) -> None:
        if isinstance(error, CorruptRecord):
            self.skipped_corrupt += 1
            log.warning("skipping corrupt event log record: %s", error)
            return
        self.skipped_unknown += 1
        # A plugin's events recur by the thousand once it is gone: warn once per type.
        if str(error) not in self._unknown_seen:
            self._unknown_seen.add(str(error))
            log.warning("skipping records of unknown event type %s (first: record %d)", error, seq)

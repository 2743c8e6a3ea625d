"""Binary encoding of one stored record.

A record is a 5-byte frame header followed by a msgpack body::

    +--------+----------------+-------------------------------------------------+
    | format | crc32(body)    | body = msgpack [topic, version, time_ns, stream, |
    | 1 byte | 4 bytes, BE    |                 payload]                        |
    +--------+----------------+-------------------------------------------------+

The frame (format byte, then the crc of everything after the header) never changes, so the crc is checked
before the format byte is believed: random garbage is reported as corrupt, and only an intact record with a
larger format byte is refused as coming from a newer lynkr.  ``seq`` is not stored in the record; it is the
record's key in the store.

Plain functions, no I/O.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

# Imported for its side effect: decoding looks topics up in the registry, which the catalog fills.
import lynkr.events.catalog  # noqa: F401
from lynkr.events.records import Event, EventFromTheFuture, Payload, Recorded, event_class, upcast

FORMAT_VERSION = 1

_HEADER = struct.Struct(">BI")
_HEADER_SIZE = _HEADER.size

# Bound once: decode runs for every event of a replay.
_unpack_header = _HEADER.unpack_from
_crc32 = zlib.crc32
_unpackb = msgpack.unpackb


class CorruptRecord(Exception):
    """A stored record failed its checksum, is not msgpack, or does not have the record's shape."""


def encode(time_ns: int, stream: str, event: Event) -> bytes:
    """The stored bytes for ``event`` recorded at ``time_ns`` on ``stream``."""
    return encode_payload(time_ns, stream, event.TYPE, event.VERSION, payload_of(event))


def payload_of(event: Event) -> Payload:
    """``event.to_payload()``, without its cost where the result is the same.

    ``attrs.asdict(recurse=True)`` copies every nested container (about 25 µs for a 2 kB request body).
    Event fields hold plain data, so a shallow dict of the fields is the same payload; the containers
    are shared with the event, so callers must treat the result as read-only.  A class that overrides
    ``to_payload`` keeps its own.
    """
    cls = type(event)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _field_names(cls)
    if not names:
        return event.to_payload()
    return {name: getattr(event, name) for name in names}


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    """The attribute names to copy for ``cls``, or ``()`` when it has its own ``to_payload``."""
    overrides = cls.to_payload is not Event.to_payload
    names = () if overrides else tuple(field.name for field in attrs.fields(cls))
    _FIELD_NAMES[cls] = names
    return names


def encode_payload(time_ns: int, stream: str, topic: str, version: int, payload: Payload) -> bytes:
    """The stored bytes for a payload given by topic and version (what :func:`encode` does for an event)."""
    try:
        body: bytes = msgpack.packb([topic, version, time_ns, stream, payload], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"event {topic!r} has a payload that is not plain data: {error}") from error
    return _HEADER.pack(FORMAT_VERSION, zlib.crc32(body)) + body


_classes: dict[str, type[Event]] = {}


def _remember_class(topic: str) -> type[Event]:
    """The event class for ``topic`` (raising ``UnknownEventType``), remembered for the next record."""
    cls = _classes[topic] = event_class(topic)
    return cls


def decode(seq: int, data: bytes | memoryview) -> Recorded:
    """The record stored under ``seq``, upcast to the current version of its event class.

    Raises :class:`CorruptRecord`, :class:`~lynkr.events.records.UnknownEventType` or
    :class:`~lynkr.events.records.EventFromTheFuture`.
    """
    if len(data) < _HEADER_SIZE:
        raise CorruptRecord(f"record {seq}: {len(data)} bytes is shorter than the record header")
    frame_format, crc = _unpack_header(data)
    body = memoryview(data)[_HEADER_SIZE:]
    if _crc32(body) != crc:
        raise CorruptRecord(f"record {seq}: checksum mismatch")
    if frame_format != FORMAT_VERSION:
        if frame_format > FORMAT_VERSION:
            raise EventFromTheFuture(
                f"record {seq} uses log format {frame_format}, but this lynkr reads only format "
                f"{FORMAT_VERSION}; upgrade lynkr to read this log"
            )
        raise CorruptRecord(f"record {seq}: unknown log format {frame_format}")
    try:
        fields: Any = _unpackb(body)  # msgpack >= 1.0 defaults: str as str, arrays as lists
    except (ValueError, msgpack.UnpackException) as error:
        raise CorruptRecord(f"record {seq}: body is not msgpack: {error}") from None
    if type(fields) is not list or len(fields) != 5:
        raise CorruptRecord(f"record {seq}: body is not a 5-item record")
    topic, version, time_ns, stream, payload = fields
    if not (
        type(topic) is str
        and type(version) is int
        and type(time_ns) is int
        and type(stream) is str
        and type(payload) is dict
    ):
        raise CorruptRecord(f"record {seq}: record fields have the wrong types")
    cls = _classes.get(topic) or _remember_class(topic)
    try:
        if version != cls.VERSION:
            payload = upcast(topic, version, payload)
        event = cls.from_payload(payload)
    except (TypeError, ValueError, KeyError) as error:
        raise CorruptRecord(f"record {seq}: {topic} v{version} payload does not fit: {error}") from None
    return Recorded(seq=seq, time_ns=time_ns, stream=stream, event=event)

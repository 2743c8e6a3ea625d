"""Binary encoding of one stored record.

A record is a 5-byte frame header followed by a msgpack body::

    +--------+----------------+-------------------------------------------------+
    | format | crc32(body)    | body = msgpack [topic, version, time_ns, stream, |
    | 1 byte | 4 bytes, BE    |                 payload]                        |
    +--------+----------------+-------------------------------------------------+

Format 1 stores the msgpack body as it is; format 2 stores it zlib-compressed.  Bodies of at least
``COMPRESS_MIN_BYTES`` are compressed when that saves a fifth or more: Claude Code sends its whole
transcript, system prompt and tool schemas with every turn, and that JSON shrinks several times over, while
small records stay plain and cheap to read.

The frame (format byte, then the crc of everything after the header) never changes, so the crc is checked
before the format byte is believed: random garbage is reported as corrupt, and only an intact record with a
larger format byte is refused as coming from a newer lynkr.  ``seq`` is not stored in the record; it is the
record's key in the store.

The topic is the body's first item, so :class:`TopicFilter` can read it from a plain record without
decoding the rest and let a reader pass over records of topics it does not want.

Plain functions, no I/O.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

# Imported for its side effect: decoding looks topics up in the registry, which the catalog fills.
import lynkr.events.catalog  # noqa: F401
from lynkr.events.records import (
    STORED,
    Event,
    EventFromTheFuture,
    Payload,
    Recorded,
    UnknownEventType,
    event_class,
    upcast,
)
from lynkr.events.transcript import BlobSource

PLAIN = 1
COMPRESSED = 2
FORMAT_VERSION = COMPRESSED  # the newest format this lynkr reads
COMPRESS_MIN_BYTES = 8192

_HEADER = struct.Struct(">BI")
_HEADER_SIZE = _HEADER.size

# Bound once: decode runs for every event of a replay.
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
_crc32 = zlib.crc32
_compress = zlib.compress
_unpackb = msgpack.unpackb


class CorruptRecord(Exception):
    """A stored record failed its checksum, is not msgpack, or does not have the record's shape."""


def encode(time_ns: int, stream: str, event: Event) -> bytes:
    """The stored bytes for ``event`` recorded at ``time_ns`` on ``stream``."""
    return encode_payload(time_ns, stream, event.TYPE, event.VERSION, payload_of(event))


def encode_all(time_ns: int, batch: Sequence[tuple[str, Event]]) -> list[bytes]:
    """:func:`encode` for each ``(stream, event)`` of a batch, all recorded at ``time_ns``."""
    # One packer for the batch: msgpack.packb builds (and allocates a buffer for) a new one per call.
    pack = msgpack.Packer(use_bin_type=True).pack
    return [_framed(pack, event.TYPE, [event.TYPE, event.VERSION, time_ns, stream, payload_of(event)]) for stream, event in batch]


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
    stored = [field.name for field in attrs.fields(cls) if field.metadata.get(STORED, True)]
    names = () if overrides else tuple(stored)
    _FIELD_NAMES[cls] = names
    return names


def encode_payload(time_ns: int, stream: str, topic: str, version: int, payload: Payload) -> bytes:
    """The stored bytes for a payload given by topic and version (what :func:`encode` does for an event)."""
    return _framed(msgpack.Packer(use_bin_type=True).pack, topic, [topic, version, time_ns, stream, payload])


def _framed(pack: Callable[[Any], bytes], topic: str, fields: list[Any]) -> bytes:
    try:
        body = pack(fields)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"event {topic!r} has a payload that is not plain data: {error}") from error
    if len(body) >= COMPRESS_MIN_BYTES:
        packed = _compress(body, 1)
        if len(packed) * 5 <= len(body) * 4:
            return _pack_header(COMPRESSED, _crc32(packed)) + packed
    return _pack_header(PLAIN, _crc32(body)) + body


class TopicFilter:
    """Tells from a record's raw bytes whether a reader of ``topics`` needs it decoded.

    It turns down only intact records of known topics that were not asked for; it reads the topic
    without decoding the body (msgpack puts it right after the array marker).  Everything else is
    admitted: the asked-for topics, and records that are corrupt or of an unknown topic, so that
    decoding them counts them just as a full read would.
    """

    def __init__(self, topics: Iterable[str]) -> None:
        self._wanted = frozenset(topic.encode() for topic in topics)
        self._unknown: dict[bytes, bool] = {}  # verdicts on topics not asked for: is it unknown here?

    def admits(self, data: bytes | memoryview) -> bool:
        topic = _topic_bytes(data)
        if topic is None or topic in self._wanted:
            return True
        if _crc32(memoryview(data)[_HEADER_SIZE:]) != _unpack_header(data)[1]:
            return True
        unknown = self._unknown.get(topic)
        if unknown is None:
            unknown = self._judge(topic)
        return unknown

    def _judge(self, topic: bytes) -> bool:
        try:
            event_class(topic.decode())
        except (UnicodeDecodeError, UnknownEventType):
            unknown = True
        else:
            unknown = False
        if len(self._unknown) < _VERDICTS_KEPT:
            self._unknown[topic] = unknown
        return unknown


_VERDICTS_KEPT = 1024
_FIXARRAY_5 = 0x95
_FIXSTR, _FIXSTR_LAST, _STR8 = 0xA0, 0xBF, 0xD9


def _topic_bytes(data: bytes | memoryview) -> bytes | None:
    """The topic of a record as stored, or None when its body does not start the way records do."""
    if len(data) < _HEADER_SIZE + 2 or data[0] != PLAIN or data[_HEADER_SIZE] != _FIXARRAY_5:
        return None
    marker = data[_HEADER_SIZE + 1]
    if _FIXSTR <= marker <= _FIXSTR_LAST:
        start, length = _HEADER_SIZE + 2, marker - _FIXSTR
    elif marker == _STR8 and len(data) > _HEADER_SIZE + 2:
        start, length = _HEADER_SIZE + 3, data[_HEADER_SIZE + 2]
    else:
        return None
    return bytes(data[start : start + length])


# Per topic, how to build its event from a current-version payload: the class itself unless it has its own
# ``from_payload`` (one call less per record), the version it is at, and whether it takes the store's blobs.
_Builder = Callable[..., Event]
_builders: dict[str, tuple[_Builder, int, bool]] = {}


def _builder_of(topic: str) -> tuple[_Builder, int, bool]:
    """The builder, current version and blob use for ``topic`` (raising ``UnknownEventType``), remembered."""
    cls = event_class(topic)
    plain = getattr(cls.from_payload, "__func__", None) is getattr(Event.from_payload, "__func__", None)
    takes_blobs = any(field.name == "blobs" and not field.metadata.get(STORED, True) for field in attrs.fields(cls))
    found = _builders[topic] = ((cls if plain else _from_payload(cls)), cls.VERSION, takes_blobs)
    return found


def _from_payload(cls: type[Event]) -> _Builder:
    def build(**payload: Any) -> Event:
        return cls.from_payload(payload)

    return build


def decode(seq: int, data: bytes | memoryview, blobs: BlobSource | None = None) -> Recorded:
    """The record stored under ``seq``, upcast to the current version of its event class.

    ``blobs`` is where an event that refers to content-addressed blobs (a request) finds them: the store.
    Raises :class:`CorruptRecord`, :class:`~lynkr.events.records.UnknownEventType` or
    :class:`~lynkr.events.records.EventFromTheFuture`.
    """
    topic, version, time_ns, stream, payload = _fields(seq, data)
    build, current, takes_blobs = _builders.get(topic) or _builder_of(topic)
    try:
        if version != current:
            payload = upcast(topic, version, payload)
        if takes_blobs and blobs is not None:
            payload["blobs"] = blobs
        event = build(**payload)
    except (TypeError, ValueError, KeyError) as error:
        raise CorruptRecord(f"record {seq}: {topic} v{version} payload does not fit: {error}") from None
    return Recorded(seq=seq, time_ns=time_ns, stream=stream, event=event)


def decode_payload(seq: int, data: bytes | memoryview) -> tuple[int, int, str, str, Payload]:
    """``(seq, time_ns, topic, stream, payload)`` of a record, the payload upcast but no event built from it.

    What folds over payloads read (see ``Projection.apply_payload``): about half the cost of :func:`decode`.
    The payload is not checked against the event's fields.  Raises as :func:`decode` does.
    """
    topic, version, time_ns, stream, payload = _fields(seq, data)
    current = (_builders.get(topic) or _builder_of(topic))[1]
    if version != current:
        try:
            payload = upcast(topic, version, payload)
        except (TypeError, ValueError, KeyError) as error:
            raise CorruptRecord(f"record {seq}: {topic} v{version} payload does not fit: {error}") from None
    return seq, time_ns, topic, stream, payload


def event_of(seq: int, topic: str, payload: Payload, blobs: BlobSource | None = None) -> Event:
    """The event a current-version payload (as :func:`decode_payload` gives it) stands for; ``payload`` is not
    changed.  Raises :class:`CorruptRecord` when the payload does not fit the event's fields."""
    build, _, takes_blobs = _builders.get(topic) or _builder_of(topic)
    try:
        return build(**payload, blobs=blobs) if takes_blobs and blobs is not None else build(**payload)
    except (TypeError, ValueError, KeyError) as error:
        raise CorruptRecord(f"record {seq}: {topic} payload does not fit: {error}") from None


def current_version(topic: str) -> int:
    """The version of ``topic``'s event class in this lynkr; raises ``UnknownEventType``."""
    return (_builders.get(topic) or _builder_of(topic))[1]


def _fields(seq: int, data: bytes | memoryview) -> tuple[str, int, int, str, Payload]:
    """The checked record fields ``(topic, version, time_ns, stream, payload)``."""
    if len(data) < _HEADER_SIZE:
        raise CorruptRecord(f"record {seq}: {len(data)} bytes is shorter than the record header")
    frame_format, crc = _unpack_header(data)
    body: bytes | memoryview = memoryview(data)[_HEADER_SIZE:]
    if _crc32(body) != crc:
        raise CorruptRecord(f"record {seq}: checksum mismatch")
    if frame_format != PLAIN:
        if frame_format > FORMAT_VERSION:
            raise EventFromTheFuture(
                f"record {seq} uses log format {frame_format}, but this lynkr reads formats up to "
                f"{FORMAT_VERSION}; upgrade lynkr to read this log"
            )
        if frame_format != COMPRESSED:
            raise CorruptRecord(f"record {seq}: unknown log format {frame_format}")
        try:
            body = zlib.decompress(body)
        except zlib.error as error:
            raise CorruptRecord(f"record {seq}: compressed body does not inflate: {error}") from None
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
    return topic, version, time_ns, stream, payload

"""Event records: frozen, typed and versioned.

Each event class names its ``TYPE`` (a dotted topic) and ``VERSION``.  Stored records are an envelope
plus a topic plus a payload; reading an older version runs the upcasters registered next to the class
in a loop until the payload reaches the current version.  A payload from a *newer* version than this
build knows is refused, never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import attrs

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

E = TypeVar("E", bound="Event")

# attrs field metadata key: ``{STORED: False}`` marks a field that lives only in memory and is not part of the
# payload (a request's source of blobs, for instance).
STORED = "lynkr.stored"


class UnknownEventType(Exception):
    """No event class is registered for a stored topic."""


class EventFromTheFuture(Exception):
    """A stored event's version is newer than this lynkr understands."""


@attrs.frozen(kw_only=True)
class Event:
    """Base of all events.  Subclasses are ``@attrs.frozen(kw_only=True)`` and registered with ``@event``."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def to_payload(self) -> Payload:
        return attrs.asdict(self, recurse=True, filter=_stored)

    def stored_form(self) -> tuple[Event, dict[bytes, bytes]]:
        """This event as the log stores it, and the blobs it refers to by digest (stored once each).

        Most events are stored as they are; a request splits its transcript into content-addressed blobs.
        """
        return self, {}

    @classmethod
    def from_payload(cls: type[E], payload: Mapping[str, Any]) -> E:
        return cls(**payload)


def _stored(attribute: attrs.Attribute[Any], value: Any) -> bool:
    return bool(attribute.metadata.get(STORED, True))


_REGISTRY: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def event(topic: str, *, version: int = 1) -> Callable[[type[E]], type[E]]:
    """Register an event class under ``topic`` at ``version``."""

    def register(cls: type[E]) -> type[E]:
        if topic in _REGISTRY and _REGISTRY[topic] is not cls:
            raise ValueError(f"event topic {topic!r} is registered twice")
        cls.TYPE = topic
        cls.VERSION = version
        _REGISTRY[topic] = cls
        return cls

    return register


def upcaster(topic: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that lifts a ``topic`` payload from ``from_version`` to ``from_version + 1``."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(topic, from_version)] = fn
        return fn

    return register


def event_class(topic: str) -> type[Event]:
    try:
        return _REGISTRY[topic]
    except KeyError:
        raise UnknownEventType(topic) from None


def upcast(topic: str, version: int, payload: Payload) -> Payload:
    """Bring ``payload`` from ``version`` up to the registered class's current version."""
    cls = event_class(topic)
    if version > cls.VERSION:
        raise EventFromTheFuture(
            f"event {topic!r} has version {version}, but this lynkr knows only up to "
            f"version {cls.VERSION}; upgrade lynkr to read this log"
        )
    while version < cls.VERSION:
        step = _UPCASTERS.get((topic, version))
        if step is None:
            raise UnknownEventType(f"{topic} v{version}: no upcaster to v{version + 1}")
        payload = step(payload)
        version += 1
    return payload



@attrs.frozen(kw_only=True)
class Recorded:
    """An event as stored: the envelope around it."""

    seq: int
    time_ns: int
    stream: str
    event: Event

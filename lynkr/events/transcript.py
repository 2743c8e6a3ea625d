"""Content-addressed request bodies: each part of a transcript is stored once, every body rebuilt exactly.

Claude Code resends its whole transcript with every turn, so storing each body whole makes the log grow with
the square of a session's length.  :func:`split` cuts a body into a *template* (the bytes between its parts)
and *parts*, each stored once as a blob under the digest of its bytes; :func:`join` puts the exact bytes back.
Parts are the messages, the system blocks and the tools list; smaller ones stay in the template.

Two shapes keep a growing transcript linear rather than quadratic:

* the run of messages at the front of ``messages`` is one *chain* part: a linked list of small nodes
  ``(previous node, message digest)``, so a turn adds a node per new message instead of a reference to every
  message it resends;
* the CLI moves its ``cache_control`` marker to the last block of the last message on every turn.  A message
  is stored as its bytes *without* the marker, plus a splice that puts the marker back, so the marked
  message of one turn and the plain one of the next are the same blob.  (The billing line in ``system``,
  which changes on every turn, is small and stays in the template.)

Splitting never changes what is stored, only how: :func:`split` checks that its parts join back to the very
bytes it was given, and stores a body whole when they do not (or when it is not JSON).  Plain functions, no I/O.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs
import orjson

MIN_BODY_BYTES = 8192  # smaller bodies are stored whole: too small for sharing to pay for parsing them
MIN_PART_BYTES = 256  # smaller parts stay in the template: a reference would cost more than it saves
DIGEST_BYTES = 32

BLOB = 0  # the part is one blob (with an optional splice)
CHAIN = 1  # the part is a chain of messages, joined by commas

# A part: where it goes in the template, its kind, its digest, and a splice (bytes put back into the blob at
# an offset; empty for none), followed by the splice's bytes.
_PART = struct.Struct(">IB32sII")


class MissingBlob(KeyError):
    """A body refers to a blob the store does not have."""


class BlobSource(Protocol):
    def blob(self, digest: bytes) -> bytes | None:
        """The blob stored under ``digest``, or None."""
        ...


class NoBlobs:
    """The source of an event that carries its whole body."""

    def blob(self, digest: bytes) -> bytes | None:
        return None


NO_BLOBS = NoBlobs()


class DictBlobs:
    def __init__(self, blobs: Mapping[bytes, bytes]) -> None:
        self._blobs = blobs

    def blob(self, digest: bytes) -> bytes | None:
        return self._blobs.get(digest)


def blob_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES, person=b"lynkr.blob").digest()


def _chain_digest(node: bytes) -> bytes:
    return hashlib.blake2b(node, digest_size=DIGEST_BYTES, person=b"lynkr.chain").digest()


@attrs.frozen
class Split:
    template: bytes
    parts: bytes  # packed parts, see _PART
    blobs: dict[bytes, bytes]  # every blob (and chain node) the parts refer to, by digest


def join(template: bytes, parts: bytes, blobs: BlobSource) -> bytes:
    """The exact body that :func:`split` cut into ``template`` and ``parts``.  Raises :class:`MissingBlob`."""
    if not parts:
        return template
    out: list[bytes] = []
    taken = 0
    for at, kind, digest, splice_at, splice in _unpack_parts(parts):
        out.append(template[taken:at])
        taken = at
        if kind == CHAIN:
            out.append(b",".join(_get(blobs, message) for message in _chain(digest, blobs)))
        else:
            data = _get(blobs, digest)
            out.append(data[:splice_at] + splice + data[splice_at:] if splice else data)
    out.append(template[taken:])
    return b"".join(out)


def split(body: bytes, *, request: Mapping[str, Any] | None = None, min_bytes: int = MIN_BODY_BYTES) -> Split:
    """``body`` as a template and content-addressed parts; whole (no parts) when it cannot be split exactly.

    Bodies under ``min_bytes`` stay whole: a conversation that grows past it is split from then on, and
    its earlier messages become blobs then, so at most its first few small bodies are stored whole.

    ``request`` is ``body`` already parsed, when the caller has it (the edge parsed every request): it saves
    parsing the body a second time.  It is only a guide to where the parts are; each is found by its exact
    bytes, and the parts must still join back to ``body``.
    """
    whole = Split(body, b"", {})
    if len(body) < min_bytes:
        return whole
    if request is None:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return whole
        if not isinstance(request, dict):
            return whole
    blobs: dict[bytes, bytes] = {}
    pieces: list[tuple[int, int, int, bytes, int, bytes]] = []  # (start, end, kind, digest, splice_at, splice)
    # A JSON object's members follow one another in the body in the order the parsed dict keeps, so each part
    # is looked for after the one before: one pass over the body, instead of a scan of the whole body for
    # each system block and the tools (a failed search reads everything after its starting point).
    position = 0
    for name, value in request.items():
        if not isinstance(value, list):
            continue
        if name == "messages" and value:
            found = _message_pieces(body, value, blobs, position)
            if not found and position:
                found = _message_pieces(body, value, blobs, 0)
            pieces.extend(found)
            position = max((piece[1] for piece in found), default=position)
        elif name == "system":
            for block in value:
                position = _add_blob(body, block, pieces, blobs, position)
        elif name == "tools":
            position = _add_blob(body, value, pieces, blobs, position)
    if not pieces:
        return whole
    pieces.sort()
    template: list[bytes] = []
    packed: list[bytes] = []
    size = 0
    taken_end = 0
    for start, end, kind, digest, splice_at, splice in pieces:
        chunk = body[taken_end:start]
        template.append(chunk)
        size += len(chunk)
        packed.append(_PART.pack(size, kind, digest, splice_at, len(splice)) + splice)
        taken_end = end
    template.append(body[taken_end:])
    result = Split(b"".join(template), b"".join(packed), blobs)
    if join(result.template, result.parts, DictBlobs(blobs)) != body:
        return whole
    return result


def _add_blob(
    body: bytes,
    value: Any,
    pieces: list[tuple[int, int, int, bytes, int, bytes]],
    blobs: dict[bytes, bytes],
    position: int,
) -> int:
    """Adds ``value`` (a system block, or the tools list) as a blob piece if it is big enough; where the search
    for the next part starts."""
    try:
        needle = orjson.dumps(value)
    except TypeError:
        return position
    taken = [(piece[0], piece[1]) for piece in pieces]
    found = _find_outside(body, needle, taken, position) or _find_outside(body, needle, taken, 0)
    if found is None or found[1] - found[0] < MIN_PART_BYTES:
        return position
    data = body[found[0] : found[1]]
    digest = blob_digest(data)
    blobs[digest] = data
    pieces.append((found[0], found[1], BLOB, digest, 0, b""))
    return max(position, found[1])


def _message_pieces(
    body: bytes, messages: list[Any], blobs: dict[bytes, bytes], position: int
) -> list[tuple[int, int, int, bytes, int, bytes]]:
    """The chain of leading messages and a blob for each later one, as pieces of ``body`` from ``position`` on;
    adds their blobs."""
    located: list[tuple[int, int, bytes, int, bytes]] = []  # (start, end, stored bytes, splice_at, splice)
    for message in messages:
        found = _locate(body, message, position)
        if found is None:
            break
        located.append(found)
        position = found[1]
    chained = 0
    for index, (start, _, _, _, splice) in enumerate(located):
        if splice or (index and body[located[index - 1][1] : start] != b","):
            break
        chained = index + 1
    if chained and located[chained - 1][1] - located[0][0] < MIN_PART_BYTES:
        chained = 0
    pieces: list[tuple[int, int, int, bytes, int, bytes]] = []
    if chained:
        head = b""
        for _, _, data, _, _ in located[:chained]:
            digest = blob_digest(data)
            blobs[digest] = data
            node = head + digest
            head = _chain_digest(node)
            blobs[head] = node
        pieces.append((located[0][0], located[chained - 1][1], CHAIN, head, 0, b""))
    for start, end, data, splice_at, splice in located[chained:]:
        if end - start < MIN_PART_BYTES:
            continue
        digest = blob_digest(data)
        blobs[digest] = data
        pieces.append((start, end, BLOB, digest, splice_at, splice))
    return pieces


def _locate(body: bytes, message: Any, position: int) -> tuple[int, int, bytes, int, bytes] | None:
    """Where ``message`` sits in ``body`` from ``position`` on, and its bytes without cache_control markers.

    Found by serialising it the way JSON clients do (compact, UTF-8) and searching for that: a client that
    serialises differently simply gets its body stored whole.
    """
    try:
        exact = orjson.dumps(message)
    except TypeError:
        return None
    start = _find(body, exact, position)
    if start < 0:
        return None
    end = start + len(exact)
    plain = _without_markers(message)
    if plain is None:
        return start, end, exact, 0, b""
    stored = orjson.dumps(plain)
    cut = _single_insertion(exact, stored)
    if cut is None:
        return start, end, exact, 0, b""
    return start, end, stored, cut[0], cut[1]


def _without_markers(message: Any) -> Any | None:
    """``message`` with the cache_control markers of its content blocks removed, or None when it has none."""
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if not isinstance(content, list):
        return None
    if not any(isinstance(block, dict) and "cache_control" in block for block in content):
        return None
    plain = [
        {key: value for key, value in block.items() if key != "cache_control"} if isinstance(block, dict) else block
        for block in content
    ]
    return {**message, "content": plain}


def _single_insertion(longer: bytes, shorter: bytes) -> tuple[int, bytes] | None:
    """``(offset, inserted)`` such that ``shorter`` with ``inserted`` at ``offset`` is ``longer``, if one exists."""
    if len(longer) <= len(shorter):
        return None
    low, high = 0, len(shorter)
    while low < high:  # the longest common prefix, by halving: slices compare in C
        middle = (low + high + 1) // 2
        if longer[:middle] == shorter[:middle]:
            low = middle
        else:
            high = middle - 1
    inserted = len(longer) - len(shorter)
    if longer[low + inserted :] != shorter[low:]:
        return None
    return low, longer[low : low + inserted]


def _find_outside(body: bytes, needle: bytes, taken: list[tuple[int, int]], start: int) -> tuple[int, int] | None:
    start = _find(body, needle, start)
    while start >= 0:
        end = start + len(needle)
        if not any(low < end and start < high for low, high in taken):
            return start, end
        start = _find(body, needle, start + 1)
    return None


_HEAD_BYTES = 64


def _find(body: bytes, needle: bytes, start: int) -> int:
    """``body.find(needle, start)``, quick when the needle sits where its first bytes first occur.

    That is the common case here, where each part is looked for right after the one before; a plain search
    for a long needle first spends time proportional to the needle's length preparing it (about 50 µs for a
    Claude Code tools list).  Any other case is a plain search, so the worst case stays linear.
    """
    at = body.find(needle[:_HEAD_BYTES], start)
    if at < 0 or body.startswith(needle, at):
        return at
    return body.find(needle, at + 1)


def _unpack_parts(parts: bytes) -> Iterator[tuple[int, int, bytes, int, bytes]]:
    offset = 0
    while offset < len(parts):
        at, kind, digest, splice_at, splice_len = _PART.unpack_from(parts, offset)
        offset += _PART.size
        yield at, kind, digest, splice_at, parts[offset : offset + splice_len]
        offset += splice_len


def part_digests(parts: bytes) -> list[bytes]:
    """The digests the parts refer to directly (a chain's nodes refer to more)."""
    return [digest for _, _, digest, _, _ in _unpack_parts(parts)]


def reach(parts: bytes, blobs: BlobSource, reached: set[bytes]) -> None:
    """Add every digest ``parts`` needs to ``reached``: its blobs, and each chain's nodes and their messages.

    A chain is walked only back to the first node already reached (everything older was reached with it), so
    reaching the bodies of a whole session costs a step per message, not per message per turn.
    """
    for _, kind, digest, _, _ in _unpack_parts(parts):
        if kind != CHAIN:
            reached.add(digest)
            continue
        node = digest
        while node and node not in reached:
            reached.add(node)
            data = blobs.blob(node)
            if data is None:
                break
            node, message = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
            reached.add(message)


def _chain(head: bytes, blobs: BlobSource) -> list[bytes]:
    """The message digests of the chain ending at ``head``, oldest first."""
    messages: list[bytes] = []
    node: bytes | None = head
    while node:
        data = _get(blobs, node)
        node, message = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
        messages.append(message)
    messages.reverse()
    return messages


def _get(blobs: BlobSource, digest: bytes) -> bytes:
    data = blobs.blob(digest)
    if data is None:
        raise MissingBlob(f"blob {digest.hex()} is missing from the event log")
    return data

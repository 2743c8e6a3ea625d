"""Indexing work that runs off the trio loop: planning a run, and parsing files into updates.

Everything here is synchronous and thread- or process-safe: the actor calls it through
``trio.to_thread.run_sync``, or hands :func:`parse_job` to a process pool (it is a module-level function
with picklable arguments for that reason).  A file that cannot be indexed becomes an update with a reason,
never an exception: one bad file must not stop a run.
"""

from __future__ import annotations

import errno
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from lynkr.index.discover import Candidate, Ignorer, content_hash, discover, judge_bytes, judge_name, judge_stat
from lynkr.index.extract import extract
from lynkr.index.store import FileRecord, Update

# A file already indexed and unchanged by its bytes: only its stat is rewritten.
UNCHANGED = "unchanged"


@attrs.frozen(kw_only=True)
class Parsed:
    """What parsing one file gave: an update for the store, and how long it took."""

    update: Update | None  # None: the file vanished before it was read and was never indexed
    duration_s: float
    unchanged: bool = False  # stat changed, bytes did not: nothing was parsed
    vanished: bool = False
    syntax_errors: bool = False


@attrs.frozen(kw_only=True)
class Plan:
    """What a run must do: parse these, drop those; the rest is unchanged."""

    to_parse: list[tuple[Candidate, bytes | None]]  # with the hash the index holds, if any
    removed: list[str]
    unchanged: int
    skipped: Counter[str]
    seen: int


def plan_run(root: Path, known: dict[str, FileRecord], *, max_file_bytes: int) -> Plan:
    """Compare the workspace with the index.  A file whose size and mtime match its record is not read."""
    found = discover(root, max_file_bytes=max_file_bytes)
    to_parse: list[tuple[Candidate, bytes | None]] = []
    unchanged = 0
    present: set[str] = set()
    for candidate in found.candidates:
        present.add(candidate.path)
        record = known.get(candidate.path)
        if record is not None and record.size == candidate.size and record.mtime_ns == candidate.mtime_ns:
            unchanged += 1
        else:
            to_parse.append((candidate, record.content_hash if record is not None else None))
    removed = sorted(set(known) - present)
    return Plan(to_parse=to_parse, removed=removed, unchanged=unchanged, skipped=found.skipped,
                seen=len(found.candidates))


@attrs.frozen(kw_only=True)
class Triage:
    """Changed paths sorted into what to parse and what to drop."""

    to_parse: list[tuple[Candidate, bytes | None]]
    removed: list[str]
    skipped: Counter[str]


def triage_changes(root: Path, known: dict[str, FileRecord], changed: Iterable[str], *, max_file_bytes: int
                   ) -> Triage:
    """Turn watcher paths (files or folders, present or gone) into parse and remove lists."""
    ignorer = Ignorer(root)
    to_parse: dict[str, tuple[Candidate, bytes | None]] = {}
    removed: set[str] = set()
    skipped: Counter[str] = Counter()
    for path in sorted(set(changed)):
        full = root / path
        if full.is_dir() and not full.is_symlink():
            # A folder created or moved in: index what is under it now.
            sub = discover(full, max_file_bytes=max_file_bytes)
            skipped.update(sub.skipped)
            for found in sub.candidates:
                relative = f"{path}/{found.path}"
                reason = judge_name(relative, ignorer)
                if reason is None:
                    moved = attrs.evolve(found, path=relative)
                    record = known.get(relative)
                    to_parse[relative] = (moved, record.content_hash if record else None)
                else:
                    skipped[reason] += 1
            continue
        if not full.exists() and not full.is_symlink():
            # Gone: the file itself, or a folder and everything the index held under it.
            prefix = f"{path}/"
            removed.update(p for p in known if p == path or p.startswith(prefix))
            continue
        named = judge_name(path, ignorer)
        reason, candidate = (named, None) if named is not None else judge_stat(root, path, max_file_bytes)
        if candidate is None:
            skipped[reason] += 1
            if path in known:
                removed.add(path)
            continue
        record = known.get(path)
        if record is None or record.size != candidate.size or record.mtime_ns != candidate.mtime_ns:
            to_parse[path] = (candidate, record.content_hash if record else None)
    return Triage(to_parse=list(to_parse.values()), removed=sorted(removed), skipped=skipped)


def parse_job(job: tuple[str, Candidate, bytes | None]) -> Parsed:
    """Read, judge, hash and (when the bytes changed) parse one file.  Safe in a worker process."""
    root, candidate, known_hash = job
    started = time.perf_counter()
    try:
        with open(os.path.join(root, candidate.path), "rb") as handle:
            data = handle.read()
            stat = os.fstat(handle.fileno())
    except OSError as error:
        reason = {errno.ENOENT: "vanished", errno.ELOOP: "symlink_loop"}.get(error.errno or 0, "unreadable")
        if reason == "vanished":
            return Parsed(update=None, duration_s=time.perf_counter() - started, vanished=True)
        return Parsed(update=_skip(candidate, b"", reason), duration_s=time.perf_counter() - started)
    digest = content_hash(data)
    base = FileRecord(path=candidate.path, content_hash=digest, size=len(data), mtime_ns=stat.st_mtime_ns,
                      language=candidate.language)
    if known_hash == digest:
        return Parsed(update=Update(record=base, facts=None, keep_facts=True),
                      duration_s=time.perf_counter() - started, unchanged=True)
    refused = judge_bytes(candidate.path, data)
    if refused is not None:
        return Parsed(update=_skip(candidate, digest, refused, base), duration_s=time.perf_counter() - started)
    try:
        facts = extract(candidate.path, candidate.language, data)
    except Exception:  # noqa: BLE001 - a grammar bug must cost one file, not the run
        return Parsed(update=_skip(candidate, digest, "parse_failed", base), duration_s=time.perf_counter() - started)
    record = attrs.evolve(base, definitions=len(facts.definitions), references=len(facts.references))
    return Parsed(update=Update(record=record, facts=facts), duration_s=time.perf_counter() - started,
                  syntax_errors=facts.parse_errors)


def parse_all(root: Path, jobs: Sequence[tuple[Candidate, bytes | None]]) -> list[Parsed]:
    """Parse ``jobs`` one after another in this thread."""
    return [parse_job((str(root), candidate, known)) for candidate, known in jobs]


def _skip(candidate: Candidate, digest: bytes, reason: str, base: FileRecord | None = None) -> Update:
    record = base or FileRecord(path=candidate.path, content_hash=digest, size=candidate.size,
                                mtime_ns=candidate.mtime_ns, language=candidate.language)
    return Update(record=attrs.evolve(record, skipped=reason), facts=None)

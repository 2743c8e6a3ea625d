"""Release notes, diff summaries and changelogs for a commit range, from conventional-commit messages.

Everything here is deterministic and blocking (the tools call it in a worker thread).  A model-written
summary, where one is wanted, is asked for by the tool with :func:`summary_prompt` and put beside this text,
never in place of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import attrs
import pygit2
from pygit2.enums import DeltaStatus

from lynkr.tools.git_repo import (
    commits_in,
    diff_between,
    empty_tree,
    open_repository,
    patches,
    resolve_commit,
    when,
)

# Conventional-commit types in the order notes show them, with their headings.
SECTIONS = (
    ("feat", "Features"),
    ("fix", "Bug fixes"),
    ("perf", "Performance"),
    ("refactor", "Refactoring"),
    ("docs", "Documentation"),
    ("test", "Tests"),
    ("build", "Build"),
    ("ci", "CI"),
    ("style", "Style"),
    ("chore", "Chores"),
    ("revert", "Reverts"),
    ("other", "Other changes"),
)
_KNOWN = {kind for kind, _ in SECTIONS}
_HEADER = re.compile(r"^(?P<kind>[a-zA-Z]+)(?:\((?P<scope>[^)]*)\))?(?P<bang>!)?:\s*(?P<subject>.+)$")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:\s*(?P<text>.+)$", re.MULTILINE)


@attrs.frozen(kw_only=True)
class ParsedCommit:
    short_id: str
    kind: str  # one of SECTIONS' types
    scope: str | None
    subject: str
    breaking: str | None  # what breaks, when the commit says so


def parse_message(short_id: str, message: str) -> ParsedCommit:
    first = message.strip().splitlines()[0] if message.strip() else ""
    match = _HEADER.match(first)
    footer = _BREAKING_FOOTER.search(message)
    if match is None:
        return ParsedCommit(short_id=short_id, kind="other", scope=None, subject=first,
                            breaking=footer["text"] if footer else None)
    kind = match["kind"].lower()
    breaking = footer["text"] if footer else (match["subject"] if match["bang"] else None)
    return ParsedCommit(
        short_id=short_id,
        kind=kind if kind in _KNOWN else "other",
        scope=match["scope"] or None,
        subject=match["subject"] if kind in _KNOWN else first,
        breaking=breaking,
    )


def default_range(repo: pygit2.Repository) -> str:
    """From the newest tag reachable from HEAD to HEAD, or all of HEAD's history when there is no such tag."""
    tag = newest_reachable_tag(repo)
    return f"{tag}..HEAD" if tag is not None else "HEAD"


def newest_reachable_tag(repo: pygit2.Repository) -> str | None:
    tags = _tags_by_commit(repo)
    for item in commits_in(repo, "HEAD", None):
        if item.id in tags:
            return tags[item.id][0]
    return None


def _tags_by_commit(repo: pygit2.Repository) -> dict[pygit2.Oid, list[str]]:
    found: dict[pygit2.Oid, list[str]] = {}
    for name in repo.references:
        if name.startswith("refs/tags/"):
            commit = repo.references[name].peel(pygit2.Commit)
            found.setdefault(commit.id, []).append(name.removeprefix("refs/tags/"))
    return {oid: sorted(names) for oid, names in found.items()}


def grouped(commits: Iterable[ParsedCommit]) -> str:
    """Markdown sections, one per type that has commits, breaking changes first."""
    parsed = list(commits)
    lines: list[str] = []
    breaking = [item for item in parsed if item.breaking]
    if breaking:
        lines.append("### Breaking changes")
        lines.extend(f"- {_scoped(item, item.breaking or '')} ({item.short_id})" for item in breaking)
        lines.append("")
    for kind, heading in SECTIONS:
        chosen = [item for item in parsed if item.kind == kind]
        if chosen:
            lines.append(f"### {heading}")
            lines.extend(f"- {_scoped(item, item.subject)} ({item.short_id})" for item in chosen)
            lines.append("")
    return "\n".join(lines).rstrip()


def _scoped(item: ParsedCommit, text: str) -> str:
    return f"**{item.scope}:** {text}" if item.scope else text


@attrs.frozen(kw_only=True)
class FileChange:
    path: str
    status: str  # added, modified, deleted, renamed, ...
    additions: int
    deletions: int


@attrs.frozen(kw_only=True)
class RangeSummary:
    spec: str
    commits: tuple[ParsedCommit, ...]
    files: tuple[FileChange, ...]
    patch_excerpt: str  # the start of the range's patch, for a model summary

    @property
    def additions(self) -> int:
        return sum(change.additions for change in self.files)

    @property
    def deletions(self) -> int:
        return sum(change.deletions for change in self.files)

    def totals(self) -> str:
        # Worded as git's --shortstat words it.
        files, added, deleted = len(self.files), self.additions, self.deletions
        return (
            f"{files} file{'s' if files != 1 else ''} changed, {added} insertion{'s' if added != 1 else ''}(+), "
            f"{deleted} deletion{'s' if deleted != 1 else ''}(-)"
        )

    def counts(self) -> str:
        kinds = {kind: sum(1 for item in self.commits if item.kind == kind) for kind, _ in SECTIONS}
        named = ", ".join(f"{count} {kind}" for kind, count in kinds.items() if count)
        breaking = sum(1 for item in self.commits if item.breaking)
        return f"{len(self.commits)} commits ({named or 'none'})" + (f", {breaking} breaking" if breaking else "")


def summarize_range(workspace: Path, spec: str | None, excerpt_bytes: int = 12_000) -> RangeSummary:
    repo = open_repository(workspace)
    chosen = spec or default_range(repo)
    history = commits_in(repo, chosen, None)
    commits = tuple(parse_message(item.short_id, item.message) for item in history)
    if ".." in chosen:
        diff = diff_between(repo, chosen, 3)
    else:
        # All of a revision's history: its tree against nothing.
        diff = empty_tree(repo).diff_to_tree(resolve_commit(repo, chosen).tree)
    diff.find_similar()
    files = []
    for patch in patches(diff):
        _, additions, deletions = patch.line_stats
        delta = patch.delta
        path = delta.new_file.path if delta.status != DeltaStatus.DELETED else delta.old_file.path
        if delta.status == DeltaStatus.RENAMED:
            path = f"{delta.old_file.path} -> {delta.new_file.path}"
        files.append(FileChange(path=path, status=delta.status.name.lower(), additions=additions, deletions=deletions))
    patch_text = diff.patch or ""
    return RangeSummary(spec=chosen, commits=commits, files=tuple(files), patch_excerpt=patch_text[:excerpt_bytes])


def release_notes(summary: RangeSummary) -> str:
    lines = [f"## Release notes for {summary.spec}", "", f"{summary.counts()}; {summary.totals()}.", ""]
    lines.append(grouped(summary.commits) or "No commits in this range.")
    return "\n".join(lines)


def diff_summary(summary: RangeSummary) -> str:
    width = max((len(change.path) for change in summary.files), default=0)
    lines = [f"Diff summary for {summary.spec}: {summary.counts()}", ""]
    for change in summary.files:
        lines.append(f" {change.path.ljust(width)} | {change.status:<8} +{change.additions} -{change.deletions}")
    lines.append(f" {summary.totals()}")
    return "\n".join(lines)


def summary_prompt(summary: RangeSummary, purpose: str) -> str:
    """What the model is asked, when a provider is configured: the deterministic facts and a patch excerpt."""
    return (
        f"Write {purpose} for the git range {summary.spec}: three to six sentences for a developer, plain text, "
        "saying what changed and why it matters; do not invent anything the commits and diff do not show.\n\n"
        f"Commits:\n{grouped(summary.commits)}\n\nFiles: {summary.totals()}\n"
        + "\n".join(
            f"{change.status} {change.path} (+{change.additions} -{change.deletions})" for change in summary.files[:200]
        )
        + f"\n\nStart of the patch:\n{summary.patch_excerpt}"
    )


def changelog(workspace: Path, limit_releases: int) -> str:
    """A Keep-a-Changelog style document: Unreleased, then one section per tag, newest first."""
    repo = open_repository(workspace)
    tags = _tags_by_commit(repo)
    sections: list[tuple[str, list[ParsedCommit]]] = [("Unreleased", [])]
    for item in commits_in(repo, "HEAD", None):
        if item.id in tags:
            if len(sections) - 1 >= limit_releases:
                break
            sections.append((f"{tags[item.id][-1]} ({when(item)[:10]})", []))
        sections[-1][1].append(parse_message(item.short_id, item.message))
    lines = ["# Changelog", ""]
    for title, commits in sections:
        if title == "Unreleased" and not commits:
            continue
        lines.extend([f"## {title}", "", grouped(commits) or "No changes.", ""])
    return "\n".join(lines).rstrip() + "\n"

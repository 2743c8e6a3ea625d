"""The policy engine's built-in rules.  They judge canonical actions only, never tool names.

* :class:`DisallowedKinds` (``POLICY_DISALLOWED_TOOLS``): a disallowed tool's action kinds are refused
  whichever tool asks for them, so disallowing ``Bash`` stops ``shell`` and every alias of either.
* :class:`FilePolicy` (``POLICY_FILE_ALLOWED_PATHS`` / ``POLICY_FILE_BLOCKED_PATHS``): every path of an
  ``fs.read`` or ``fs.write`` action is resolved, symlinks included, and must stay inside the workspace, match
  no blocked pattern and, when allowed patterns are set, match one of them.
* :class:`CommandPolicy` (``POLICY_SAFE_COMMANDS_*``): every command of a shell line (see
  :mod:`lynkr.tools.cmdline`) is judged against the allow and deny lists, ``rm`` may not touch the workspace
  root or anything outside it, a command name that is only known at run time is refused, and no argument or
  redirection may name a blocked path.

``POLICY_MAX_STEPS`` and ``POLICY_MAX_TOOL_CALLS`` bound the agent loop, which counts them; git's push, pull,
commit and test rules live with the git tools.
"""

from __future__ import annotations

import fnmatch
import glob
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, get_args
from urllib.parse import urlsplit

import attrs
import trio

from lynkr.tools.base import Action, ActionKind, PolicyRule, Refusal, Registry, ToolContext
from lynkr.tools.cmdline import Command, Word, analyse, git_subcommand
from lynkr.tools.shell import bash_cwd
from lynkr.tools.workspace import PathPatterns, UnresolvablePath, is_inside, relative, resolve

if TYPE_CHECKING:
    from lynkr.config import Config

ACTION_KINDS: frozenset[str] = frozenset(get_args(ActionKind))


@attrs.frozen
class DisallowedKinds:
    """Refuses every action of a kind that a disallowed tool produces."""

    kinds: frozenset[str]
    because: dict[str, str]  # kind -> the disallowed tool name that brought it in
    name: str = "disallowed_tools"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind not in self.kinds:
            return None
        tool = self.because[action.kind]
        return Refusal(
            rule=self.name,
            reason=f"{tool} is disallowed here (POLICY_DISALLOWED_TOOLS), and this call would do what {tool} does "
            f"({action.kind}); do without it or ask the user to allow it",
        )


def disallowed(config: Config, registry: Registry) -> tuple[frozenset[str], DisallowedKinds | None]:
    """The canonical names of the disallowed tools, and the rule refusing their action kinds (None: nothing is)."""
    names: set[str] = set()
    because: dict[str, str] = {}
    for name in config.policy.disallowed_tools:
        if name in registry:
            tool = registry.resolve(name)
            names.add(tool.spec.name)
            for kind in tool.spec.kinds:
                because.setdefault(kind, name)
        if name in ACTION_KINDS:
            because.setdefault(name, name)
    if not because:
        return frozenset(names), None
    # A tool that can do nothing but what is disallowed is not offered either (shell, when Bash is disallowed).
    names.update(spec.name for spec in registry.specs() if spec.kinds and set(spec.kinds) <= set(because))
    return frozenset(names), DisallowedKinds(frozenset(because), because)


@attrs.frozen
class FilePolicy:
    """Paths stay inside the workspace, away from blocked patterns, and within the allowed ones when set."""

    blocked: PathPatterns
    allowed: PathPatterns
    name: str = "file_paths"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind not in ("fs.read", "fs.write"):
            return None
        verb = "read" if action.kind == "fs.read" else "write"
        for raw in action.paths:
            reason = self.path_problem(context.workspace, raw, verb=verb)
            if reason is not None:
                return Refusal(rule=self.name, reason=reason)
        return None

    def path_problem(self, workspace: Path, raw: str, *, verb: str, cwd: Path | None = None) -> str | None:
        """Why ``raw`` may not be touched, or None."""
        try:
            path = resolve(workspace, raw, cwd=cwd)
        except UnresolvablePath as exc:
            return str(exc)
        if not is_inside(workspace, path):
            return (
                f"{raw} leads to {path}, outside the workspace {workspace} (symlinks are followed); "
                f"only files inside the workspace may be {verb_past(verb)}"
            )
        lexical = Path(os.path.normpath((cwd or workspace) / os.path.expanduser(raw)))
        for candidate in (path, lexical):
            pattern = self.blocked.match(workspace, candidate)
            if pattern is not None:
                return (
                    f"{raw} matches the blocked path pattern {pattern!r} (POLICY_FILE_BLOCKED_PATHS: secrets, keys "
                    f"and git internals); do not {verb} it, and ask the user if you need something from it"
                )
        if self.allowed.patterns and self.allowed.match(workspace, path) is None:
            listed = ", ".join(self.allowed.patterns)
            return f"{raw} is not among the allowed paths (POLICY_FILE_ALLOWED_PATHS: {listed}); work on those only"
        return None


def verb_past(verb: str) -> str:
    return {"read": "read", "write": "written"}.get(verb, verb + "ed")


# Always refused while the safe-command rules are on: they act on the machine, not on the workspace.
DEFAULT_DENY: tuple[str, ...] = (
    "sudo", "su", "doas", "pkexec", "mkfs*", "fdisk", "sfdisk", "parted", "wipefs", "shutdown", "reboot", "halt",
    "poweroff", "systemctl poweroff", "systemctl reboot", "crontab",
)
REMOVERS = frozenset({"rm", "rmdir", "unlink", "shred"})
# Commands whose plain arguments are places they write: checked against the workspace like redirections.
# mv's sources count too (they are removed), and so does ln's: a link from inside to outside would be a door out
# for every later command.
WRITERS_ALL_ARGS = frozenset({"tee", "touch", "mkdir", "truncate", "ln", "mv"})
WRITERS_LAST_ARG = frozenset({"cp", "install", "rsync"})
WRITERS_AFTER_FIRST = frozenset({"chmod", "chown", "chgrp"})
# A glob that takes everything in its folder: as an rm target, refused alone (``*``) or in the workspace root.
BROAD_GLOBS = frozenset({"*", ".*", "*/", "**", "*.*", ".[!.]*", "?*", "[!.]*", "..?*"})
SAFE_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero"})
OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
GLOB_EXPANSION_LIMIT = 2000


def _pattern_words(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split())


@attrs.frozen
class CommandPolicy:
    """Judges every command of a shell line (:func:`lynkr.tools.cmdline.analyse`), not just its first word."""

    files: FilePolicy
    allow: tuple[tuple[str, ...], ...] = ()  # when set, every command must match one of these
    deny: tuple[tuple[str, ...], ...] = ()
    name: str = "commands"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind != "shell" or action.command is None:
            return None
        # Resolving paths and expanding globs touches the disk: off the trio thread.
        command, cwd = action.command, action.detail.get("cwd")
        if action.detail.get("session_cwd"):
            cwd = relative(context.workspace, bash_cwd(context))
        reason = await trio.to_thread.run_sync(lambda: self.problem(command, context.workspace, cwd))
        return None if reason is None else Refusal(rule=self.name, reason=reason)

    def problem(self, line: str, workspace: Path, cwd_text: object = None) -> str | None:
        """Why the command ``line`` may not run, or None."""
        try:
            return self._line(line, workspace, cwd_text)
        except UnresolvablePath as exc:
            return str(exc)

    def _line(self, line: str, workspace: Path, cwd_text: object) -> str | None:
        cwd: Path | None = workspace
        if cwd_text not in (None, ""):
            cwd = resolve(workspace, str(cwd_text))
            if not is_inside(workspace, cwd):
                return f"cwd {cwd_text} leads to {cwd}, outside the workspace {workspace}; run commands inside it"
        analysis = analyse(line)
        if analysis.problems:
            return analysis.problems[0]
        for command in analysis.commands:
            if not command.words:
                reason = self._redirects(command, workspace, cwd)
            else:
                reason = self._command(command, workspace, cwd)
            if reason is not None:
                return reason
            if command.name in ("cd", "pushd"):
                cwd = _changed_folder(command, workspace, cwd)
        return None

    def _command(self, command: Command, workspace: Path, cwd: Path | None) -> str | None:
        words = _normalised(command)
        for pattern in self.deny:
            if _matches(pattern, words):
                return (
                    f"`{command.line()}` is denied by the command rule {' '.join(pattern)!r} "
                    "(POLICY_SAFE_COMMANDS_CONFIG); do it another way or ask the user to run it"
                )
        if self.allow and not any(_matches(pattern, words) for pattern in self.allow):
            listed = ", ".join(" ".join(pattern) for pattern in self.allow)
            return (
                f"`{command.line()}` is not on the allowed command list (POLICY_SAFE_COMMANDS_CONFIG: {listed}); "
                "use an allowed command"
            )
        if command.name in REMOVERS:
            reason = self._removal(command, workspace, cwd)
            if reason is not None:
                return reason
        if command.name == "find":
            reason = self._finds(command, workspace, cwd)
            if reason is not None:
                return reason
        reason = self._writes(command, workspace, cwd)
        if reason is not None:
            return reason
        for word in _path_arguments(command):
            reason = self._blocked(word, workspace, cwd, verb="read")
            if reason is not None:
                return reason
        return self._redirects(command, workspace, cwd)

    def _removal(self, command: Command, workspace: Path, cwd: Path | None) -> str | None:
        shown = f"`{command.line()}`"
        if "xargs" in command.via:
            return f"{shown} under xargs takes what to remove from its input, which cannot be judged; name the files"
        for word in _operands(command.args):
            if word.text == "{}" and "find" in command.via:
                continue  # find's own starting points are judged (see _finds)
            if not word.static:
                return f"{shown} removes {word.text!r}, which is only known when it runs; name what to remove"
            if word.text in (".", "..", "~", "/") or word.text.rstrip("/") in ("", ".", ".."):
                return f"{shown} would remove {word.text!r}; remove the files you mean by name inside the workspace"
            if word.glob and os.path.basename(word.text.rstrip("/")) in BROAD_GLOBS:
                folder = _expanded(Word(os.path.dirname(word.text.rstrip("/")) or "."), workspace, cwd)
                bare = word.text.rstrip("/") in BROAD_GLOBS
                if bare or folder is None or folder[0] == workspace or not is_inside(workspace, folder[0]):
                    return f"{shown} would remove everything {word.text!r} matches; name what to remove"
            targets = _expanded(word, workspace, cwd)
            if targets is None:
                return f"{shown} removes {word.text!r} after a cd lynkr cannot follow; use a path from the workspace root"
            for target in targets:
                if target == workspace or not is_inside(workspace, target):
                    where = "is the workspace root" if target == workspace else f"is outside the workspace {workspace}"
                    return f"{shown} would remove {target}, which {where}; only files inside it may be removed"
                reason = self.files.path_problem(workspace, str(target), verb="write")
                if reason is not None:
                    return reason
        return None

    def _finds(self, command: Command, workspace: Path, cwd: Path | None) -> str | None:
        """``find`` that deletes (``-delete``, or ``-exec rm``) must start inside the workspace."""
        texts = [word.text for word in command.args]
        removes = "-delete" in texts or any(
            text in ("-exec", "-execdir", "-ok", "-okdir") and index + 1 < len(texts)
            and os.path.basename(texts[index + 1]) in REMOVERS
            for index, text in enumerate(texts)
        )
        if not removes:
            return None
        starts = []
        for word in command.args:
            if word.text.startswith(("-", "(", "!")):
                break
            starts.append(word)
        for word in starts or [Word(".")]:
            if not word.static:
                return f"`{command.line()}` deletes under {word.text!r}, only known when it runs; name the folder"
            found = _expanded(word, workspace, cwd)
            if found is None or any(not is_inside(workspace, path) for path in found):
                return (
                    f"`{command.line()}` would delete files under {word.text}, outside the workspace {workspace}; "
                    "start it inside the workspace"
                )
        return None

    def _writes(self, command: Command, workspace: Path, cwd: Path | None) -> str | None:
        operands = _operands(command.args)
        if command.name in WRITERS_ALL_ARGS:
            places = operands
        elif command.name in WRITERS_LAST_ARG:
            places = operands[-1:] if len(operands) > 1 else ()
        elif command.name in WRITERS_AFTER_FIRST:
            places = operands[1:]
        elif command.name == "dd":
            places = tuple(Word(w.text[3:], w.static, w.glob) for w in command.args if w.text.startswith("of="))
        else:
            return None
        for word in places:
            reason = self._write_target(word, workspace, cwd, f"`{command.line()}`")
            if reason is not None:
                return reason
        return None

    def _write_target(self, word: Word, workspace: Path, cwd: Path | None, shown: str) -> str | None:
        if word.text in SAFE_DEVICES:
            return None
        if not word.static:
            return f"{shown} writes to {word.text!r}, which is only known when it runs; name the file"
        targets = _expanded(word, workspace, cwd)
        if targets is None:
            return f"{shown} writes to {word.text!r} after a cd lynkr cannot follow; use a path from the workspace root"
        for target in targets:
            reason = self.files.path_problem(workspace, str(target), verb="write")
            if reason is not None:
                return f"{shown}: {reason}"
        return None

    def _blocked(self, word: Word, workspace: Path, cwd: Path | None, *, verb: str) -> str | None:
        if not word.static or "://" in word.text:
            return None  # only a file name written out can be matched; expansions are judged where they run
        targets = _expanded(word, workspace, cwd) or ()
        lexical = Path(os.path.normpath((cwd or workspace) / os.path.expanduser(word.text)))
        for candidate in (*targets, lexical):
            pattern = self.files.blocked.match(workspace, candidate)
            if pattern is not None:
                return (
                    f"{word.text} matches the blocked path pattern {pattern!r} (POLICY_FILE_BLOCKED_PATHS: secrets, "
                    "keys and git internals); leave it alone, and ask the user if you need something from it"
                )
        return None

    def _redirects(self, command: Command, workspace: Path, cwd: Path | None) -> str | None:
        for redirect in command.redirects:
            target = redirect.target
            if redirect.operator in ("<<", "<<-", "<<<") or (
                redirect.operator in (">&", "<&") and (target.text.isdigit() or target.text == "-")
            ):
                continue
            if redirect.operator in OUTPUT_REDIRECTS:
                reason = self._write_target(target, workspace, cwd, f"the redirection {redirect.operator} {target.text}")
            else:
                reason = self._blocked(target, workspace, cwd, verb="read")
            if reason is not None:
                return reason
        return None


def _normalised(command: Command) -> tuple[str, ...]:
    """The words rules match against: the name without its folder, and git without its global options."""
    words = (command.name, *(word.text for word in command.args))
    sub = git_subcommand(command)
    if sub is not None:
        words = ("git", sub[0], *(word.text for word in sub[1]))
    return words


def _matches(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern or len(words) < len(pattern):
        return False
    return all(fnmatch.fnmatchcase(word, glob) for word, glob in zip(words, pattern, strict=False))


def _operands(args: tuple[Word, ...]) -> tuple[Word, ...]:
    """Arguments that are not options (everything after ``--`` counts)."""
    out: list[Word] = []
    options_done = False
    for word in args:
        if not options_done and word.text == "--":
            options_done = True
        elif options_done or not word.text.startswith("-") or word.text == "-":
            out.append(word)
    return tuple(out)


def _path_arguments(command: Command) -> list[Word]:
    """Every argument that could name a file: operands, and the value of ``--option=value``."""
    out = list(_operands(command.args))
    for word in command.args:
        if word.text.startswith("-") and "=" in word.text:
            out.append(Word(word.text.split("=", 1)[1], word.static, word.glob))
    return out


def _expanded(word: Word, workspace: Path, cwd: Path | None) -> list[Path] | None:
    """The resolved paths ``word`` names (its glob expanded); None when it is relative to an unknown folder."""
    text = os.path.expanduser(word.text)
    if cwd is None and not os.path.isabs(text):
        return None
    base = cwd or workspace
    if word.glob:
        matches = []
        for match in glob.iglob(text if os.path.isabs(text) else str(base / text), include_hidden=False):
            matches.append(resolve(workspace, match))
            if len(matches) >= GLOB_EXPANSION_LIMIT:
                break
        # No match: bash passes the word through as written.
        return matches or [resolve(workspace, text, cwd=base)]
    return [resolve(workspace, text, cwd=base)]


def _changed_folder(command: Command, workspace: Path, cwd: Path | None) -> Path | None:
    operands = _operands(command.args)
    if not operands:
        return Path.home().resolve()
    word = operands[0]
    if not word.static or word.glob or word.text == "-" or cwd is None and not os.path.isabs(word.text):
        return None
    return resolve(workspace, os.path.expanduser(word.text), cwd=cwd)


async def fetch_problem(url: str, allowed_hosts: tuple[str, ...]) -> str | None:
    """Why ``url`` may not be fetched, or None: every address its host resolves to must be public.

    A host listed in ``LYNKR_WEB_FETCH_ALLOWED_HOSTS`` (by name or address) may be anything.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url} is not an http(s) URL with a host"
    host = parts.hostname.lower().rstrip(".")
    if host in {allowed.lower().rstrip(".") for allowed in allowed_hosts}:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        return f"the host {host} cannot be resolved ({exc}); check the URL"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            kind = (
                "loopback" if address.is_loopback else "link-local" if address.is_link_local
                else "private" if address.is_private else "reserved"
            )
            return (
                f"{host} resolves to {address}, a {kind} address; WebFetch reaches public addresses only "
                "(a user can allow a host with LYNKR_WEB_FETCH_ALLOWED_HOSTS)"
            )
    return None


@attrs.frozen
class NetworkPolicy:
    """``net.fetch`` goes to public addresses only, unless the host is allowed in configuration."""

    allowed_hosts: tuple[str, ...]
    name: str = "network"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind != "net.fetch":
            return None
        problem = await fetch_problem(action.url or "", self.allowed_hosts)
        return None if problem is None else Refusal(rule=self.name, reason=problem)


def file_policy(config: Config) -> FilePolicy:
    return FilePolicy(
        blocked=PathPatterns.of(config.policy.file_blocked_paths),
        allowed=PathPatterns.of(config.policy.file_allowed_paths),
    )


def command_policy(config: Config) -> CommandPolicy:
    policy = config.policy
    allow: list[str] = []
    deny: list[str] = []
    if policy.safe_commands_enabled:
        deny.extend(DEFAULT_DENY)
        tree = policy.safe_commands_config
        if isinstance(tree, list):  # a bare list is the allow list
            allow.extend(str(item) for item in tree)
        elif isinstance(tree, dict):
            allow.extend(str(item) for item in tree.get("allow", []) or [])
            deny.extend(str(item) for item in tree.get("deny", []) or [])
    return CommandPolicy(
        files=file_policy(config),
        allow=tuple(_pattern_words(item) for item in allow if item.strip()),
        deny=tuple(_pattern_words(item) for item in deny if item.strip()),
    )


def rules(config: Config) -> list[PolicyRule]:
    return [file_policy(config), command_policy(config), NetworkPolicy(config.tools.web_fetch_allowed_hosts)]

"""What a shell command line would run, command by command, so the policy can judge every one of them.

A policy that looks at the first word of a line is talked around at once: ``ls; rm -rf /``,
``echo $(git push)``, ``bash -c 'git push'``, ``env X=1 sudo /usr/bin/git push``.  This module reads a
command line the way bash would split it (sans-IO, no trio) and lists every simple command it contains:

* separated by ``;``, ``&``, ``&&``, ``||``, ``|``, ``|&`` and newlines;
* inside ``$(...)``, backticks, ``<(...)`` / ``>(...)``, ``( subshells )``, ``{ groups; }``, ``${...}``, double
  quotes and here-documents whose delimiter is unquoted;
* behind wrappers that run another command: ``sudo``, ``doas``, ``runuser``, ``env``, ``nice``, ``nohup``,
  ``timeout``, ``xargs``, ``command``, ``exec``, ``builtin``, ``time``, ``setsid``, ``stdbuf``, ``ionice``,
  ``flock``, ``watch``, ``find -exec``; the wrapper and the wrapped command are both listed;
* in the script of ``bash -c``/``sh -c`` (and zsh, dash, ksh), ``su -c``, ``flock -c``, ``trap``, git aliases
  and in ``eval``'s words, parsed in turn.

Each word knows whether its value is fixed by the text (``static``) or only known at run time (a ``$VAR``,
``$(...)``, backticks, brace expansion), and whether it holds glob characters.  Whatever cannot be judged is
reported as a problem (a command name known only at run time, a shell reading its script from a pipe, a
line bash itself could not parse), and the policy refuses the line with that reason.

It also derives the canonical git actions a line contains: ``git push`` anywhere, however disguised, is a
``git.push`` action, so the push policy governs it exactly as it governs the git tools.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from lynkr.tools.base import Action, ActionKind

_OPERATOR_CHARS = ";&|\n"
_WORD_END = " \t\n;&|<>()"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_REDIRECT = re.compile(r"(\d*|&)(>>|>&|>\||<<<|<<-|<<|<>|<&|>|<)")
_SPECIAL_PARAMETERS = set("?$!#*@-0123456789")
_KEYWORDS = frozenset({"if", "then", "else", "elif", "while", "until", "do", "!", "{", "time"})
_CLOSERS = frozenset({"fi", "done", "esac", "}"})
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "mksh", "ash", "busybox"})


class ParseError(ValueError):
    """The line is not something bash would run (an unclosed quote, an unbalanced parenthesis)."""


@attrs.frozen
class Word:
    text: str  # the value with quoting removed; expansions stay as written
    static: bool = True  # False: the value is only known at run time
    glob: bool = False  # holds unquoted *, ? or [ (bash expands it against the file system)


@attrs.frozen
class Redirect:
    operator: str  # ">", ">>", "<", "&>", ">&", ...
    target: Word


@attrs.frozen
class Command:
    """One simple command: its words (the first is what runs), its redirections, and what wraps it."""

    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...] = ()
    assignments: tuple[str, ...] = ()
    via: tuple[str, ...] = ()  # the wrappers it runs under, outermost first ("sudo", "bash -c", "$(...)")

    @property
    def name(self) -> str:
        """The command's name as it would be looked up: ``/usr/bin/git`` and ``git`` are both ``git``."""
        return os.path.basename(self.words[0].text) if self.words else ""

    @property
    def args(self) -> tuple[Word, ...]:
        return self.words[1:]

    def line(self) -> str:
        return " ".join(word.text for word in self.words)


@attrs.frozen
class Analysis:
    commands: tuple[Command, ...]
    problems: tuple[str, ...]  # why (part of) the line cannot be judged; empty when everything could be


# --- splitting one line into simple commands -----------------------------------------------------------------------


class _Splitter:
    """A single pass over the text; nested constructs are split by recursive calls that share ``found``."""

    def __init__(self, text: str, found: list[Command], via: tuple[str, ...]) -> None:
        self.text = text
        self.pos = 0
        self.found = found
        self.via = via
        self.heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, quoted, strip tabs) awaiting a newline

    def split(self, closer: str | None = None) -> None:
        words: list[Word] = []
        redirects: list[Redirect] = []
        assignments: list[str] = []

        def flush() -> None:
            if words or redirects:
                self.found.append(
                    Command(words=tuple(words), redirects=tuple(redirects), assignments=tuple(assignments), via=self.via)
                )
            words.clear()
            redirects.clear()
            assignments.clear()

        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if closer is not None and char == closer:
                self.pos += 1
                flush()
                return
            if char in " \t":
                self.pos += 1
            elif char == "\\" and text.startswith("\\\n", self.pos):
                self.pos += 2
            elif char == "#" and self._at_word_start():
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif char in _OPERATOR_CHARS and not text.startswith("&>", self.pos):
                flush()
                self.pos += 1
                if char == "\n" and self.heredocs:
                    self._skip_heredoc_bodies()
            elif char == "(":
                self.pos += 1
                if words:  # "name() { ...; }": a function definition; its body follows as commands
                    if text[self.pos :].lstrip().startswith(")"):
                        self.pos = text.index(")", self.pos) + 1
                        words.clear()
                        continue
                    raise ParseError("an unexpected '(' in the middle of a command")
                if text.startswith("(", self.pos):  # (( arithmetic ))
                    self._skip_balanced("((", "))", self.pos - 1)
                    continue
                self._nested(")", "( subshell )")
            elif char == ")":
                raise ParseError("a ')' without its '('")
            elif (match := _REDIRECT.match(text, self.pos)) and (match.group(1) == "" or self._at_word_start()):
                if match.group(1) == "&" and match.group(2) not in (">", ">>"):
                    raise ParseError(f"unexpected {match.group(0)!r}")
                self.pos = match.end()
                operator = match.group(1).lstrip("0123456789") + match.group(2)
                self._skip_blanks()
                if self.pos < len(text) and text[self.pos] == "(" and operator in ("<", ">"):
                    self.pos += 1  # process substitution <(...) as an argument
                    self._nested(")", f"{operator}(...)")
                    words.append(Word(text=f"{operator}(...)", static=False))
                    continue
                target = self._word()
                if operator in ("<<", "<<-"):
                    quoted = any(q in text[match.end() : self.pos] for q in "'\"\\")
                    self.heredocs.append((target.text, quoted, operator == "<<-"))
                redirects.append(Redirect(operator=operator, target=target))
            else:
                word = self._word()
                if not words and _ASSIGNMENT.match(word.text):
                    assignments.append(word.text)
                elif not words and word.static and word.text in _KEYWORDS:
                    continue
                elif not words and word.static and word.text in _CLOSERS:
                    continue
                else:
                    words.append(word)
                    if words[0].text in ("for", "select", "case") and words[0].static:
                        self._skip_clause(words[0].text)
                        words.clear()
        if closer is not None:
            raise ParseError(f"a missing {closer!r}")
        flush()

    def _at_word_start(self) -> bool:
        return self.pos == 0 or self.text[self.pos - 1] in " \t\n;&|()"

    def _skip_blanks(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def _nested(self, closer: str, how: str) -> None:
        inner = _Splitter(self.text, self.found, (*self.via, how))
        inner.pos = self.pos
        inner.split(closer)
        self.pos = inner.pos

    def _skip_clause(self, keyword: str) -> None:
        """``for x in a b; do``, ``select``: the words up to ``do`` are a list, not a command.  ``case`` is refused."""
        if keyword == "case":
            raise ParseError("case statements are not judged; write the commands out without case")
        match = re.compile(r"[;\n]\s*do\b|\bdo\b").search(self.text, self.pos)
        if match is None:
            raise ParseError(f"a {keyword} loop without do")
        # Anything expanded in the list ($(...)) still runs: split it.
        list_text = self.text[self.pos : match.start()]
        for substitution in _substitutions(list_text):
            _Splitter(substitution, self.found, (*self.via, "$(...)")).split()
        self.pos = match.end()

    def _skip_balanced(self, opener: str, closer: str, start: int) -> None:
        depth, index = 0, start
        while index < len(self.text):
            if self.text.startswith(opener, index):
                depth += 1
                index += len(opener)
            elif self.text.startswith(closer, index):
                depth -= 1
                index += len(closer)
                if depth == 0:
                    # What it expands ($(...)) still runs.
                    for substitution in _substitutions(self.text[start:index]):
                        _Splitter(substitution, self.found, (*self.via, "$(...)")).split()
                    self.pos = index
                    return
            else:
                index += 1
        raise ParseError(f"a missing {closer!r}")

    def _skip_heredoc_bodies(self) -> None:
        for delimiter, quoted, strip_tabs in self.heredocs:
            body: list[str] = []
            while True:
                if self.pos >= len(self.text):
                    break  # bash warns and ends the document at the end of input
                end = self.text.find("\n", self.pos)
                line = self.text[self.pos : len(self.text) if end < 0 else end]
                self.pos = len(self.text) if end < 0 else end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                body.append(line)
            if not quoted:
                for substitution in _substitutions("\n".join(body)):
                    _Splitter(substitution, self.found, (*self.via, "here-document")).split()
        self.heredocs.clear()

    # -- words --

    def _word(self) -> Word:
        text = self.text
        out: list[str] = []
        static, glob = True, False
        start = self.pos
        while self.pos < len(text):
            char = text[self.pos]
            if char in _WORD_END:
                break
            if char == "\\":
                if self.pos + 1 < len(text):
                    out.append(text[self.pos + 1])
                self.pos += 2
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ParseError("an unclosed single quote")
                out.append(text[self.pos + 1 : end])
                self.pos = end + 1
            elif char == '"':
                static &= self._double_quoted(out)
            elif char == "$":
                static &= self._dollar(out)
            elif char == "`":
                self._backticks(out)
                static = False
            elif char in "*?[":
                glob = True
                out.append(char)
                self.pos += 1
            elif char == "{" and self._brace_expansion():
                static = False
                out.append(char)
                self.pos += 1
            else:
                out.append(char)
                self.pos += 1
        if self.pos == start:
            raise ParseError(f"unexpected {text[self.pos]!r}" if self.pos < len(text) else "a missing word")
        return Word(text="".join(out), static=static, glob=glob)

    def _brace_expansion(self) -> bool:
        """Whether the ``{`` at ``pos`` opens ``{a,b}`` or ``{1..3}`` (which bash expands into several words)."""
        depth, index = 0, self.pos
        while index < len(self.text) and self.text[index] not in " \t\n;&|<>()":
            if self.text[index] == "{":
                depth += 1
            elif self.text[index] == "}":
                depth -= 1
                if depth == 0:
                    inner = self.text[self.pos + 1 : index]
                    return "," in inner or ".." in inner
            index += 1
        return False

    def _double_quoted(self, out: list[str]) -> bool:
        text = self.text
        self.pos += 1
        static = True
        while self.pos < len(text):
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return static
            if char == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '$`"\\\n':
                out.append(text[self.pos + 1])
                self.pos += 2
            elif char == "$":
                static &= self._dollar(out)
            elif char == "`":
                self._backticks(out)
                static = False
            else:
                out.append(char)
                self.pos += 1
        raise ParseError("an unclosed double quote")

    def _dollar(self, out: list[str]) -> bool:
        """Consume an expansion at ``pos`` (recording commands it runs); False when its value is dynamic."""
        text = self.text
        following = text[self.pos + 1 : self.pos + 2]
        if text.startswith("$((", self.pos):
            begin = self.pos
            self._skip_balanced("((", "))", self.pos + 1)
            out.append(text[begin : self.pos])
            return False
        if following == "(":
            self.pos += 2
            self._nested(")", "$(...)")
            out.append("$(...)")
            return False
        if following == "{":
            end = _matching_brace(text, self.pos + 1)
            inner = text[self.pos + 2 : end]
            for substitution in _substitutions(inner):
                _Splitter(substitution, self.found, (*self.via, "${...}")).split()
            out.append(text[self.pos : end + 1])
            self.pos = end + 1
            return False
        if following == "'":  # $'...' ANSI-C quoting: escapes make its value hard to read; treat it as dynamic
            end = self.pos + 2
            while end < len(text) and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise ParseError("an unclosed $'...' quote")
            out.append(text[self.pos : end + 1])
            self.pos = end + 1
            return False
        if following and following in _SPECIAL_PARAMETERS:
            out.append(text[self.pos : self.pos + 2])
            self.pos += 2
            return False
        name = _NAME.match(text, self.pos + 1)
        if name:
            out.append(text[self.pos : name.end()])
            self.pos = name.end()
            return False
        out.append("$")
        self.pos += 1
        return True

    def _backticks(self, out: list[str]) -> None:
        text = self.text
        index = self.pos + 1
        inner: list[str] = []
        while index < len(text) and text[index] != "`":
            if text[index] == "\\" and index + 1 < len(text):
                inner.append(text[index + 1] if text[index + 1] in "$`\\" else text[index : index + 2])
                index += 2
            else:
                inner.append(text[index])
                index += 1
        if index >= len(text):
            raise ParseError("an unclosed backtick")
        _Splitter("".join(inner), self.found, (*self.via, "`...`")).split()
        out.append("`...`")
        self.pos = index + 1


def _matching_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ParseError("an unclosed ${")


def _substitutions(text: str) -> Iterator[str]:
    """The command texts of every ``$(...)`` and backtick substitution in ``text`` (a here-document, ``${...}``)."""
    index = 0
    while index < len(text):
        if text.startswith("$(", index) and not text.startswith("$((", index):
            depth, end = 0, index + 1
            while end < len(text):
                if text[end] == "(":
                    depth += 1
                elif text[end] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                end += 1
            if end >= len(text):
                raise ParseError("an unclosed $(")
            yield text[index + 2 : end]
            index = end + 1
        elif text[index] == "`":
            end = text.find("`", index + 1)
            if end < 0:
                raise ParseError("an unclosed backtick")
            yield text[index + 1 : end]
            index = end + 1
        else:
            index += 1


def split(line: str, *, via: tuple[str, ...] = ()) -> list[Command]:
    """Every simple command of ``line`` as written (wrappers not yet looked through)."""
    found: list[Command] = []
    _Splitter(line, found, via).split()
    return found


# --- looking through wrappers --------------------------------------------------------------------------------------

# For each wrapper: options that take a value, and how many plain words come before the wrapped command.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset({"-u", "-g", "-C", "-h", "-p", "-D", "-r", "-t", "-U", "-T", "--user", "--group"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "nohup": (frozenset(), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "command": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "builtin": (frozenset(), 0),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-t", "--class", "--classdata"}), 0),
    "chrt": (frozenset(), 1),
    "taskset": (frozenset(), 1),
    "flock": (frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}), 1),
    "watch": (frozenset({"-n", "-d", "--interval", "--differences"}), 0),
    "xargs": (
        frozenset({"-n", "-I", "-L", "-P", "-d", "-E", "-s", "-a", "--max-args", "--max-procs", "--delimiter",
                   "--arg-file", "--replace", "--max-lines", "--eof", "--max-chars"}),
        0,
    ),
    "unbuffer": (frozenset(), 0),
    "runuser": (frozenset({"-u", "-g", "-G", "--user", "--group", "--supp-group"}), 0),
    "caffeinate": (frozenset({"-t", "-w"}), 0),
}


def _after_options(args: Sequence[Word], takes_value: frozenset[str], positional: int) -> tuple[Word, ...]:
    """The wrapped command's words: options skipped (``-u root`` is two words, ``-n5`` and ``--user=root`` one),
    then ``positional`` plain words (``timeout``'s duration)."""
    index = 0
    while index < len(args):
        text = args[index].text
        if text == "--":
            index += 1
            break
        if not text.startswith("-") or text == "-":
            break
        name = text.split("=", 1)[0]
        index += 2 if name in takes_value and "=" not in text else 1
    return tuple(args[index + positional :])


def _env_rest(args: Sequence[Word]) -> tuple[tuple[Word, ...], str | None]:
    """``env``'s wrapped command, and the string of ``env -S`` (split like a command line) if there is one."""
    index = 0
    while index < len(args):
        text = args[index].text
        if text in ("-u", "--unset", "-C", "--chdir"):
            index += 2
        elif text in ("-S", "--split-string") and index + 1 < len(args):
            return tuple(args[index + 2 :]), args[index + 1].text
        elif text.startswith("-S") and len(text) > 2:
            return tuple(args[index + 1 :]), text[2:]
        elif text.startswith("-") or _ASSIGNMENT.match(text):
            index += 1
        else:
            break
    return tuple(args[index:]), None


def _find_exec(args: Sequence[Word]) -> Iterator[tuple[Word, ...]]:
    for index, word in enumerate(args):
        if word.text in ("-exec", "-execdir", "-ok", "-okdir"):
            inner = []
            for follower in args[index + 1 :]:
                if follower.text in (";", "+"):
                    break
                inner.append(follower)
            if inner:
                yield tuple(inner)


def _shell_script(command: Command) -> tuple[Word | None, bool]:
    """For ``bash -c SCRIPT``: (the script word, True).  For a shell with no -c and no script file: (None, True)
    (it reads commands from stdin).  Anything else (``bash script.sh``): (None, False)."""
    args = command.args
    if command.name == "busybox":
        if not args or os.path.basename(args[0].text) not in SHELLS - {"busybox"}:
            return None, False
        args = args[1:]
    index = 0
    while index < len(args):
        text = args[index].text
        if text == "--":
            index += 1
            break
        if text.startswith("-") and not text.startswith("--") and "c" in text[1:]:
            script = next((word for word in args[index + 1 :] if not word.text.startswith("-")), None)
            return (script if script is not None else Word(text="", static=False)), True
        if text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 2
        elif text.startswith(("-", "+")):
            index += 1
        else:
            break
    if index < len(args) and args[index].text != "-s" and not args[index].static:
        # bash <(curl ...), bash "$SCRIPT": the script file is only known when it runs.
        return Word(text=args[index].text, static=False), True
    reads_stdin = index >= len(args) or args[index].text == "-s"
    return None, reads_stdin


def _dash_c_script(args: Sequence[Word]) -> Word | None:
    """The ``-c SCRIPT`` of ``su``, ``runuser`` and ``flock``, if it is there."""
    for index, word in enumerate(args[:-1]):
        if word.text in ("-c", "--command"):
            return args[index + 1]
        if word.text.startswith("--command="):
            return Word(word.text.split("=", 1)[1], word.static, word.glob)
    return None


def analyse(line: str) -> Analysis:
    """Every command ``line`` would run, wrappers and nested scripts looked through, and what cannot be judged."""
    problems: list[str] = []
    try:
        pending = split(line)
    except ParseError as exc:
        return Analysis(commands=(), problems=(f"the command line cannot be parsed ({exc})",))
    commands: list[Command] = []
    budget = 500  # nesting such as bash -c "bash -c ..." is followed this far, then refused
    while pending:
        budget -= 1
        if budget < 0:
            problems.append("the command line nests too deeply to be judged")
            break
        command = pending.pop(0)
        if not command.words:
            commands.append(command)
            continue
        commands.append(command)
        first = command.words[0]
        if not first.static:
            problems.append(
                f"the command name {first.text!r} is only known when it runs ({_where(command)}), so it cannot be "
                "judged; write the command name out"
            )
            continue
        pending[0:0] = _inner(command, problems)
    return Analysis(commands=tuple(commands), problems=tuple(problems))


def _where(command: Command) -> str:
    return "inside " + " → ".join(command.via) if command.via else "at the top level"


def _inner(command: Command, problems: list[str]) -> list[Command]:
    """The commands that ``command`` itself runs, as a wrapper, a shell or eval."""
    name = command.name
    wrapped_via = (*command.via, name)

    def wrapped(words: Sequence[Word]) -> list[Command]:
        # "sudo { rm ...": bash would not run it, but judge the words after the keyword rather than "{".
        while words and words[0].static and words[0].text in _KEYWORDS | _CLOSERS:
            words = words[1:]
        return [Command(words=tuple(words), via=wrapped_via)] if words else []

    def script(text: Word, how: str) -> list[Command]:
        if not text.static:
            problems.append(f"the script of {how} is only known when it runs, so it cannot be judged")
            return []
        try:
            return split(text.text, via=(*command.via, how))
        except ParseError as exc:
            problems.append(f"the script of {how} cannot be parsed ({exc})")
            return []

    if name in ("flock", "runuser") and (dash_c := _dash_c_script(command.args)) is not None:
        return script(dash_c, f"{name} -c")
    if name in _WRAPPERS:
        takes_value, positional = _WRAPPERS[name]
        rest = _after_options(command.args, takes_value, positional)
        if name in ("command", "builtin") and command.args and command.args[0].text in ("-v", "-V"):
            return []
        if name == "watch" and rest:
            return script(Word(text=" ".join(w.text for w in rest), static=all(w.static for w in rest)), "watch")
        if name == "xargs" and not rest:
            return []  # xargs alone runs echo
        return wrapped(rest)
    if name == "env":
        rest, split_string = _env_rest(command.args)
        inner = wrapped(rest)
        if split_string is not None:
            inner += script(Word(text=split_string), "env -S")
        return inner
    if name == "eval":
        return script(Word(text=" ".join(w.text for w in command.args), static=all(w.static for w in command.args)), "eval")
    if name == "trap" and command.args and not command.args[0].text.startswith("-"):
        return script(command.args[0], "trap")  # the handler runs later, in this same shell
    if name in ("source", ".") and command.args and not command.args[0].static:
        problems.append(f"{name} {command.args[0].text} runs a script only known when it runs, which cannot be judged")
        return []
    if name == "su" and (dash_c := _dash_c_script(command.args)) is not None:
        return script(dash_c, "su -c")
    if name in SHELLS:
        script_word, judged_here = _shell_script(command)
        if script_word is not None:
            inline = any(w.text.startswith("-") and not w.text.startswith("--") and "c" in w.text[1:] for w in command.args)
            return script(script_word, f"{name} -c" if inline else f"{name} {script_word.text}")
        if judged_here:
            problems.append(f"{name} would read its commands from its input, which cannot be judged; use {name} -c")
        return []
    if name == "find":
        return [Command(words=words, via=wrapped_via) for words in _find_exec(command.args)]
    if name == "git":
        return _git_alias_runs(command, problems)
    return []


# --- canonical actions ---------------------------------------------------------------------------------------------

_GIT_OPTIONS_WITH_VALUE = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--super-prefix", "--exec-path"}
)
_GIT_ACTION_KINDS: dict[str, ActionKind] = {"push": "git.push", "pull": "git.pull", "commit": "git.commit"}


def git_subcommand(command: Command) -> tuple[str, tuple[Word, ...]] | None:
    """``(subcommand, its arguments)`` of a ``git`` command, global options skipped; None when not git."""
    if command.name != "git":
        return None
    args = command.args
    index = 0
    while index < len(args):
        text = args[index].text
        if not text.startswith("-"):
            return text, tuple(args[index + 1 :])
        index += 2 if text in _GIT_OPTIONS_WITH_VALUE else 1
    return None


def _git_inline_aliases(command: Command) -> dict[str, str]:
    """``git -c alias.NAME=VALUE ...``: the aliases defined for this one command."""
    aliases = {}
    words = [word.text for word in command.args]
    for index, text in enumerate(words[:-1]):
        if text == "-c" and words[index + 1].startswith("alias.") and "=" in words[index + 1]:
            name, value = words[index + 1][len("alias.") :].split("=", 1)
            aliases[name] = value
    return aliases


def _git_alias_runs(command: Command, problems: list[str]) -> list[Command]:
    """What a git alias would run: used by ``git -c alias.x=... x`` and by ``git config alias.x ...``, which is
    judged as if the alias ran (defining an alias for push is a way to push)."""
    sub = git_subcommand(command)
    if sub is None:
        return []
    name, rest = sub
    value: str | None = _git_inline_aliases(command).get(name)
    if value is None and name == "config":
        plain = [word.text for word in rest if not word.text.startswith("-")]
        if len(plain) >= 2 and plain[0].startswith("alias."):
            value, rest = plain[1], ()
    if value is None:
        return []
    via = (*command.via, "git alias")
    try:
        if value.startswith("!"):
            return split(value[1:], via=via)
        return [Command(words=(Word("git"), *(Word(part) for part in split_words(value)), *rest), via=via)]
    except ParseError as exc:
        problems.append(f"the git alias {value!r} cannot be parsed ({exc})")
        return []


def split_words(text: str) -> list[str]:
    """The words of one simple command written in ``text`` (quotes removed)."""
    commands = split(text)
    return [word.text for command in commands[:1] for word in command.words]


def _git_kind(sub: tuple[str, tuple[Word, ...]]) -> ActionKind | None:
    name, rest = sub
    if name in ("subtree", "lfs") and rest and rest[0].text == "push":
        return "git.push"
    if name == "send-pack":
        return "git.push"
    return _GIT_ACTION_KINDS.get(name)


def _commit_message(args: Sequence[Word]) -> str | None:
    for index, word in enumerate(args):
        if word.text in ("-m", "--message") and index + 1 < len(args):
            return args[index + 1].text
        if word.text.startswith("--message="):
            return word.text.split("=", 1)[1]
        if word.text.startswith("-m") and len(word.text) > 2 and not word.text.startswith("--"):
            return word.text[2:]
    return None


def shell_actions(command: str, *, cwd: object = None, session_cwd: bool = False) -> list[Action]:
    """The canonical actions of a shell call: one ``shell`` action, plus a git action per git push/pull/commit.

    ``cwd`` is the folder the call names; ``session_cwd`` says the line runs where the session's previous
    ``Bash`` call ended (the policy looks that folder up in the tool state).
    """
    detail: dict[str, Any] = {} if cwd in (None, "") else {"cwd": str(cwd)}
    if session_cwd:
        detail["session_cwd"] = True
    actions = [Action(kind="shell", command=command, detail=detail)]
    for found in analyse(command).commands:
        sub = git_subcommand(found)
        kind = None if sub is None else _git_kind(sub)
        if sub is None or kind is None:
            continue
        git_detail: dict[str, Any] = {"via": "shell", "command": found.line(), **detail}
        if kind == "git.commit":
            message = _commit_message(sub[1])
            if message is not None:
                git_detail["message"] = message
        actions.append(Action(kind=kind, command=found.line(), detail=git_detail))
    return actions

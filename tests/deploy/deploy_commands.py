"""The command lines of acs-server, acs-worker and acs written in the deploy files and
in docs/deploy.md, as argument lists, each with the place it was found."""
import json
import os
import re
import shlex

PROGRAMS = ("acs-server", "acs-worker", "acs")
# Shell words that end a command.
_SEPARATORS = {"|", "||", "&", "&&", ";", "(", ")", ">", ">>", "<", "2>&1", "2>", "`"}


class Command:
    def __init__(self, argv, where):
        self.argv = argv  # argv[0] is the program's base name
        self.where = where

    @property
    def program(self):
        return self.argv[0]

    def flags(self):
        """The --flags, without values after '='."""
        return [a.split("=", 1)[0] for a in self.argv[1:] if a.startswith("--")]


def _program(word):
    """The program a word names: acs-server, acs-worker, acs or a path to one in a bin
    dir."""
    for p in PROGRAMS:
        if word == p or word.endswith("/bin/" + p):
            return p
    return None


def _acs_command(previous, following):
    """Whether the word acs between these two starts a command (`acs campaign run ...`),
    not a user's name (`sudo -u acs ...`, `install -o acs -g acs ...`, `... nologin acs`):
    a command word follows, and no option precedes."""
    return following is not None and re.fullmatch(r"[a-z][a-z-]*", following) is not None \
        and not (previous or "").startswith("-")


def _from_argv(argv, where):
    """The commands in one argument list. A program name followed by nothing, or by
    another program name (`docker compose exec acs-server acs-server ...`), names a
    service or a unit, not a command."""
    out = []
    for i, word in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        if _program(word) == "acs" and not _acs_command(argv[i - 1] if i else None, following):
            continue
        if _program(word) and following is not None and not _program(following) \
                and following not in _SEPARATORS:
            rest = []
            for w in argv[i + 1:]:
                if w in _SEPARATORS:
                    break
                rest.append(w)
            out.append(Command([_program(word)] + rest, where))
    return out


def from_shell_line(line, where):
    """The commands in one line of shell (or of a systemd ExecStart)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unterminated quote: not a command line
        return []
    out = []
    start = 0
    for i, w in enumerate(words + [";"]):
        if w in _SEPARATORS or set(w) <= set("|&;()<>"):
            out += _from_argv(words[start:i], where)
            start = i + 1
    return out


def _logical_lines(text):
    """Lines with backslash continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def from_shell_text(text, where):
    out = []
    for n, line in enumerate(_logical_lines(text), 1):
        out += from_shell_line(line, f"{where}:{n}")
    return out


def from_dockerfile(text, where, comments=False):
    """CMD and ENTRYPOINT (exec or shell form); RUN lines only build. comments: the
    example command lines of the comments instead (indented: `#   docker run ...`)."""
    out = []
    for n, line in enumerate(_logical_lines(text), 1):
        if comments:
            if re.match(r"#\s{2,}\S", line):
                out += from_shell_line(line[1:], f"{where}:{n}")
            continue
        m = re.match(r"\s*(CMD|ENTRYPOINT)\s+(.*)$", line)
        if not m:
            continue
        body = m.group(2).strip()
        if body.startswith("["):
            out += _from_argv(json.loads(body), f"{where}:{n}")
        else:
            out += from_shell_line(body, f"{where}:{n}")
    return out


def from_systemd_unit(text, where):
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*Exec\w+=\s*[-@:+!]*(.*)$", line)
        if m:
            out += from_shell_line(m.group(1), f"{where}:{n}")
    return out


def _containers(doc):
    """Containers of a Kubernetes workload or a compose-like dict, at any depth."""
    if isinstance(doc, dict):
        for key in ("containers", "initContainers"):
            for c in doc.get(key) or []:
                yield c
        for v in doc.values():
            yield from _containers(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _containers(v)


def _argv_of(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else shlex.split(value)


def from_k8s_docs(docs, where):
    out = []
    for doc in docs:
        name = (doc or {}).get("metadata", {}).get("name", "?")
        for c in _containers(doc):
            argv = _argv_of(c.get("command")) + _argv_of(c.get("args"))
            cmds = _from_argv(argv, f"{where} {name}/{c.get('name')}")
            # A shell wrapper: sh -c 'SCRIPT'.
            if not cmds and len(argv) >= 3 and argv[1] == "-c":
                cmds = from_shell_text(argv[2], f"{where} {name}/{c.get('name')}")
            out += cmds
    return out


def from_compose(compose, where):
    out = []
    for name, service in (compose.get("services") or {}).items():
        argv = _argv_of(service.get("entrypoint")) + _argv_of(service.get("command"))
        out += _from_argv(argv, f"{where} {name}")
    return out


def from_markdown(text, where):
    """Commands in fenced code blocks and in `inline code`."""
    out = []
    in_block = False
    for n, line in enumerate(_logical_lines(text), 1):
        if line.strip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            out += from_shell_line(line, f"{where}:{n}")
        else:
            for code in re.findall(r"`([^`]+)`", line):
                out += from_shell_line(code, f"{where}:{n}")
    return out


def _inline_code(text):
    """The `inline code` spans outside fenced blocks."""
    in_block = False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_block = not in_block
        elif not in_block:
            yield from re.findall(r"`([^`]+)`", line)


def bare_flags_in_markdown(text):
    """Flags mentioned alone in `inline code` (`--tls-ca`, `--max-jobs`)."""
    return {code.split()[0] for code in _inline_code(text) if re.fullmatch(r"--[a-z][a-z0-9-]*", code.split()[0])}


def read(path):
    with open(path) as f:
        return f.read()


def flag_value(argv, flag):
    """The value after `flag` in argv; AssertionError when absent."""
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


def port_of(address):
    return int(address.rsplit(":", 1)[1])

"""Reading a CodeBuild project's inline buildspec (``source.buildspec`` holding YAML).

Shared by ``codebuild-privileged-only-for-image-builds`` (does it build images?) and
``account-local-secrets`` (its ``env`` section). Parsing is lenient: a buildspec is YAML, but
one that YAML refuses (an unquoted ``: `` in a command, a tab) is still scanned line by line
for its ``env`` section, since CodeBuild users write those by hand.
"""

from __future__ import annotations

import re

import yaml

ENV_SECTIONS = ("variables", "parameter-store", "secrets-manager")

_ENV_RE = re.compile(r"^env\s*:", re.M)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENTRY_RE = re.compile(r"""^(?P<key>"[^"]*"|'[^']*'|[^\s:#][^:]*?)\s*:(?:\s+(?P<value>.*))?$""")


def is_inline_buildspec(buildspec: str) -> bool:
    """True when ``buildspec`` is YAML text rather than a path to a buildspec file."""
    return "\n" in buildspec or "phases" in buildspec or "version:" in buildspec


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _scalar(node: yaml.Node) -> str | None:
    """A scalar's text as CodeBuild sees it (``""`` for null); ``None`` for a list/map."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag == "tag:yaml.org,2002:null":
        return ""
    return str(node.value)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _scan_env(text: str) -> dict[str, list[tuple[str, str]]]:
    """The ``env`` section of a buildspec YAML refused, read line by line."""
    out: dict[str, list[tuple[str, str]]] = {}
    in_env = False
    section: str | None = None
    section_indent = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _indent(line)
        if indent == 0:
            in_env = bool(_ENV_RE.match(line))
            section = None
            continue
        if not in_env:
            continue
        if section is not None and indent > section_indent:
            match = _ENTRY_RE.match(stripped)
            if match:
                value = _unquote(match.group("value") or "")
                out[section].append((_unquote(match.group("key")), value))
            continue
        name = stripped.split(":", 1)[0].strip()
        section = name if name in ENV_SECTIONS and stripped.endswith(":") else None
        section_indent = indent
        if section is not None:
            out.setdefault(section, [])
    return out


def buildspec_env(buildspec: str) -> dict[str, list[tuple[str, str]]]:
    """``{section: [(name, value), ...]}`` for the ``env`` sections of an inline buildspec
    (``variables``, ``parameter-store``, ``secrets-manager``); ``{}`` when it has none.
    Values are the scalars' text (``true`` for a YAML boolean, ``""`` for null)."""
    if "env" not in buildspec:
        return {}  # cheap: most buildspecs are skipped without parsing
    try:
        # compose, not load: the C parser builds the node tree and only env is converted
        # (constructing every command of every phase in Python is most of the cost)
        document = yaml.compose(buildspec, Loader=_LOADER)
    except yaml.YAMLError:
        return _scan_env(buildspec)
    env = _child(document, "env")
    out: dict[str, list[tuple[str, str]]] = {}
    for section in ENV_SECTIONS:
        entries = _child(env, section)
        if not isinstance(entries, yaml.MappingNode):
            continue
        pairs: list[tuple[str, str]] = []
        for key, value in entries.value:
            name, text = _scalar(key), _scalar(value)
            if name is not None and text is not None:
                pairs.append((name, text))
        out[section] = pairs
    return out

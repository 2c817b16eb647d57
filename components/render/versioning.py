"""The image tag scheme: one implementation, shared by the image component and the buildspec.

A release tag is ``<SemVer>-build.<N>-git.<sha12>`` (or ``<SemVer>.build.<N>-git.<sha12>``
when the version already carries a pre-release), e.g. ``1.8.0-build.247-git.a1b2c3d4e5f6``.
The whole tag is itself a valid SemVer 2.0 version (the build and commit live in the
pre-release part because ``+`` is not allowed in an OCI tag) and a valid OCI tag
(``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``). ``latest`` is never produced and never accepted.

:func:`image_tag` computes a tag in Python (the image component, the offline preview);
:func:`shell_function` renders the same scheme as a POSIX shell function for the buildspec,
and the test suite checks that both agree for any input.
"""

from __future__ import annotations

import re

# SemVer 2.0.0, the regular expression published at semver.org (named groups dropped).
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
OCI_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
GIT_SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
SHA_LENGTH = 12
MAX_TAG_LENGTH = 128
MAX_BUILD_NUMBER = 10**9 - 1
# Longest suffix: "-build." + 9 digits + "-git." + 12 hex characters.
_MAX_SUFFIX = len("-build.") + len(str(MAX_BUILD_NUMBER)) + len("-git.") + SHA_LENGTH
MAX_VERSION_LENGTH = MAX_TAG_LENGTH - _MAX_SUFFIX
FORBIDDEN_TAGS = frozenset({"latest"})


class TagError(ValueError):
    """A version, build number or commit that cannot make a release tag."""


def validate_version(version: str) -> str:
    """Return ``version`` if it is a SemVer 2.0 version usable in a release tag, else raise."""
    text = version.strip()
    if text.lower() in FORBIDDEN_TAGS:
        raise TagError(f"{text!r} is not allowed: release tags are SemVer, never 'latest'")
    if not SEMVER_RE.match(text):
        raise TagError(f"{text!r} is not a SemVer 2.0 version (for example 1.8.0 or 2.0.0-rc.1)")
    if "+" in text:
        raise TagError(
            f"{text!r} carries build metadata ('+…'), which an OCI tag cannot hold; "
            "the build number and commit are appended by the tag scheme"
        )
    if len(text) > MAX_VERSION_LENGTH:
        raise TagError(f"{text!r} is longer than {MAX_VERSION_LENGTH} characters")
    return text


def image_tag(version: str, build_number: int, git_sha: str) -> str:
    """The release tag for ``version`` built as build ``build_number`` from ``git_sha``."""
    validate_version(version)
    if not 0 <= build_number <= MAX_BUILD_NUMBER:
        raise TagError(f"build number {build_number} is outside 0..{MAX_BUILD_NUMBER}")
    sha = git_sha.strip().lower()
    if not GIT_SHA_RE.match(sha):
        raise TagError(f"{git_sha!r} is not a git commit id (7 to 40 hex characters)")
    separator = "." if "-" in version else "-"
    return f"{version}{separator}build.{build_number}-git.{sha[:SHA_LENGTH]}"


def is_valid_oci_tag(tag: str) -> bool:
    """True when ``tag`` is a valid OCI/Docker tag."""
    return bool(OCI_TAG_RE.match(tag))


def shell_function(name: str = "release_tag") -> str:
    """The same scheme as a POSIX shell function: ``release_tag VERSION BUILD SHA``.

    It prints the tag, or prints an error to stderr and returns 1 for a version that is not
    SemVer, a build number that is not a number, or a commit id that is not hex.
    """
    semver = SEMVER_RE.pattern.replace("\\d", "[0-9]")
    # POSIX ERE has no non-capturing groups.
    semver_ere = semver.replace("(?:", "(")
    return (
        f"{name}() {{\n"
        "  _v=\"$1\"; _b=\"$2\"; _s=$(printf '%s' \"$3\" | tr 'A-F' 'a-f')\n"
        f"  if ! printf '%s\\n' \"$_v\" | grep -Eq '{semver_ere}' "
        '|| [ "$_v" = latest ]; then\n'
        '    echo "not a SemVer version: $_v" >&2; return 1\n'
        "  fi\n"
        '  case "$_v" in *+*) echo "build metadata not allowed: $_v" >&2; return 1;; esac\n'
        f'  if [ "${{#_v}}" -gt {MAX_VERSION_LENGTH} ]; then '
        'echo "version too long: $_v" >&2; return 1; fi\n'
        f"  if ! printf '%s\\n' \"$_b\" | grep -Eq '^(0|[1-9][0-9]{{0,8}})$'; then\n"
        '    echo "not a build number: $_b" >&2; return 1\n'
        "  fi\n"
        "  if ! printf '%s\\n' \"$_s\" | grep -Eq '^[0-9a-f]{7,40}$'; then\n"
        '    echo "not a git commit id: $3" >&2; return 1\n'
        "  fi\n"
        '  case "$_v" in *-*) _sep=".";; *) _sep="-";; esac\n'
        f'  printf \'%s%sbuild.%s-git.%s\\n\' "$_v" "$_sep" "$_b" '
        f'"$(printf \'%s\' "$_s" | cut -c1-{SHA_LENGTH})"\n'
        "}\n"
    )

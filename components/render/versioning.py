"""The image tag scheme: one implementation, shared by the image component and the buildspec.

A release tag is ``<SemVer>-build.<N>-git.<sha12>`` (or ``<SemVer>.build.<N>-git.<sha12>``
when the version already carries a pre-release), e.g. ``1.8.0-build.247-git.a1b2c3d4e5f6``.
The whole tag is itself a valid SemVer 2.0 version (the build and commit live in the
pre-release part because ``+`` is not allowed in an OCI tag) and a valid OCI tag
(``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``). ``latest`` is never produced and never accepted.
A commit abbreviation that is all digits with a leading zero (no valid SemVer identifier) is
written with git-describe's ``g`` prefix: ``1.8.0-build.3-git.g012345678901``.

Nothing is trimmed: a version or commit with whitespace is refused (the value validated is the
value tagged), digits and letters are ASCII only, and the build number is an ``int``, not a
``bool``.

:func:`image_tag` computes a tag in Python (the image component, the offline preview);
:func:`shell_function` renders the same scheme as a POSIX shell function for the buildspec,
and the test suite checks that both agree for any input.
"""

from __future__ import annotations

import re

# SemVer 2.0.0, the regular expression published at semver.org (named groups dropped), with
# explicit ASCII classes: Python's ``\d`` would accept any Unicode digit ("1.0.1\u0663"), and the
# same text, with "(?:" turned into "(", is the POSIX ERE of the shell function. Match it with
# ``fullmatch`` (``$`` alone also matches before a trailing newline).
SEMVER_RE = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
    re.ASCII,
)
OCI_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z", re.ASCII)
# Lowercase commit ids; ``\Z`` so that "a1b2c3d\n" does not match.
GIT_SHA_RE = re.compile(r"^[0-9a-f]{7,40}\Z", re.ASCII)
_ANY_CASE_SHA_RE = re.compile(r"^[0-9a-fA-F]{7,40}\Z", re.ASCII)
SHA_LENGTH = 12
MAX_TAG_LENGTH = 128
MAX_BUILD_NUMBER = 10**9 - 1
# A commit abbreviation that is all digits with a leading zero ("0123456789ab" is fine,
# "012345678901" is not) would be a SemVer numeric identifier with a leading zero, which
# SemVer forbids; such an abbreviation gets git-describe's "g" prefix ("git.g012345678901").
COMMIT_PREFIX = "g"
# Longest suffix: "-build." + 9 digits + "-git." + "g" + 12 hex characters.
_MAX_SUFFIX = (
    len("-build.") + len(str(MAX_BUILD_NUMBER)) + len("-git.") + len(COMMIT_PREFIX) + SHA_LENGTH
)
MAX_VERSION_LENGTH = MAX_TAG_LENGTH - _MAX_SUFFIX
FORBIDDEN_TAGS = frozenset({"latest"})


class TagError(ValueError):
    """A version, build number or commit that cannot make a release tag."""


def _reject_whitespace(what: str, value: str) -> None:
    spaces = sorted({c for c in value if c.isspace()})
    if spaces:
        raise TagError(
            f"{what} {value!r} contains whitespace ({', '.join(map(repr, spaces))}); "
            "give it without spaces, tabs or line breaks (nothing is trimmed)"
        )


def validate_version(version: str) -> str:
    """Return ``version`` if it is a SemVer 2.0 version usable in a release tag, else raise.

    Nothing is trimmed: a version with surrounding or embedded whitespace (" 1.8.0",
    "1.8.0\\n") is refused, so the value validated is exactly the value tagged.
    """
    if not isinstance(version, str):
        raise TagError(f"version {version!r} is not a string; give a SemVer such as 1.8.0")
    _reject_whitespace("version", version)
    if version.lower() in FORBIDDEN_TAGS:
        raise TagError(f"{version!r} is not allowed: release tags are SemVer, never 'latest'")
    if not SEMVER_RE.fullmatch(version):
        raise TagError(
            f"{version!r} is not a SemVer 2.0 version (for example 1.8.0 or 2.0.0-rc.1; "
            "ASCII digits and letters only)"
        )
    if "+" in version:
        raise TagError(
            f"{version!r} carries build metadata ('+…'), which an OCI tag cannot hold; "
            "the build number and commit are appended by the tag scheme"
        )
    if len(version) > MAX_VERSION_LENGTH:
        raise TagError(f"{version!r} is longer than {MAX_VERSION_LENGTH} characters")
    return version


def _commit_identifier(sha: str) -> str:
    abbreviation = sha[:SHA_LENGTH]
    if abbreviation.isdigit() and abbreviation.startswith("0"):
        return COMMIT_PREFIX + abbreviation
    return abbreviation


def image_tag(version: str, build_number: int, git_sha: str) -> str:
    """The release tag for ``version`` built as build ``build_number`` from ``git_sha``.

    ``build_number`` must be an ``int`` (not a ``bool``) in ``0..MAX_BUILD_NUMBER``;
    ``git_sha`` is 7 to 40 hex characters (either case, nothing trimmed).
    """
    validate_version(version)
    if isinstance(build_number, bool) or not isinstance(build_number, int):
        raise TagError(
            f"build number {build_number!r} is not an integer; give 0..{MAX_BUILD_NUMBER}"
        )
    if not 0 <= build_number <= MAX_BUILD_NUMBER:
        raise TagError(f"build number {build_number} is outside 0..{MAX_BUILD_NUMBER}")
    if not isinstance(git_sha, str) or not _ANY_CASE_SHA_RE.match(git_sha):
        raise TagError(
            f"{git_sha!r} is not a git commit id (7 to 40 hex characters, nothing trimmed)"
        )
    sha = git_sha.lower()
    separator = "." if "-" in version else "-"
    return f"{version}{separator}build.{build_number}-git.{_commit_identifier(sha)}"


def is_valid_oci_tag(tag: str) -> bool:
    """True when ``tag`` is a valid OCI/Docker tag."""
    return bool(OCI_TAG_RE.match(tag))


def shell_function(name: str = "release_tag") -> str:
    """The same scheme as a POSIX shell function: ``release_tag VERSION BUILD SHA``.

    It prints the tag, or prints an error to stderr and returns 1 for an argument with a line
    break, a version that is not SemVer, a build number that is not a number, or a commit id
    that is not hex. Like :func:`image_tag` it trims nothing, and it matches in the C locale
    so bracket ranges stay ASCII whatever the build host's locale.
    """
    # POSIX ERE has no non-capturing groups; the pattern already spells digits as [0-9].
    semver_ere = SEMVER_RE.pattern.replace("(?:", "(")
    return (
        f"{name}() {{\n"
        # grep matches line by line and $(...) drops trailing newlines, so a line break in any
        # argument is refused before either sees it (_nl holds one newline).
        "  _nl='\n'\n"
        '  for _a in "$1" "$2" "$3"; do\n'
        '    case "$_a" in *"$_nl"*)\n'
        '      echo "line break not allowed in a release tag argument: $_a" >&2; return 1;;\n'
        "    esac\n"
        "  done\n"
        "  _v=\"$1\"; _b=\"$2\"; _s=$(printf '%s' \"$3\" | LC_ALL=C tr 'A-F' 'a-f')\n"
        f"  if ! printf '%s\\n' \"$_v\" | LC_ALL=C grep -Eq '{semver_ere}' "
        '|| [ "$_v" = latest ]; then\n'
        '    echo "not a SemVer version: $_v" >&2; return 1\n'
        "  fi\n"
        '  case "$_v" in *+*) echo "build metadata not allowed: $_v" >&2; return 1;; esac\n'
        f'  if [ "${{#_v}}" -gt {MAX_VERSION_LENGTH} ]; then '
        'echo "version too long: $_v" >&2; return 1; fi\n'
        f"  if ! printf '%s\\n' \"$_b\" | LC_ALL=C grep -Eq '^(0|[1-9][0-9]{{0,8}})$'; then\n"
        '    echo "not a build number: $_b" >&2; return 1\n'
        "  fi\n"
        "  if ! printf '%s\\n' \"$_s\" | LC_ALL=C grep -Eq '^[0-9a-f]{7,40}$'; then\n"
        '    echo "not a git commit id: $3" >&2; return 1\n'
        "  fi\n"
        '  case "$_v" in *-*) _sep=".";; *) _sep="-";; esac\n'
        f"  _c=$(printf '%s' \"$_s\" | cut -c1-{SHA_LENGTH})\n"
        # an all-digit abbreviation with a leading zero is no SemVer identifier: prefix "g"
        '  case "$_c" in 0*) case "$_c" in *[!0-9]*) ;; '
        f'*) _c="{COMMIT_PREFIX}$_c";; esac;; esac\n'
        '  printf \'%s%sbuild.%s-git.%s\\n\' "$_v" "$_sep" "$_b" "$_c"\n'
        "}\n"
    )

"""The release tag scheme: Python ``image_tag`` and the buildspec's shell ``release_tag`` agree.

Unit tests pin the defects found in review (whitespace kept in the tag, Unicode digits taken
for SemVer digits, ``True`` taken for a build number, multi-line values passing the shell's
line-by-line grep); property tests run the rendered shell function with bash on generated,
partly hostile input and require the same verdict and the same tag as Python, and that every
accepted tag is a valid OCI tag and a valid SemVer 2.0 version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.render.versioning import (
    GIT_SHA_RE,
    MAX_BUILD_NUMBER,
    MAX_TAG_LENGTH,
    MAX_VERSION_LENGTH,
    TagError,
    image_tag,
    is_valid_oci_tag,
    shell_function,
    validate_version,
)

SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
BASH = shutil.which("bash")

# Written out here, independently of the module under test: semver.org's expression (ASCII
# digits) and the OCI distribution spec's tag grammar.
SEMVER_ORG = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)
OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*", re.ASCII)

# Runs release_tag once per (version, build, sha) triple given as positional arguments and
# prints "<rc>\t<tag>" per triple (a tag never holds a tab or a newline).
_DRIVER = (
    shell_function("release_tag")
    + """
while [ "$#" -ge 3 ]; do
  if _t="$(release_tag "$1" "$2" "$3" 2>/dev/null)"; then _rc=0; else _rc=$?; fi
  printf '%s\\t%s\\n' "$_rc" "$_t"
  shift 3
done
"""
)


def python_tag(version: str, build: int, sha: str) -> str | None:
    try:
        return image_tag(version, build, sha)
    except TagError:
        return None


def shell_tags(cases: list[tuple[str, int, str]]) -> list[str | None]:
    """release_tag's verdict for each case, from one bash process (UTF-8 locale, like CI)."""
    assert BASH, "bash is needed to run the buildspec's shell function"
    argv = [BASH, "-c", _DRIVER, "release_tag_driver"]
    for version, build, sha in cases:
        argv += [version, str(build), sha]
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, env=env)
    lines = done.stdout.split("\n")
    assert lines[-1] == ""
    results: list[str | None] = []
    for line in lines[:-1]:
        rc, _, tag = line.partition("\t")
        if rc == "0":
            results.append(tag)
        else:
            assert (rc, tag) == ("1", ""), line
            results.append(None)
    assert len(results) == len(cases), done.stdout
    return results


def assert_release_tag(tag: str) -> None:
    assert len(tag) <= MAX_TAG_LENGTH, tag
    assert OCI_TAG.fullmatch(tag), tag
    assert is_valid_oci_tag(tag), tag
    assert SEMVER_ORG.fullmatch(tag), f"{tag!r} is not SemVer 2.0"
    assert tag.lower() != "latest"


# --------------------------------------------------------------------------- unit: Python


def test_tags_for_a_release_and_a_prerelease() -> None:
    assert image_tag("1.8.0", 247, SHA) == "1.8.0-build.247-git.a1b2c3d4e5f6"
    assert image_tag("2.0.0-rc.1", 5, SHA.upper()) == "2.0.0-rc.1.build.5-git.a1b2c3d4e5f6"
    assert validate_version("1.8.0") == "1.8.0"


@pytest.mark.parametrize(
    "version",
    [
        " 1.8.0",
        "1.8.0 ",
        "1.8.0\n",
        "\t1.8.0",
        "1.8.0\r\n",
        "1.8 .0",
        "1.8.0-rc.1\n",
        "\u00a01.8.0",
    ],
)
def test_whitespace_anywhere_in_the_version_is_refused_not_trimmed(version: str) -> None:
    with pytest.raises(TagError, match="contains whitespace") as info:
        validate_version(version)
    assert repr(version) in str(info.value)
    with pytest.raises(TagError, match="contains whitespace"):
        image_tag(version, 1, SHA)


@pytest.mark.parametrize("sha", [" " + SHA, SHA + "\n", "a1b2c3d\n", "a1b2 c3d4"])
def test_whitespace_in_the_commit_is_refused_not_trimmed(sha: str) -> None:
    with pytest.raises(TagError, match="not a git commit id") as info:
        image_tag("1.8.0", 1, sha)
    assert repr(sha) in str(info.value)
    assert not GIT_SHA_RE.match(sha.lower())


@pytest.mark.parametrize(
    "version",
    [
        "1.0.1\u0663",  # ARABIC-INDIC DIGIT THREE
        "\u0661.0.0",
        "1.0.0-rc.\u0663",
        "\uff11.0.0",  # FULLWIDTH DIGIT ONE
        "1.0.\U0001d7d9",  # MATHEMATICAL DOUBLE-STRUCK DIGIT ONE
        "1.0.0-r\u00e9",  # a non-ASCII letter in the pre-release
    ],
)
def test_non_ascii_digits_and_letters_are_not_semver(version: str) -> None:
    with pytest.raises(TagError, match=r"not a SemVer 2\.0 version"):
        validate_version(version)


@pytest.mark.parametrize("build", [True, False])
def test_a_bool_is_not_a_build_number(build: bool) -> None:
    with pytest.raises(TagError, match=r"build number (True|False) is not an integer"):
        image_tag("1.8.0", build, SHA)


@pytest.mark.parametrize("build", ["7", 7.0, None])
def test_a_build_number_must_be_an_int(build: object) -> None:
    with pytest.raises(TagError, match="is not an integer"):
        image_tag("1.8.0", build, SHA)  # type: ignore[arg-type]


@pytest.mark.parametrize("build", [-1, MAX_BUILD_NUMBER + 1])
def test_build_number_range(build: int) -> None:
    with pytest.raises(TagError, match=f"outside 0..{MAX_BUILD_NUMBER}"):
        image_tag("1.8.0", build, SHA)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("latest", "never 'latest'"),
        ("LATEST", "never 'latest'"),
        ("1.8.0+meta", "build metadata"),
        ("1.8.0-rc.1+build.5", "build metadata"),
        ("01.8.0", "not a SemVer"),
        ("v1.8.0", "not a SemVer"),
        ("", "not a SemVer"),
    ],
)
def test_refused_versions_say_why(version: str, message: str) -> None:
    with pytest.raises(TagError, match=re.escape(message)):
        validate_version(version)


def test_longest_version_still_makes_a_tag_within_the_oci_limit() -> None:
    longest = "1.0.0-" + "a" * (MAX_VERSION_LENGTH - len("1.0.0-"))
    tag = image_tag(longest, MAX_BUILD_NUMBER, "0" + "1" * 39)
    assert len(tag) == MAX_TAG_LENGTH
    assert_release_tag(tag)
    with pytest.raises(TagError, match=f"longer than {MAX_VERSION_LENGTH}"):
        validate_version(longest + "a")


@pytest.mark.parametrize(
    ("sha", "identifier"),
    [
        ("0123456789012345", "g012345678901"),  # all digits, leading zero: not SemVer as is
        ("0123456", "g0123456"),
        ("1234567890123", "123456789012"),  # all digits, no leading zero: a valid number
        ("0123456789ab", "0123456789ab"),  # has letters: alphanumeric identifier
    ],
)
def test_commit_abbreviation_is_always_a_semver_identifier(sha: str, identifier: str) -> None:
    tag = image_tag("1.8.0", 3, sha)
    assert tag == f"1.8.0-build.3-git.{identifier}"
    assert_release_tag(tag)
    assert shell_tags([("1.8.0", 3, sha)]) == [tag]


def test_oci_tag_check_does_not_accept_a_trailing_newline() -> None:
    assert is_valid_oci_tag("1.8.0-build.1-git.abcdef1")
    assert not is_valid_oci_tag("1.8.0-build.1-git.abcdef1\n")
    assert not is_valid_oci_tag("x" * (MAX_TAG_LENGTH + 1))


# --------------------------------------------------------------------------- unit: shell


@pytest.mark.parametrize(
    ("version", "build", "sha"),
    [
        ("1.8.0\nfoo", "7", SHA),  # the second line used to be ignored by grep
        ("garbage\n1.8.0", "7", SHA),  # grep -q succeeded on any matching line
        ("1.8.0\n", "7", SHA),
        ("1.8.0", "5\n6", SHA),
        ("1.8.0", "7", SHA + "\n"),  # $(...) used to drop the trailing newline
        ("1.8.0", "7", "zzzz\n" + SHA),
    ],
)
def test_shell_refuses_multi_line_arguments(version: str, build: str, sha: str) -> None:
    assert BASH
    done = subprocess.run(
        [BASH, "-c", shell_function() + 'release_tag "$1" "$2" "$3"', "t", version, build, sha],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert done.stdout == ""
    assert "line break not allowed" in done.stderr


def test_shell_agrees_on_the_reviewed_defects() -> None:
    cases = [
        (" 1.8.0", 7, SHA),
        ("1.8.0 ", 7, SHA),
        ("1.0.1\u0663", 7, SHA),
        ("1.8.0", 7, " " + SHA),
        ("1.8.0", 7, SHA.upper()),
        ("latest", 7, SHA),
        ("1.8.0+meta", 7, SHA),
        ("2.0.0-rc.1", 0, "0123456789"),
    ]
    expected = [None, None, None, None, image_tag("1.8.0", 7, SHA), None, None]
    expected.append("2.0.0-rc.1.build.0-git.g0123456789")
    assert [python_tag(*case) for case in cases] == expected
    assert shell_tags(cases) == expected


# --------------------------------------------------------------------------- properties

_NO_NUL = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_NASTY = [
    " ",
    "\n",
    "\t",
    "\r",
    "\u00a0",
    "\u2028",
    "\u0663",
    "\uff11",
    "\u00e9",
    "+meta",
    "+build.5",
    "-",
    ".",
    "0",
    "01",
    "latest",
    "LATEST",
    "v",
]
_IDENTIFIER = st.from_regex(
    r"(0|[1-9][0-9]{0,3}|[0-9]{0,2}[a-zA-Z-][0-9a-zA-Z-]{0,4})", fullmatch=True
)
_VALID_VERSION = st.builds(
    lambda numbers, pre: ".".join(map(str, numbers)) + (f"-{'.'.join(pre)}" if pre else ""),
    st.tuples(*[st.integers(0, 10**4)] * 3),
    st.none() | st.lists(_IDENTIFIER, min_size=1, max_size=3),
)


def _insert(text: str, fragment: str, at: int) -> str:
    at %= len(text) + 1
    return text[:at] + fragment + text[at:]


_VERSION = st.one_of(
    _VALID_VERSION,
    st.builds(_insert, _VALID_VERSION, st.sampled_from(_NASTY), st.integers(0, 200)),
    st.builds(lambda n: "1.0.0-" + "a" * n, st.integers(MAX_VERSION_LENGTH - 10, 110)),
    st.sampled_from(["latest", "LATEST", "Latest", "", "1.8", "1.8.0.0", "v1.8.0"]),
    st.text(st.sampled_from("0123456789.-+abzAZ \n\u0663"), max_size=14),
    st.text(_NO_NUL, max_size=10),
)
_BUILD = st.one_of(
    st.integers(0, MAX_BUILD_NUMBER),
    st.integers(-3, 12),
    st.integers(MAX_BUILD_NUMBER - 2, MAX_BUILD_NUMBER + 3),
)
_HEX_SHA = st.from_regex(r"[0-9a-fA-F]{5,42}", fullmatch=True)
_SHA = st.one_of(
    _HEX_SHA,
    st.from_regex(r"0[0-9]{6,41}", fullmatch=True),
    st.builds(_insert, _HEX_SHA, st.sampled_from(_NASTY), st.integers(0, 50)),
    st.text(_NO_NUL, max_size=12),
)
_CASES = st.lists(st.tuples(_VERSION, _BUILD, _SHA), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=_CASES)
def test_python_and_shell_agree_on_any_input(cases: list[tuple[str, int, str]]) -> None:
    python = [python_tag(*case) for case in cases]
    assert shell_tags(cases) == python
    for tag in python:
        if tag is not None:
            assert_release_tag(tag)


@settings(max_examples=60, deadline=None)
@given(version=_VERSION, build=_BUILD, sha=_SHA)
def test_every_accepted_tag_is_an_oci_tag_and_semver(version: str, build: int, sha: str) -> None:
    tag = python_tag(version, build, sha)
    if tag is None:
        return
    assert_release_tag(tag)
    assert tag.startswith(version)
    assert not any(c.isspace() for c in tag)


# --------------------------------------------------------------------------- config contract


def test_trivy_exceptions_file_default_is_the_json_the_build_parses() -> None:
    """The config default names the JSON file the buildspec's Trivy gate reads (not YAML)."""
    from components.config import TrivyPolicy
    from components.render.buildspec import BuildSpecSettings

    default = TrivyPolicy().exceptions_file
    assert default == ".trivy-exceptions.json"
    assert default == BuildSpecSettings.__dataclass_fields__["trivy_exceptions_file"].default

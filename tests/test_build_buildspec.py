"""The buildspec renderer: structure, shellcheck on every command, gates, batch graph."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render.buildspec import (
    ARM_STANDARD_IMAGE,
    JOIN_IDENTIFIER,
    MULTIARCH_NOTES,
    NUGET_GATE_PY,
    RELEASE_DIR,
    TRIVY_GATE_PY,
    X86_STANDARD_IMAGE,
    BatchSettings,
    BranchPolicy,
    BuildEnvironment,
    BuildRole,
    BuildSpecError,
    BuildSpecSettings,
    PinnedTool,
    SonarSettings,
    buildspec_yaml,
    commands_of,
    render_batch_graph,
    render_buildspec,
    role_variables,
)

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
GITLEAKS = PinnedTool.gitleaks("8.21.2", sha256_amd64="a" * 64, sha256_arm64="b" * 64)
TRIVY = PinnedTool.trivy("0.57.1", sha256_amd64="c" * 64, sha256_arm64="d" * 64)
SONAR = SonarSettings(
    host_url="https://sonar.example.com",
    project_key="orders-api",
    token_secret_id="arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/sonar-AbC123",
    token_json_key="token",
    scanner_version="9.0.2",
)
BINFMT = "tonistiigi/binfmt@sha256:" + "1f" * 32


def _settings(**overrides: Any) -> BuildSpecSettings:
    base = BuildSpecSettings(
        service_name="orders-api",
        solution="Orders.sln",
        test_projects=("tests/**/*.Tests.csproj", "test/*.IntegrationTests/*.csproj"),
        gitleaks=GITLEAKS,
        trivy=TRIVY,
    )
    return replace(base, **overrides)


VARIANTS = {
    "single": _settings(),
    "single-everything": _settings(
        sonar=SONAR,
        trivy_ignore_unfixed=False,
        restore_locked_mode=True,
        other_branches_fail_on=("CRITICAL",),
        region="eu-west-1",
        ecr_repository_url="123456789012.dkr.ecr.eu-west-1.amazonaws.com/orders-api",
    ),
    "qemu": _settings(
        role=BuildRole.SINGLE_WITH_QEMU,
        platforms=("linux/amd64", "linux/arm64"),
        binfmt_image=BINFMT,
    ),
    "platform": _settings(role=BuildRole.BUILD_ONE_PLATFORM, platforms=("linux/arm64",)),
    "join": _settings(role=BuildRole.JOIN_MANIFEST, platforms=("linux/amd64", "linux/arm64")),
    "batch": _settings(role=BuildRole.BATCH, platforms=("linux/amd64", "linux/arm64"), sonar=SONAR),
}


def _all_commands() -> list[str]:
    seen: dict[str, None] = {}
    for variant in VARIANTS.values():
        for _, command in commands_of(render_buildspec(variant)):
            seen.setdefault(command, None)
    return list(seen)


def _shellcheck(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "--severity=style", "--format=gcc", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


# ------------------------------------------------------------------------------ shellcheck


def test_every_command_of_every_variant_passes_shellcheck(tmp_path: Path) -> None:
    commands = _all_commands()
    assert len(commands) > 20
    paths = []
    for index, command in enumerate(commands):
        path = tmp_path / f"command-{index:02d}.sh"
        path.write_text(f"#!/bin/bash\n{command}\n", encoding="utf-8")
        paths.append(path)
    result = _shellcheck(paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_really_checks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\nfor f in $(ls $DIR); do echo $f; done\n", encoding="utf-8")
    result = _shellcheck([bad])
    assert result.returncode != 0 and "SC2045" in result.stdout


# ------------------------------------------------------------------------------ structure


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_yaml_round_trips_and_is_version_0_2(name: str) -> None:
    spec = render_buildspec(VARIANTS[name])
    text = buildspec_yaml(spec)
    assert yaml.safe_load(text) == spec
    assert text.startswith("version: 0.2\n")
    assert "- |" in text  # multi-line commands are block scalars, not escaped strings


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_phase_aborts_on_failure_and_post_build_is_guarded(name: str) -> None:
    spec = render_buildspec(VARIANTS[name])
    assert list(spec["phases"]) == ["install", "pre_build", "build", "post_build"]
    assert {body["on-failure"] for body in spec["phases"].values()} == {"ABORT"}
    for command in spec["phases"]["post_build"]["commands"]:
        assert '"${CODEBUILD_BUILD_SUCCEEDING:-0}" != 1' in command
    everything = "\n".join(c for _, c in commands_of(spec))
    for pusher in ("docker push", "imagetools create", "imageDetail.json"):
        assert pusher not in "\n".join(
            c for phase, c in commands_of(spec) if phase != "post_build"
        ), pusher
        assert pusher in everything


def test_downloads_are_pinned_and_verified_never_piped_to_a_shell() -> None:
    for command in _all_commands():
        assert not re.search(r"\|\s*(sudo\s+)?(ba|z)?sh\b", command), command
        if "curl " in command:
            assert "sha256sum -c -" in command
            assert command.index("curl ") < command.index("sha256sum -c -") < command.index("tar ")
    install = render_buildspec(VARIANTS["single"])["phases"]["install"]["commands"]
    joined = "\n".join(install)
    assert GITLEAKS.amd64.url in joined and GITLEAKS.arm64.sha256 in joined
    assert TRIVY.arm64.url in joined and TRIVY.amd64.sha256 in joined


def test_ignore_unfixed_is_a_setting() -> None:
    def trivy_gate(settings: BuildSpecSettings) -> str:
        return next(c for _, c in commands_of(render_buildspec(settings)) if "trivy image" in c)

    assert "--ignore-unfixed" in trivy_gate(VARIANTS["single"])
    assert '"$TRIVY_ALLOW_EXCEPTIONS" .trivy-exceptions.json 1 <<' in trivy_gate(VARIANTS["single"])
    off = trivy_gate(VARIANTS["single-everything"])
    assert "--ignore-unfixed" not in off
    assert '"$TRIVY_ALLOW_EXCEPTIONS" .trivy-exceptions.json 0 <<' in off


def test_sonar_token_only_through_secrets_manager() -> None:
    spec = render_buildspec(VARIANTS["single-everything"])
    assert spec["env"]["secrets-manager"] == {"SONAR_TOKEN": SONAR.token_secret_id + ":token"}
    assert "SONAR_TOKEN" not in spec["env"]["variables"]
    assert "secrets-manager" not in render_buildspec(VARIANTS["single"])["env"]
    begin = next(c for _, c in commands_of(spec) if "sonarscanner begin" in c)
    assert '/d:sonar.token="$SONAR_TOKEN"' in begin
    assert "/d:sonar.qualitygate.wait=true" in begin


def test_outputs_reports_cache_and_exported_variables() -> None:
    spec = render_buildspec(
        _settings(
            test_report_group="orders-tests",
            coverage_report_group="orders-coverage",
            nuget_cache_path="/root/.nuget/cache",
        )
    )
    assert spec["env"]["exported-variables"] == ["IMAGE_TAG", "IMAGE_URI", "IMAGE_DIGEST"]
    assert all(
        spec["env"]["variables"][k] == "" for k in ("IMAGE_TAG", "IMAGE_URI", "IMAGE_DIGEST")
    )
    assert spec["reports"]["orders-tests"]["file-format"] == "VISUALSTUDIOTRX"
    assert spec["reports"]["orders-coverage"]["file-format"] == "COBERTURAXML"
    assert spec["artifacts"]["base-directory"] == RELEASE_DIR
    assert spec["cache"]["paths"] == ["/root/.nuget/cache/**/*"]
    assert spec["env"]["variables"]["NUGET_PACKAGES"] == "/root/.nuget/cache"
    assert spec["phases"]["install"]["runtime-versions"] == {"dotnet": "8.0"}


def test_branch_policy_is_rendered_literally_in_order_with_a_fail_closed_default() -> None:
    spec = render_buildspec(
        _settings(
            branch_policies=(
                BranchPolicy("hotfix/*", ("CRITICAL",)),
                BranchPolicy("release/*", ("HIGH", "CRITICAL"), allow_exceptions=True),
                BranchPolicy("main", ("MEDIUM", "HIGH", "CRITICAL")),
            ),
            branch_variable="SOURCE_BRANCH",
        )
    )
    policy = spec["phases"]["pre_build"]["commands"][1]
    assert 'RELEASE_BRANCH="${SOURCE_BRANCH:-}"' in policy
    arms = [line.strip() for line in policy.splitlines() if ") TRIVY_FAIL_ON=" in line]
    assert arms == [
        "'') TRIVY_FAIL_ON=MEDIUM,HIGH,CRITICAL; TRIVY_ALLOW_EXCEPTIONS=0 ;;",
        "hotfix/*) TRIVY_FAIL_ON=CRITICAL; TRIVY_ALLOW_EXCEPTIONS=0 ;;",
        "release/*) TRIVY_FAIL_ON=HIGH,CRITICAL; TRIVY_ALLOW_EXCEPTIONS=1 ;;",
        "main) TRIVY_FAIL_ON=MEDIUM,HIGH,CRITICAL; TRIVY_ALLOW_EXCEPTIONS=0 ;;",
        "*) TRIVY_FAIL_ON=''; TRIVY_ALLOW_EXCEPTIONS=0 ;;",
    ]


def test_the_tag_is_computed_by_the_shared_tag_scheme() -> None:
    from components.render import versioning

    tag_command = render_buildspec(_settings())["phases"]["pre_build"]["commands"][0]
    assert versioning.shell_function("release_tag").rstrip("\n") in tag_command
    assert 'release_tag "$RELEASE_VERSION" "$RELEASE_BUILD_NUMBER"' in tag_command


# ------------------------------------------------------------------------------ batch graph


def test_batch_graph_fans_out_natively_and_joins() -> None:
    settings = VARIANTS["batch"]
    graph = render_batch_graph(settings)["build-graph"]
    assert render_buildspec(settings)["batch"] == {"build-graph": graph}
    by_id = {task["identifier"]: task for task in graph}
    assert list(by_id) == ["build_amd64", "build_arm64", JOIN_IDENTIFIER]
    amd64, arm64, join = by_id["build_amd64"], by_id["build_arm64"], by_id[JOIN_IDENTIFIER]
    assert (amd64["env"]["type"], amd64["env"]["image"]) == ("LINUX_CONTAINER", X86_STANDARD_IMAGE)
    assert (arm64["env"]["type"], arm64["env"]["image"]) == ("ARM_CONTAINER", ARM_STANDARD_IMAGE)
    assert X86_STANDARD_IMAGE == "aws/codebuild/amazonlinux-x86_64-standard:5.0"
    assert ARM_STANDARD_IMAGE == "aws/codebuild/amazonlinux-aarch64-standard:3.0"
    assert all(task["env"]["privileged-mode"] is True for task in graph)
    assert join["depend-on"] == ["build_amd64", "build_arm64"]
    assert "depend-on" not in amd64 and "depend-on" not in arm64
    assert amd64["env"]["variables"]["BUILD_PLATFORMS"] == "linux/amd64"
    assert arm64["env"]["variables"]["BUILD_PLATFORMS"] == "linux/arm64"
    assert amd64["env"]["variables"]["RUN_SONAR"] == "1"
    assert arm64["env"]["variables"]["RUN_SONAR"] == "0"  # one analysis per batch
    assert join["env"]["variables"]["MANIFEST_PLATFORMS"] == "linux/amd64 linux/arm64"
    assert join["env"]["variables"]["WRITE_RELEASE"] == "1"
    assert {t["env"]["variables"]["SETUP_QEMU"] for t in graph} == {"0"}
    assert "BUILD_ROLE" not in render_buildspec(settings)["env"]["variables"]


def test_batch_environments_can_be_overridden() -> None:
    bigger = BuildEnvironment(ARM_STANDARD_IMAGE, "BUILD_GENERAL1_XLARGE", "ARM_CONTAINER")
    settings = replace(
        VARIANTS["batch"], batch=BatchSettings(environments=(("linux/arm64", bigger),))
    )
    graph = {t["identifier"]: t for t in render_batch_graph(settings)["build-graph"]}
    assert graph["build_arm64"]["env"]["compute-type"] == "BUILD_GENERAL1_XLARGE"
    assert graph["build_amd64"]["env"]["compute-type"] == "BUILD_GENERAL1_MEDIUM"


def test_role_variables_say_what_each_role_pushes() -> None:
    single = role_variables(BuildRole.SINGLE, ["linux/amd64"])
    assert (single["PUSH_MODE"], single["WRITE_RELEASE"], single["MANIFEST_PLATFORMS"]) == (
        "release",
        "1",
        "",
    )
    qemu = role_variables(BuildRole.SINGLE_WITH_QEMU, ["linux/amd64", "linux/arm64"])
    assert (qemu["PUSH_MODE"], qemu["SETUP_QEMU"]) == ("arch", "1")
    join = role_variables(BuildRole.JOIN_MANIFEST, ["linux/amd64", "linux/arm64"])
    assert (join["RUN_SOURCE_GATES"], join["BUILD_PLATFORMS"], join["BATCH_BUILD_NUMBER"]) == (
        "0",
        "",
        "1",
    )
    with pytest.raises(BuildSpecError, match="role"):
        role_variables(BuildRole.BATCH, ["linux/amd64"])


def test_qemu_only_when_opted_in() -> None:
    for name in ("single", "platform", "join", "batch"):
        assert not any("binfmt" in c for _, c in commands_of(render_buildspec(VARIANTS[name])))
    assert any(BINFMT in c for _, c in commands_of(render_buildspec(VARIANTS["qemu"])))


def test_multiarch_notes_cite_their_sources() -> None:
    for source in (
        "https://docs.docker.com/build/building/multi-platform/",
        "https://devblogs.microsoft.com/dotnet/improving-multiplatform-container-support/",
        "https://github.com/dotnet/dotnet-docker/issues/5355",
        "ec2-compute-images.html",
    ):
        assert source in MULTIARCH_NOTES


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"service_name": "Orders API"}, "service_name", "lowercase"),
        ({"solution": "../other/Other.sln"}, "solution", "no .."),
        ({"test_projects": ("tests/$(rm -rf ~)/*.csproj",)}, "test_projects", "relative glob"),
        ({"test_projects": ()}, "test_projects", "at least one"),
        ({"platforms": ("linux/amd64", "linux/arm64")}, "platforms", "exactly one"),
        ({"platforms": ("linux/s390x",)}, "platforms", "linux/amd64"),
        (
            {"role": BuildRole.SINGLE_WITH_QEMU, "platforms": ("linux/amd64", "linux/arm64")},
            "binfmt_image",
            "pinned by digest",
        ),
        (
            {
                "role": BuildRole.SINGLE_WITH_QEMU,
                "platforms": ("linux/amd64", "linux/arm64"),
                "binfmt_image": "tonistiigi/binfmt:latest",
            },
            "binfmt_image",
            "pinned by digest",
        ),
        ({"ecr_repository_url": "orders-api"}, "ecr_repository_url", ".dkr.ecr."),
        ({"nuget_fail_severities": ("Severe",)}, "nuget_fail_severities", "Critical"),
        ({"nuget_fail_severities": ()}, "nuget_fail_severities", "name some"),
        ({"other_branches_fail_on": ("critical",)}, "other_branches_fail_on", "CRITICAL"),
        ({"branch_variable": "branch name"}, "branch_variable", "environment variable"),
        ({"dotnet_sdk_version": "8"}, "dotnet_sdk_version", "major.minor"),
        ({"tools_dir": "tools"}, "tools_dir", "absolute path"),
        ({"coverage_report_group": "unit-tests"}, "coverage_report_group", "different"),
    ],
)
def test_bad_settings_name_field_value_and_what_is_allowed(
    overrides: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(BuildSpecError) as error:
        _settings(**overrides)
    message = str(error.value)
    assert message.startswith(field) and allowed in message


def test_pins_and_policies_are_validated() -> None:
    with pytest.raises(BuildSpecError, match="sha256"):
        PinnedTool.trivy("0.57.1", sha256_amd64="abc", sha256_arm64="d" * 64)
    with pytest.raises(BuildSpecError, match="version"):
        PinnedTool.gitleaks("latest", sha256_amd64="a" * 64, sha256_arm64="b" * 64)
    with pytest.raises(BuildSpecError, match="fail_on"):
        BranchPolicy("main", ("SEVERE",))
    with pytest.raises(BuildSpecError, match="pattern"):
        BranchPolicy("main; rm -rf /", ("CRITICAL",))
    with pytest.raises(BuildSpecError, match="host_url"):
        replace(SONAR, host_url="http://sonar.example.com")


# ------------------------------------------------------------------------------ embedded gates


def _gate(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "gate"}
    exec(compile(source, "<gate>", "exec"), namespace)
    return namespace


TODAY = datetime.date(2026, 6, 1)


def test_exceptions_file_format(tmp_path: Path) -> None:
    gate = _gate(TRIVY_GATE_PY)
    path = tmp_path / "exceptions.json"

    def load(data: object) -> tuple[dict[str, str], list[str]]:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return gate["load_exceptions"](str(path), TODAY)

    good = {"id": "CVE-2024-1234", "reason": " not reachable ", "expires": "2026-06-01"}
    ghsa = {"id": "GHSA-2xj2-37xp-7g5q", "reason": "dev only", "expires": "2027-01-01"}
    assert load({"exceptions": [good, ghsa]}) == (
        {"CVE-2024-1234": "not reachable", "GHSA-2xj2-37xp-7g5q": "dev only"},
        [],
    )
    assert load({"exceptions": [{**good, "expires": "2026-05-31"}]}) == ({}, ["CVE-2024-1234"])
    assert gate["load_exceptions"](str(tmp_path / "absent.json"), TODAY) == ({}, [])
    for bad, message in [
        ({"exceptions": [{**good, "reason": "  "}]}, "needs a non-empty reason"),
        ({"exceptions": [{"id": "CVE-2024-1234", "expires": "2026-06-01"}]}, "reason"),
        ({"exceptions": [{**good, "id": "CVE-24-1"}]}, "is not a CVE or GHSA id"),
        ({"exceptions": [{**good, "expires": "31/12/2026"}]}, "is not a date"),
        ({"exceptions": [{**good, "expires": None}]}, "is not a date"),
        ({"exceptions": [{**good, "owner": "me"}]}, "unknown key(s) owner"),
        ({"exceptions": {"id": "CVE-2024-1234"}}, 'expected {"exceptions": [...]}'),
        (["CVE-2024-1234"], 'expected {"exceptions": [...]}'),
        ("{not json", "not valid JSON"),
    ]:
        with pytest.raises(gate["GateError"]) as error:
            load(bad)
        assert message in str(error.value)
        assert str(path) in str(error.value)


def test_nuget_gate_parses_the_report_and_fails_on_configured_severities() -> None:
    gate = _gate(NUGET_GATE_PY)
    report = {
        "version": 1,
        "projects": [
            {
                "path": "/src/A.csproj",
                "frameworks": [
                    {
                        "framework": "net8.0",
                        "topLevelPackages": [
                            {
                                "id": "A",
                                "resolvedVersion": "1.0.0",
                                "vulnerabilities": [{"severity": "Moderate", "advisoryurl": "u1"}],
                            }
                        ],
                        "transitivePackages": [
                            {
                                "id": "B",
                                "resolvedVersion": "2.0.0",
                                "vulnerabilities": [{"severity": "Critical", "advisoryurl": "u2"}],
                            }
                        ],
                    }
                ],
            },
            {"path": "/src/Clean.csproj"},
        ],
    }
    errors, blocking = gate["evaluate"](report, ["high", "critical"])
    assert errors == [] and [(b["package"], b["transitive"]) for b in blocking] == [("B", True)]
    assert gate["evaluate"](report, ["Critical"])[1][0]["advisory"] == "u2"
    assert gate["evaluate"](report, ["Low"]) == ([], [])
    assert gate["evaluate"]({"problems": []}, ["High"])[0]  # not a --format json report
    failed = gate["evaluate"](
        {"projects": [], "problems": [{"level": "error", "text": "no assets file"}]}, ["High"]
    )
    assert failed[0] == ["dotnet reported: no assets file"]


_SEVERITY = st.sampled_from(["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
_FINDING = st.fixed_dictionaries(
    {
        "id": st.sampled_from([f"CVE-2024-000{i}" for i in range(6)]),
        "severity": _SEVERITY,
        "fixed": st.sampled_from(["", "1.2.3"]),
        "package": st.just("p"),
        "installed": st.just("1"),
        "target": st.just("t"),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(_FINDING, max_size=12),
    fail_on=st.sets(_SEVERITY),
    excepted=st.sets(st.sampled_from([f"CVE-2024-000{i}" for i in range(6)])),
    ignore_unfixed=st.booleans(),
)
def test_trivy_gate_partitions_findings(
    items: list[dict[str, str]], fail_on: set[str], excepted: set[str], ignore_unfixed: bool
) -> None:
    evaluate = _GATE["evaluate"]
    exceptions = {vid: "reason" for vid in excepted}
    blocking, waived, reported = evaluate(items, fail_on, exceptions, ignore_unfixed)
    considered = [i for i in items if i["fixed"] or not ignore_unfixed]
    assert sorted(map(str, blocking + waived + reported)) == sorted(map(str, considered))
    assert all(i["severity"] in fail_on and i["id"] not in excepted for i in blocking)
    assert all(i["severity"] in fail_on and i["id"] in excepted for i in waived)
    assert all(i["severity"] not in fail_on for i in reported)
    if not fail_on:
        assert blocking == []


_GATE = _gate(TRIVY_GATE_PY)

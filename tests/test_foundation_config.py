"""Config validation: every problem at once, one line per key, key path + value + allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components import config, preview
from components.testing.engine import PROJECT_ROOT, load_stack_file

STACKS = ("tooling", "dev", "stage", "prod")


def raw(stack: str) -> dict:
    return dict(load_stack_file(PROJECT_ROOT / f"Pulumi.{stack}.yaml").runtime_config())


def mutate(stack: str, key: str, path: list[str], value: object) -> dict:
    """The stack's raw config with ``key``'s nested ``path`` set (None deletes it)."""
    data = {k: (yaml.safe_load(v) if v[:1] in "{[" else v) for k, v in raw(stack).items()}
    target = data[key]
    for part in path[:-1]:
        target = target[part]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize("stack", STACKS)
def test_example_stacks_are_valid(stack: str) -> None:
    cfg = config.parse(raw(stack))
    assert cfg.app.name == "orders-api"
    assert cfg.region == "eu-west-1"


def test_environment_defaults_and_derived_values() -> None:
    prod = config.parse(raw("prod"))
    assert isinstance(prod, config.EnvironmentConfig)
    assert prod.is_production and prod.account_id == "444444444444"
    assert prod.deployment.engine == "codedeploy"
    dev = config.parse(raw("dev"))
    assert isinstance(dev, config.EnvironmentConfig)
    assert not dev.is_production and dev.deployment.strategy == "allAtOnce"


def problems_of(data: dict) -> list[str]:
    with pytest.raises(config.ConfigError) as info:
        config.parse(data)
    return info.value.problems


def test_bad_fargate_cpu_names_key_value_and_allowed() -> None:
    (line,) = problems_of(mutate("prod", "dotnet-delivery:service", ["cpu"], 300))
    assert line.startswith("dotnet-delivery:service.cpu: 300 is not a Fargate CPU size")
    assert "256, 512, 1024" in line


def test_bad_memory_pair_lists_allowed_memory() -> None:
    (line,) = problems_of(mutate("prod", "dotnet-delivery:service", ["memory"], 512))
    assert line.startswith("dotnet-delivery:service.memory: 512")
    assert "2048" in line


def test_thirteen_digit_account() -> None:
    data = mutate("dev", "dotnet-delivery:accounts", ["environments", "prod"], "4444444444445")
    (line,) = problems_of(data)
    assert line.startswith('dotnet-delivery:accounts.environments.prod: "4444444444445"')
    assert "12 digits" in line


def test_missing_required_key() -> None:
    data = mutate("prod", "dotnet-delivery:loadBalancer", ["certificateArn"], None)
    assert problems_of(data) == [
        "dotnet-delivery:loadBalancer.certificateArn: required key is missing"
    ]


def test_misspelled_key_suggests_the_right_one() -> None:
    data = mutate("prod", "dotnet-delivery:service", ["cpu"], None)
    data["dotnet-delivery:service"]["cpuu"] = 512
    (line,) = problems_of(data)
    assert line.startswith("dotnet-delivery:service.cpuu: unknown key (did you mean cpu?)")


def test_every_problem_is_reported_at_once() -> None:
    data = mutate("prod", "dotnet-delivery:service", ["cpu"], 300)
    data["dotnet-delivery:accounts"]["tooling"] = "1234"
    data["dotnet-delivery:deployment"]["canaryPercent"] = 100
    data["dotnet-delivery:bogus"] = 1
    lines = problems_of(data)
    keys = sorted(line.split(":")[1].split(" ")[0] for line in lines)
    assert keys == [
        "accounts.tooling",
        "bogus",
        "deployment.canaryPercent",
        "service.cpu",
    ], lines


def test_prod_refuses_all_at_once_unless_allowed() -> None:
    data = mutate("prod", "dotnet-delivery:deployment", ["strategy"], "allAtOnce")
    (line,) = problems_of(data)
    assert line.startswith('dotnet-delivery:deployment.strategy: "allAtOnce" is refused')
    data["dotnet-delivery:deployment"]["allowAllAtOnce"] = True
    assert config.parse(data).deployment.strategy == "allAtOnce"  # type: ignore[union-attr]


def test_arm64_runtime_needs_arm64_image_is_checked_across_stacks() -> None:
    data = mutate("tooling", "dotnet-delivery:image", ["platforms"], ["linux/amd64"])
    cfg = config.parse(data)
    assert isinstance(cfg, config.ToolingConfig)
    problems = config.cross_stack_problems(cfg, [config.parse(raw("prod"))])
    assert problems == [
        'dotnet-delivery:service.cpuArchitecture (stack prod): "ARM64" needs linux/arm64 '
        'in the tooling stack\'s dotnet-delivery:image.platforms (["linux/amd64"])'
    ]


def test_latest_version_refused() -> None:
    (line,) = problems_of(mutate("tooling", "dotnet-delivery:image", ["version"], "latest"))
    assert line.startswith('dotnet-delivery:image.version: "latest"')


def test_test_listener_never_open_to_world() -> None:
    data = mutate("prod", "dotnet-delivery:loadBalancer", ["testListenerCidrs"], ["0.0.0.0/0"])
    (line,) = problems_of(data)
    assert line.startswith("dotnet-delivery:loadBalancer.testListenerCidrs")
    assert "internet" in line


def test_secure_values_never_appear_in_errors() -> None:
    data = raw("tooling")
    data["dotnet-delivery:pipeline"] = data["dotnet-delivery:pipeline"].replace(
        '"format": "slack"', '"format": "irc"'
    )
    lines = problems_of(data)
    assert lines and all("offline-secret-placeholder" not in line for line in lines)
    assert any(line.startswith("dotnet-delivery:pipeline.approval.format") for line in lines)


@pytest.mark.parametrize(
    ("key", "path", "value", "expected"),
    [
        ("dotnet-delivery:service", ["cpu"], 300, "dotnet-delivery:service.cpu: 300"),
        (
            "dotnet-delivery:accounts",
            ["tooling"],
            "1111111111112",
            'dotnet-delivery:accounts.tooling: "1111111111112"',
        ),
    ],
)
def test_preview_exits_2_with_one_line_per_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    path: list[str],
    value: object,
    expected: str,
) -> None:
    """The CLI entry point in this process (``python -m components.preview`` as a real
    process, exit code and no traceback, is covered in test_image_component.py)."""
    data = mutate("prod", key, path, value)
    data["dotnet-delivery:servce"] = {"cpu": 1}  # a misspelled top-level key too
    stack_file = tmp_path / "Pulumi.broken.yaml"
    stack_file.write_text(yaml.safe_dump({"config": data}))
    returncode = preview.main(["--stack", "prod", "--config", str(stack_file)])
    stdout, stderr = capsys.readouterr()
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines[0].startswith(expected) or lines[1].startswith(expected), lines
    assert any(line.startswith("dotnet-delivery:servce: unknown key") for line in lines)
    assert lines[-1].startswith("invalid configuration for stack 'prod': 2 problem(s)")
    assert stdout == ""


def test_health_check_command_must_be_exec_form() -> None:
    data = mutate(
        "prod",
        "dotnet-delivery:service",
        ["healthCheckCommand"],
        ["curl", "-f", "http://localhost:8080/health/live"],
    )
    (line,) = problems_of(data)
    assert line.startswith("dotnet-delivery:service.healthCheckCommand: [")
    assert "CMD first" in line


def test_environment_preview_checks_the_tooling_image_platforms(tmp_path: Path) -> None:
    from components import preview

    tooling = yaml.safe_load((PROJECT_ROOT / "Pulumi.tooling.yaml").read_text())
    tooling["config"]["dotnet-delivery:image"]["platforms"] = ["linux/amd64"]
    (tmp_path / "Pulumi.tooling.yaml").write_text(yaml.safe_dump(tooling))
    (tmp_path / "Pulumi.prod.yaml").write_text((PROJECT_ROOT / "Pulumi.prod.yaml").read_text())
    code, report, problems = preview.build_report("prod", project_dir=tmp_path)
    assert code == 2 and report == {}
    assert problems == [
        'dotnet-delivery:service.cpuArchitecture (stack prod): "ARM64" needs linux/arm64 '
        'in the tooling stack\'s dotnet-delivery:image.platforms (["linux/amd64"])'
    ]


def test_environment_program_fails_when_the_exported_image_lacks_its_architecture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pulumi

    from components import stacks

    errors: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", lambda message, *a, **k: errors.append(message))
    prod = config.parse(raw("prod"))
    assert isinstance(prod, config.EnvironmentConfig)
    stacks._check_platforms(prod, ["linux/amd64", "linux/arm64"])
    stacks._check_platforms(prod, None)  # not exported (yet): nothing to judge
    assert errors == []
    stacks._check_platforms(prod, ["linux/amd64"])
    assert errors == [
        'dotnet-delivery:service.cpuArchitecture: "ARM64" needs linux/arm64 in the tooling '
        'stack\'s dotnet-delivery:image.platforms (["linux/amd64"])'
    ]


def test_several_problems_in_one_section_are_all_reported() -> None:
    data = mutate("prod", "dotnet-delivery:service", ["cpu"], 300)
    data["dotnet-delivery:service"]["minCapacity"] = 9
    data["dotnet-delivery:service"]["maxCapacity"] = 3
    data["dotnet-delivery:service"]["logRetentionDays"] = 10
    keys = [line.split(":")[1].split(" ")[0] for line in problems_of(data)]
    assert sorted(keys) == [
        "service.cpu",
        "service.desiredCount",
        "service.logRetentionDays",
        "service.minCapacity",
    ]
    # Rules across sections (environment + deployment) are all reported too. (They run once
    # every section is valid on its own: pydantic does not judge a model whose fields fail.)
    data = mutate("prod", "dotnet-delivery:deployment", ["strategy"], "allAtOnce")
    data["dotnet-delivery:deployment"]["predefinedConfig"] = "CodeDeployDefault.ECSAllAtOnce"
    data["dotnet-delivery:deployment"]["engine"] = "ecs"
    data["dotnet-delivery:deployment"]["admissionHook"] = False
    keys = [line.split(":")[1].split(" ")[0] for line in problems_of(data)]
    assert sorted(keys) == ["deployment.predefinedConfig", "deployment.strategy"]


def test_host_name_must_be_a_dns_name() -> None:
    data = mutate("prod", "dotnet-delivery:loadBalancer", ["hostName"], "https://Orders")
    (line,) = problems_of(data)
    assert line.startswith('dotnet-delivery:loadBalancer.hostName: "https://Orders"')
    assert "not a DNS host name" in line


def test_settings_for_the_other_engine_are_warned_about(tmp_path: Path) -> None:
    from components import preview

    data = mutate("prod", "dotnet-delivery:deployment", ["bakeTimeMinutes"], 7)
    prod = config.parse(data)
    assert isinstance(prod, config.EnvironmentConfig)
    assert prod.warnings == [
        "dotnet-delivery:deployment.bakeTimeMinutes: only applies to engine ecs; "
        "this stack uses codedeploy, so it has no effect"
    ]
    assert config.parse(raw("prod")).warnings == []  # type: ignore[union-attr]
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump({"config": data}))
    code, report, _ = preview.build_report("prod", config_path=path)
    assert code == 0 and report["warnings"] == prod.warnings
    assert "#### Configuration warnings" in preview.markdown(report, code)

"""The task-definition renderer: Fargate sizes, digest-only images, secrets by reference,
and RegisterTaskDefinition wire format checked against botocore's own ``ecs`` model."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape
from botocore.validate import ParamValidator
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render.task_definition import (
    ADOT_CONTAINER_NAME,
    FARGATE_SIZES,
    RESERVED_ENV,
    AdotSidecar,
    HealthCheck,
    TaskDefinitionError,
    TaskDefinitionSpec,
    container_definitions,
    container_definitions_json,
    credential_reason,
    ecr_repository_arn,
    parse_digest_ref,
    task_definition_input,
    validate_fargate_size,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "eu-west-1"
DIGEST = "0123456789abcdef" * 4
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api@sha256:{DIGEST}"
ADOT_IMAGE = f"public.ecr.aws/aws-observability/aws-otel-collector@sha256:{DIGEST}"
EXEC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-api-prod-exec"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-api-prod-task"
SM_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:orders/db-AbC123"


def make_spec(**overrides: Any) -> TaskDefinitionSpec:
    base: dict[str, Any] = {
        "service_name": "orders-api",
        "environment_name": "prod",
        "image": IMAGE,
        "cpu": 512,
        "memory": 1024,
        "cpu_architecture": "ARM64",
        "aspnetcore_environment": "Production",
        "account_id": ACCOUNT,
        "region": REGION,
        "log_group_name": "/ecs/prod/orders-api",
        "health_check": HealthCheck.dotnet_self_probe("Orders.Api.dll"),
    }
    base.update(overrides)
    return TaskDefinitionSpec(**base)


def render(spec: TaskDefinitionSpec) -> dict[str, Any]:
    return task_definition_input(
        spec, family="orders-api-prod", execution_role_arn=EXEC_ROLE, task_role_arn=TASK_ROLE
    )


def app(spec: TaskDefinitionSpec) -> dict[str, Any]:
    return container_definitions(spec)[0]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


# ---- botocore validation (types, required members, ranges) + enum values --------------

_ECS_MODEL = botocore.session.get_session().get_service_model("ecs")
_REGISTER = _ECS_MODEL.operation_model("RegisterTaskDefinition").input_shape


def _enum_errors(value: Any, shape: Shape, path: str) -> list[str]:
    """botocore's ParamValidator does not check enums; walk the shape and do it here."""
    errors: list[str] = []
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        errors.append(f"{path}: {value!r} not in {enum}")
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                member = shape.members[key]
                errors += _enum_errors(item, member, f"{path}.{key}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            errors += _enum_errors(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            errors += _enum_errors(item, shape.value, f"{path}.{key}")
    return errors


def assert_valid_register_input(params: dict[str, Any]) -> None:
    report = ParamValidator().validate(params, _REGISTER)
    assert not report.has_errors(), report.generate_report()
    assert _enum_errors(params, _REGISTER, "input") == []


def test_the_enum_walker_catches_a_bad_enum_value() -> None:
    params = render(make_spec())
    params["networkMode"] = "bridgey"
    assert _enum_errors(params, _REGISTER, "input") == [
        "input.networkMode: 'bridgey' not in ['bridge', 'host', 'awsvpc', 'none']"
    ]


def test_botocore_validation_catches_a_wrong_type() -> None:
    params = render(make_spec())
    params["containerDefinitions"][0]["stopTimeout"] = "30"
    assert ParamValidator().validate(params, _REGISTER).has_errors()


# ---- Fargate sizes -------------------------------------------------------------------


def test_fargate_table_matches_aws() -> None:
    assert FARGATE_SIZES[256] == (512, 1024, 2048)
    assert FARGATE_SIZES[512] == (1024, 2048, 3072, 4096)
    assert FARGATE_SIZES[1024] == tuple(range(2048, 8193, 1024))
    assert FARGATE_SIZES[2048][0] == 4096 and FARGATE_SIZES[2048][-1] == 16384
    assert len(FARGATE_SIZES[2048]) == 13
    assert FARGATE_SIZES[4096][0] == 8192 and FARGATE_SIZES[4096][-1] == 30720
    assert FARGATE_SIZES[8192] == tuple(range(16384, 61441, 4096))
    assert FARGATE_SIZES[16384] == tuple(range(32768, 122881, 8192))
    assert list(FARGATE_SIZES) == [256, 512, 1024, 2048, 4096, 8192, 16384]


def test_invalid_cpu_lists_the_allowed_cpus() -> None:
    error = validate_fargate_size(300, 1024)
    assert error == (
        "cpu 300 is not a Fargate size; use one of 256, 512, 1024, 2048, 4096, 8192, 16384 "
        "(CPU units)"
    )


def test_invalid_memory_lists_the_memories_for_that_cpu() -> None:
    assert validate_fargate_size(256, 4096) == (
        "memory 4096 MiB is not valid with cpu 256 on Fargate; use 512, 1024, 2048 MiB"
    )
    assert validate_fargate_size(8192, 18432) == (
        "memory 18432 MiB is not valid with cpu 8192 on Fargate; "
        "use 16384..61440 in steps of 4096 MiB"
    )


@given(cpu=st.integers(0, 20000), memory=st.integers(0, 130000))
@settings(max_examples=100, deadline=None)
def test_validate_fargate_size_accepts_exactly_the_table(cpu: int, memory: int) -> None:
    in_table = memory in FARGATE_SIZES.get(cpu, ())
    assert (validate_fargate_size(cpu, memory) is None) == in_table


def test_spec_refuses_a_size_outside_the_table() -> None:
    with pytest.raises(TaskDefinitionError, match="memory 512 MiB is not valid with cpu 1024"):
        make_spec(cpu=1024, memory=512)


# ---- image references ----------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api:1.8.0",
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api:latest",
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api",
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api@sha256:{DIGEST.upper()}",
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api@sha256:{DIGEST[:-1]}",
        f"orders-api@sha512:{DIGEST}{DIGEST}",
    ],
)
def test_non_digest_images_are_refused(image: str) -> None:
    with pytest.raises(TaskDefinitionError, match=r"image: .* is not a digest reference"):
        make_spec(image=image)


def test_tag_refusal_explains_why() -> None:
    with pytest.raises(TaskDefinitionError, match="a tag is mutable"):
        parse_digest_ref("repo/orders-api:1.0.0")


def test_digest_ref_parts_and_ecr_arn() -> None:
    assert parse_digest_ref(IMAGE) == (
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api",
        f"sha256:{DIGEST}",
    )
    assert ecr_repository_arn(IMAGE) == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/orders-api"
    nested = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/team/orders-api@sha256:{DIGEST}"
    assert ecr_repository_arn(nested) == (
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team/orders-api"
    )
    assert ecr_repository_arn(ADOT_IMAGE) is None


# ---- plain environment vs secrets ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("DB_PASSWORD", "hunter2", "PASSWORD"),
        ("ApiKey", "abc", "APIKEY"),
        ("API_KEY", "abc", "APIKEY"),
        ("GITHUB_TOKEN", "abc", "TOKEN"),
        ("Jwt__SigningKey", "abc", "SIGNINGKEY"),
        ("Auth__ClientSecret", "abc", "SECRET"),
        ("AWS_SECRET_ACCESS_KEY", "abc", "SECRET"),
        ("ConnectionStrings__Db", "Host=db;Username=app;Password=s3cret", "a password"),
        ("DATABASE_URL", "postgres://app:s3cret@db:5432/orders", "a URL with a password"),
        ("SOME_SETTING", "AKIAABCDEFGHIJKLMNOP", "an AWS access key"),
    ],
)
def test_credentials_in_plain_environment_are_refused(name: str, value: str, reason: str) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        make_spec(environment={name: value})
    message = str(info.value)
    assert message.startswith(f"environment.{name}: looks like a credential")
    assert reason in message
    assert "under 'secrets' instead" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_PASSWORD_SECRET_ARN", SM_ARN),
        ("TOKEN_LIFETIME_MINUTES", "30"),
        ("Auth__TokenEndpoint", "https://login.example.com/token"),
        ("ConnectionStrings__Db", "Host=db;Database=orders;Username=app"),
        ("FEATURE_FLAGS", "checkout,search"),
        ("Serilog__MinimumLevel", "Information"),
    ],
)
def test_ordinary_configuration_is_accepted(name: str, value: str) -> None:
    assert credential_reason(name, value) is None
    assert env_of(app(make_spec(environment={name: value})))[name] == value


@pytest.mark.parametrize("name", sorted(RESERVED_ENV))
def test_renderer_owned_variables_cannot_be_overridden(name: str) -> None:
    with pytest.raises(TaskDefinitionError, match=f"environment.{name}: {name} is set by"):
        make_spec(environment={name: "x"})


def test_bad_variable_name_is_refused() -> None:
    with pytest.raises(TaskDefinitionError, match=r"environment.Logging:Level: .* not a valid"):
        make_spec(environment={"Logging:Level": "Debug"})


def test_a_name_in_both_environment_and_secrets_is_refused() -> None:
    with pytest.raises(TaskDefinitionError, match="also a plain environment variable"):
        make_spec(environment={"DB_HOST": "db"}, secrets={"DB_HOST": SM_ARN})


@pytest.mark.parametrize(
    "value_from",
    [
        SM_ARN,
        f"{SM_ARN}:password::",
        f"{SM_ARN}:password:AWSCURRENT:",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:orders/db",  # partial ARN
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orders/prod/db-password",
        "/orders/prod/db-password",
        "orders-db-password",
    ],
)
def test_secret_references_in_the_account_are_rendered_as_value_from(value_from: str) -> None:
    container = app(make_spec(secrets={"DB_PASSWORD": value_from}))
    assert container["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": value_from}]
    assert "DB_PASSWORD" not in env_of(container)


@pytest.mark.parametrize(
    "value_from",
    [
        f"arn:aws:secretsmanager:{REGION}:{OTHER_ACCOUNT}:secret:orders/db-AbC123",
        f"arn:aws:ssm:{REGION}:{OTHER_ACCOUNT}:parameter/orders/db",
    ],
)
def test_secrets_from_another_account_are_refused(value_from: str) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        make_spec(secrets={"DB_PASSWORD": value_from})
    assert str(info.value) == (
        f"secrets.DB_PASSWORD: {value_from!r} is in account {OTHER_ACCOUNT}, not this "
        f"environment's account {ACCOUNT}; secrets stay account-local - create it here"
    )


@pytest.mark.parametrize(
    ("value_from", "fragment"),
    [
        (f"arn:aws:s3:::{ACCOUNT}-bucket/key", "is a s3 ARN; secrets must come from"),
        ("arn:aws:ssm", "not a valid ARN"),
        (f"arn:aws:ssm:{REGION}:orders:parameter/x", "has no 12-digit account id"),
        (f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc", "kms ARN; secrets must come from"),
        (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:rotation:x", "not a Secrets Manager"),
        (f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/x", "not an SSM parameter ARN"),
        ("hunter2 with spaces", "neither a Secrets Manager/SSM ARN"),
    ],
)
def test_malformed_secret_references_are_refused(value_from: str, fragment: str) -> None:
    with pytest.raises(TaskDefinitionError, match=re.escape(fragment)):
        make_spec(secrets={"DB_PASSWORD": value_from})


# ---- the container's shape -----------------------------------------------------------


def test_app_container_hardening() -> None:
    spec = make_spec(stop_timeout_seconds=90)
    container = app(spec)
    assert container["name"] == "orders-api"
    assert container["image"] == IMAGE
    assert container["essential"] is True
    assert container["portMappings"] == [
        {"name": "http", "containerPort": 8080, "protocol": "tcp", "appProtocol": "http"}
    ]
    assert container["user"] == "1654"
    assert container["readonlyRootFilesystem"] is True
    assert container["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
    ]
    assert container["stopTimeout"] == 90
    assert container["linuxParameters"] == {
        "capabilities": {"drop": ["ALL"]},
        "initProcessEnabled": True,
    }
    assert env_of(container) == {
        "ASPNETCORE_ENVIRONMENT": "Production",
        "ASPNETCORE_HTTP_PORTS": "8080",
    }
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/prod/orders-api",
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "app",
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def test_task_level_input() -> None:
    params = render(make_spec(cpu=1024, memory=3072, cpu_architecture="X86_64"))
    assert {k: v for k, v in params.items() if k != "containerDefinitions"} == {
        "family": "orders-api-prod",
        "taskRoleArn": TASK_ROLE,
        "executionRoleArn": EXEC_ROLE,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "1024",
        "memory": "3072",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        # A volume with no host path is a Fargate bind mount on task ephemeral storage.
        "volumes": [{"name": "tmp"}],
    }
    assert_valid_register_input(params)


def test_stop_timeout_is_capped_at_fargates_maximum() -> None:
    assert app(make_spec(stop_timeout_seconds=120))["stopTimeout"] == 120
    with pytest.raises(TaskDefinitionError, match=r"stop_timeout_seconds: 121 must be 1..120"):
        make_spec(stop_timeout_seconds=121)


@pytest.mark.parametrize("user", ["0", "0:0", "root", "app"])
def test_root_or_named_users_are_refused(user: str) -> None:
    with pytest.raises(TaskDefinitionError, match=f"user: '{user}'"):
        make_spec(user=user)


def test_port_other_than_8080_is_refused() -> None:
    with pytest.raises(TaskDefinitionError, match="container_port: 80 "):
        make_spec(container_port=80)


def test_bad_role_arn_is_refused() -> None:
    with pytest.raises(TaskDefinitionError, match="task_role_arn: 'orders-task'"):
        task_definition_input(
            make_spec(), family="f", execution_role_arn=EXEC_ROLE, task_role_arn="orders-task"
        )


# ---- health checks -------------------------------------------------------------------


def test_dotnet_self_probe_health_check() -> None:
    check = app(make_spec())["healthCheck"]
    assert check == {
        "command": [
            "CMD",
            "dotnet",
            "/app/Orders.Api.dll",
            "--healthcheck",
            "http://localhost:8080/health/live",
        ],
        "interval": 30,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 60,
    }


def test_probe_binary_health_check() -> None:
    spec = make_spec(health_check=HealthCheck.probe_binary(interval_seconds=15))
    check = app(spec)["healthCheck"]
    assert check["command"] == ["CMD", "/app/healthprobe", "http://localhost:8080/health/live"]
    assert check["interval"] == 15


def test_no_health_check_leaves_it_to_the_load_balancer() -> None:
    assert "healthCheck" not in app(make_spec(health_check=None))


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (("CMD-SHELL", "curl -f http://localhost:8080/health/live || exit 1"), "no shell"),
        (("CMD", "curl", "-f", "http://localhost:8080/health/live"), "'curl'"),
        (("CMD", "/usr/bin/wget", "-q", "http://localhost:8080/"), "'/usr/bin/wget'"),
        (("CMD", "/bin/sh", "-c", "true"), "'/bin/sh'"),
        (("CMD",), "needs a program"),
    ],
)
def test_health_checks_that_cannot_run_in_a_chiseled_image_are_refused(
    command: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(TaskDefinitionError, match=re.escape(fragment)):
        HealthCheck(command=command)


def test_health_check_timing_ranges() -> None:
    with pytest.raises(TaskDefinitionError, match=r"interval_seconds: 4 is outside ECS's range"):
        HealthCheck.probe_binary(interval_seconds=4)
    with pytest.raises(TaskDefinitionError, match="must be shorter than interval_seconds"):
        HealthCheck.probe_binary(interval_seconds=10, timeout_seconds=10)
    with pytest.raises(TaskDefinitionError, match=re.escape("must be the app's .dll")):
        HealthCheck.dotnet_self_probe("Orders.Api")


# ---- the ADOT sidecar ----------------------------------------------------------------


def test_adot_sidecar_defaults() -> None:
    spec = make_spec(adot=AdotSidecar(image=ADOT_IMAGE))
    app_container, sidecar = container_definitions(spec)
    assert sidecar["name"] == ADOT_CONTAINER_NAME
    assert sidecar["image"] == ADOT_IMAGE
    assert sidecar["essential"] is False
    assert sidecar["command"] == ["--config=/etc/ecs/ecs-xray.yaml"]
    assert "secrets" not in sidecar
    assert sidecar["memory"] == 256
    assert sidecar["healthCheck"]["command"] == ["CMD", "/healthcheck"]
    assert sidecar["readonlyRootFilesystem"] is True
    assert "mountPoints" not in sidecar  # only the app's image seeds the /tmp volume
    assert sidecar["logConfiguration"]["options"]["awslogs-stream-prefix"] == "otel"
    assert app_container["dependsOn"] == [
        {"containerName": ADOT_CONTAINER_NAME, "condition": "START"}
    ]
    env = env_of(app_container)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4317"
    assert env["OTEL_SERVICE_NAME"] == "orders-api"
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment.name=prod"
    assert_valid_register_input(render(spec))


def test_adot_config_from_ssm_parameter() -> None:
    spec = make_spec(adot=AdotSidecar(image=ADOT_IMAGE, config_ssm_parameter="/otel/config"))
    sidecar = container_definitions(spec)[1]
    assert "command" not in sidecar
    assert sidecar["secrets"] == [{"name": "AOT_CONFIG_CONTENT", "valueFrom": "/otel/config"}]
    assert [r.value_from for r in spec.secret_references()] == ["/otel/config"]


def test_adot_image_must_be_pinned_and_be_the_collector() -> None:
    with pytest.raises(TaskDefinitionError, match=r"adot\.image: .* is not a digest reference"):
        AdotSidecar(image="public.ecr.aws/aws-observability/aws-otel-collector:v0.43.0")
    with pytest.raises(TaskDefinitionError, match="is not the ADOT collector"):
        AdotSidecar(image=f"docker.io/otel/opentelemetry-collector@sha256:{DIGEST}")


def test_adot_must_leave_room_for_the_app() -> None:
    with pytest.raises(TaskDefinitionError, match="must leave room for the app"):
        make_spec(cpu=256, memory=512, adot=AdotSidecar(image=ADOT_IMAGE, memory_mib=512))


def test_adot_config_parameter_in_another_account_is_refused() -> None:
    other = f"arn:aws:ssm:{REGION}:{OTHER_ACCOUNT}:parameter/otel"
    with pytest.raises(TaskDefinitionError, match=r"adot\.config_ssm_parameter: .* account-local"):
        make_spec(adot=AdotSidecar(image=ADOT_IMAGE, config_ssm_parameter=other))


def test_json_is_stable() -> None:
    spec = make_spec(environment={"B": "2", "A": "1"}, secrets={"Z": SM_ARN, "Y": "/p"})
    text = container_definitions_json(spec)
    assert text == container_definitions_json(replace(spec))
    assert json.loads(text)[0]["environment"][0]["name"] == "A"
    assert [s["name"] for s in json.loads(text)[0]["secrets"]] == ["Y", "Z"]


# ---- property: any generated spec renders a valid RegisterTaskDefinition input --------

_SIZES = [(cpu, mem) for cpu, mems in FARGATE_SIZES.items() for mem in mems]
_env_names = st.from_regex(r"\A[A-Z][A-Z0-9_]{0,15}\Z").filter(
    lambda n: n not in RESERVED_ENV and credential_reason(n, "") is None
)
_env_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40
).filter(lambda v: credential_reason("X", v) is None)
_secret_names = st.from_regex(r"\A[A-Z][A-Z0-9_]{0,15}\Z").filter(lambda n: n not in RESERVED_ENV)
_name_part = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z")


@st.composite
def _secret_refs(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["sm-full", "sm-partial", "sm-json", "ssm-arn", "ssm-name"]))
    name = draw(_name_part)
    if kind == "sm-full":
        suffix = draw(st.from_regex(r"\A[A-Za-z0-9]{6}\Z"))
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-{suffix}"
    if kind == "sm-partial":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}"
    if kind == "sm-json":
        key = draw(st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9_]{0,10}\Z"))
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}:{key}::"
    if kind == "ssm-arn":
        return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name}/value"
    return f"/{name}/value"


@st.composite
def specs(draw: st.DrawFn) -> TaskDefinitionSpec:
    cpu, memory = draw(st.sampled_from(_SIZES))
    env = draw(st.dictionaries(_env_names, _env_values, max_size=6))
    secrets = draw(
        st.dictionaries(_secret_names.filter(lambda n: n not in env), _secret_refs(), max_size=5)
    )
    health = draw(
        st.sampled_from(
            [
                None,
                HealthCheck.dotnet_self_probe("Orders.Api.dll"),
                HealthCheck.probe_binary(),
            ]
        )
    )
    adot = None
    if draw(st.booleans()):
        adot = AdotSidecar(
            image=ADOT_IMAGE,
            config_ssm_parameter=draw(st.sampled_from([None, "/otel/config"])),
            cpu=min(64, cpu // 4),
            memory_mib=min(256, memory // 2),
        )
    return make_spec(
        cpu=cpu,
        memory=memory,
        cpu_architecture=draw(st.sampled_from(["ARM64", "X86_64"])),
        environment=env,
        secrets=secrets,
        health_check=health,
        stop_timeout_seconds=draw(st.integers(1, 120)),
        adot=adot,
    )


@given(spec=specs())
@settings(max_examples=75, deadline=None, suppress_health_check=[HypothesisHealthCheck.too_slow])
def test_any_spec_renders_a_valid_register_task_definition_input(
    spec: TaskDefinitionSpec,
) -> None:
    params = render(spec)
    assert_valid_register_input(params)
    containers = params["containerDefinitions"]
    app_container = containers[0]
    # the image is the digest it was given; every secret is a reference, never a value
    assert app_container["image"] == spec.image
    assert {s["name"]: s["valueFrom"] for s in app_container["secrets"]} == dict(spec.secrets)
    assert not set(env_of(app_container)) & set(spec.secrets)
    for value_from in spec.secrets.values():
        assert value_from not in env_of(app_container).values()
    assert params["runtimePlatform"]["cpuArchitecture"] == spec.cpu_architecture
    assert validate_fargate_size(int(params["cpu"]), int(params["memory"])) is None
    assert len(containers) == (2 if spec.adot else 1)
    assert all(c["readonlyRootFilesystem"] for c in containers)
    assert json.loads(json.dumps(params)) == params

"""The offline engine records what CrossGuard would see, with realistic mock outputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.testing import Match, Recording, parse_stack_file, program_from_file, run_program
from components.testing.engine import PROJECT_ROOT, SECRET, SECRET_PLACEHOLDER

PROGRAM = """
import json
import pulumi
import pulumi_aws as aws

class Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Box", name, None, opts)
        self.repo = aws.ecr.Repository(
            "repo", name="orders-api", image_tag_mutability="IMMUTABLE",
            opts=pulumi.ResourceOptions(parent=self, protect=True, ignore_changes=["tags"]))
        self.register_outputs({"url": self.repo.repository_url})

box = Box("box")
svc = aws.ecs.Service("svc", name="orders", cluster="arn:aws:ecs:eu-west-1:1:cluster/c",
    opts=pulumi.ResourceOptions(ignore_changes=["taskDefinition", "loadBalancers"],
                                depends_on=[box.repo]))
secret = aws.secretsmanager.SecretVersion(
    "webhook", secret_id="x", secret_string=pulumi.Output.secret("https://hooks.example/T0/B0/XYZ"))
ref = pulumi.StackReference("acme/dotnet-delivery/tooling")
pulumi.export("url", box.repo.repository_url)
pulumi.export("webhook", secret.secret_string)
pulumi.export("fromTooling", ref.get_output("imageRef"))
"""


def render_test_program(tmp_path: Path) -> Recording:
    main = tmp_path / "__main__.py"
    main.write_text(PROGRAM)
    image = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/orders-api@sha256:" + "ab" * 32
    return run_program(
        program_from_file(main),
        project="p",
        stack="dev",
        config={},
        account_id="222222222222",
        region="eu-west-1",
        stack_outputs=lambda name: {"imageRef": image} if name.endswith("/tooling") else {},
    )


def test_records_types_parents_options_and_wire_names(tmp_path: Path) -> None:
    rec = render_test_program(tmp_path)
    box = rec.one("test:index:Box")
    assert not box.custom
    repo = rec.one("aws:ecr/repository:Repository")
    assert repo.parent == box.urn
    assert repo.urn == "urn:pulumi:dev::p::test:index:Box$aws:ecr/repository:Repository::repo"
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE"  # camelCase wire name
    assert repo.options["protect"] is True
    assert repo.options["ignoreChanges"] == ["tags"]
    assert rec.children(box) == [repo]
    svc = rec.one("aws:ecs/service:Service")
    assert svc.options["ignoreChanges"] == ["taskDefinition", "loadBalancers"]
    assert svc.options["dependsOn"] == [repo.urn]
    assert svc.parent is None or "pulumi:pulumi:Stack" in svc.parent


def test_realistic_outputs(tmp_path: Path) -> None:
    rec = render_test_program(tmp_path)
    repo = rec.one("aws:ecr/repository:Repository")
    assert repo.outputs["repositoryUrl"] == (
        "222222222222.dkr.ecr.eu-west-1.amazonaws.com/orders-api"
    )
    assert repo.outputs["arn"] == "arn:aws:ecr:eu-west-1:222222222222:repository/orders-api"
    assert rec.exports["url"] == repo.outputs["repositoryUrl"]
    # A component's register_outputs are recorded as its outputs.
    assert rec.one("test:index:Box").outputs == {"url": repo.outputs["repositoryUrl"]}
    assert re.match(r"^[^@]+@sha256:[0-9a-f]{64}$", rec.exports["fromTooling"])


def test_secrets_are_recorded_masked(tmp_path: Path) -> None:
    rec = render_test_program(tmp_path)
    version = rec.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretString"] == SECRET
    assert rec.exports["webhook"] == SECRET
    assert "hooks.example" not in json.dumps(rec.to_dict())


def test_queries_partial_matching(tmp_path: Path) -> None:
    rec = render_test_program(tmp_path)
    rec.has_resource("aws:ecr/repository:Repository", {"name": Match.regex("^orders")})
    assert rec.count("aws:*") == 3
    assert rec.find("aws:ecs/service:Service", {"name": Match.absent()}) == []
    try:
        rec.has_resource("aws:ecr/repository:Repository", {"imageTagMutability": "MUTABLE"})
    except AssertionError as exc:
        assert "IMMUTABLE" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("has_resource should have failed")


def test_renders_are_isolated(tmp_path: Path) -> None:
    a = render_test_program(tmp_path)
    b = render_test_program(tmp_path)
    assert [r.urn for r in a] == [r.urn for r in b]
    assert len(a.resources) == len(b.resources) == 5


def test_secure_config_values_are_never_decrypted() -> None:
    stack = parse_stack_file(
        "config:\n  dotnet-delivery:token:\n    secure: AAABAxyz\n  aws:region: eu-west-1\n"
    )
    assert stack.config["dotnet-delivery:token"] == SECRET_PLACEHOLDER
    assert stack.secret_keys == {"dotnet-delivery:token"}


def test_preview_json_and_markdown(tmp_path: Path) -> None:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "components.preview",
            "--stack",
            "tooling",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out_json.read_text())
    assert report["project"] == "dotnet-delivery" and report["stack"] == "tooling"
    keys = {"urn", "type", "name", "parent", "provider", "custom", "inputs", "outputs", "options"}
    assert report["resources"] and all(keys <= set(r) for r in report["resources"])
    assert isinstance(report["violations"], list)
    assert "AAABAJ0Example" not in out_json.read_text() + result.stdout
    assert SECRET_PLACEHOLDER not in out_json.read_text() + result.stdout
    assert out_md.read_text().startswith("### `pulumi preview` (offline) — stack `tooling`")


def test_stack_reference_exports_are_cached_on_disk_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components.testing import engine

    (tmp_path / "__main__.py").write_text(
        "import pulumi\npulumi.export('imageRef', 'repo@sha256:' + 'a' * 64)\n"
    )
    (tmp_path / "Pulumi.tooling.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    monkeypatch.delenv(engine.NO_DISK_CACHE_ENV, raising=False)
    first = engine.stack_reference_outputs(tmp_path)("acme/dotnet-delivery/tooling")
    assert first == {"imageRef": "repo@sha256:" + "a" * 64}
    [cached] = list((tmp_path / engine.DISK_CACHE_DIR).glob("exports-tooling-*.json"))
    assert json.loads(cached.read_text()) == first
    # A new process (empty memory caches) reads the file and renders nothing.
    engine._REFERENCE_CACHE.clear()
    monkeypatch.setattr(
        engine,
        "cached_render",
        lambda *a, **k: (_ for _ in ()).throw(AssertionError("rendered despite a cache hit")),
    )
    assert engine.stack_reference_outputs(tmp_path)("tooling") == first
    # Any change to the program (or the stack file) is a different key.
    (tmp_path / "__main__.py").write_text("import pulumi\npulumi.export('imageRef', 'x')\n")
    key_after_edit = engine._reference_cache_file(tmp_path, "tooling", "config: {}\n")
    assert key_after_edit is not None and key_after_edit != cached
    monkeypatch.setenv(engine.NO_DISK_CACHE_ENV, "1")
    assert engine._reference_cache_file(tmp_path, "tooling", "config: {}\n") is None


def test_another_teams_program_renders_with_its_own_account_and_region(
    tmp_path: Path, offline_stack: object
) -> None:
    (tmp_path / "__main__.py").write_text(
        "import pulumi_aws as aws\n"
        "aws.sns.Topic('alerts', name='team-alerts')\n"
        "aws.ecr.Repository('repo', name='team/app', image_tag_mutability='IMMUTABLE')\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: ap-southeast-2\n")
    rec = offline_stack(  # type: ignore[operator]
        "dev", project_dir=tmp_path, project="team-app", account_id="999999999999"
    )
    topic = rec.one("aws:sns/topic:Topic")
    assert topic.urn == "urn:pulumi:dev::team-app::aws:sns/topic:Topic::alerts"
    assert topic.outputs["arn"] == "arn:aws:sns:ap-southeast-2:999999999999:team-alerts"
    repo = rec.one("aws:ecr/repository:Repository")
    assert repo.outputs["repositoryUrl"] == (
        "999999999999.dkr.ecr.ap-southeast-2.amazonaws.com/team/app"
    )

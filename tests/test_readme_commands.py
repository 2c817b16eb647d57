"""The README's commands: each one that can run here is run (by this file or by .ci/run);
the rest need the Pulumi CLI or AWS and are listed as such. Its sample output is real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import preview
from components.testing.engine import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()

#: Run by .ci/run (setup, the test command itself, the prod preview).
RUN_BY_CI = {
    "bash scripts/setup.sh && .venv/bin/python -m components.preview --stack prod",
    ".venv/bin/python -m pytest",
    "bash scripts/setup.sh",
}
#: Need the Pulumi CLI, a Pulumi backend or AWS credentials: cannot run here.
CLOUD_ONLY = re.compile(r"^(pulumi |cd policy && pulumi |aws )")


def bash_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_every_readme_command_is_accounted_for() -> None:
    commands = bash_commands()
    assert commands, "the README shows no commands?"
    for command in commands:
        if command in RUN_BY_CI or CLOUD_ONLY.match(command):
            continue
        assert command.startswith(".venv/bin/python -m components.preview --stack prod"), command


def test_ci_runs_the_readme_test_command_and_setup() -> None:
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in ci
    assert "\n.venv/bin/python -m pytest\n" in ci
    assert '.venv/bin/python -m components.preview --stack "$stack"' in ci


def test_preview_usage_line_matches_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    usage = next(c for c in bash_commands() if "[--config FILE]" in c)
    with pytest.raises(SystemExit):
        preview.main(["--help"])
    help_text = capsys.readouterr().out
    for flag in re.findall(r"--[a-z]+", usage):
        assert flag in help_text


def test_deploy_step_help_runs_as_documented() -> None:
    assert "python components/runtime/deploy.py --help" in README
    result = subprocess.run(
        [sys.executable, "components/runtime/deploy.py", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--image-uri" in result.stdout


def test_config_error_sample_is_what_preview_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = re.search(r"```text\n\$ (.*?)\n(.*?)```", README, flags=re.S)
    assert sample, "README lost its config-error sample"
    command, output = sample.group(1), sample.group(2).splitlines()
    assert command.endswith("--stack prod --config broken.yaml")
    doc = yaml.safe_load((PROJECT_ROOT / "Pulumi.prod.yaml").read_text())
    doc["config"]["dotnet-delivery:service"]["cpu"] = 300
    doc["config"]["dotnet-delivery:servce"] = {"cpu": 512}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    code = preview.main(["--stack", "prod", "--config", str(broken)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[0] == output[0]
    assert err[1].startswith(output[1].rstrip("…").rstrip())
    assert err[-1] == output[-1]


def test_the_offline_engine_example_runs(offline_stack: object) -> None:
    """The README's "Testing your own stacks" example, executed as written."""
    block = re.search(r"```python\n(# conftest.py.*?)```", README, flags=re.S)
    assert block, "README lost its offline-engine example"
    namespace: dict[str, object] = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["pytest_plugins"] == ["components.testing.fixtures"]
    test = namespace["test_prod_service"]
    assert callable(test)
    test(offline_stack)


def test_the_example_policy_config_is_valid_for_the_pack() -> None:
    import json

    from components.testing import policy_runner
    from components.testing.engine import render
    from policy.guardrails import POLICIES

    assert "policy-config.example.json" in README
    config = json.loads((PROJECT_ROOT / "policy-config.example.json").read_text())
    resolved = policy_runner.resolve_config(POLICIES, config)  # raises on unknown keys/values
    assert str(resolved["ecs-image-digest-pinned"].level.value) == "mandatory"
    assert str(resolved["log-group-retention"].level.value) == "advisory"
    # The example stacks stay free of mandatory violations under it.
    for stack in ("tooling", "prod"):
        violations = policy_runner.evaluate(
            [r.to_dict() for r in render(stack, cache=True).resources], config=config
        )
        assert [v for v in violations if v.enforcement_level == "mandatory"] == []


def test_the_release_flow_diagram_shows_the_pipelines_stages_in_order() -> None:
    from components.testing.engine import render

    diagram = re.search(r"```mermaid\n(.*?)```", README, flags=re.S)
    assert diagram, "README lost its diagram"
    labels = dict(re.findall(r"\b([A-Z]+)\[([A-Za-z]+)[\]<]", diagram.group(1)))
    chain: list[str] = []
    for line in diagram.group(1).splitlines():
        if "-->" not in line or "-. " in line or "assume" in line or "push once" in line:
            continue
        for node in re.findall(r"\b([A-Z]+)\b(?=\[|\s*-->|\s*$)", line):
            name = labels.get(node)
            if name and (not chain or chain[-1] != name):
                chain.append(name)
    pipeline = render("tooling", cache=True).one("aws:codepipeline/pipeline:Pipeline")
    assert chain == [stage["name"] for stage in pipeline.inputs["stages"]]

"""The release timeline (pure) and its place in ``preview``."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from components import preview
from components.render import timeline as tl
from components.testing.engine import PROJECT_ROOT

BASE = tl.DeploySettings(environment="prod", engine="codedeploy", strategy="canary")


def test_codedeploy_canary_steps_and_worst_case() -> None:
    t = tl.deploy_timeline(
        replace(BASE, canary_minutes=5, termination_wait_minutes=10, hook_timeout_seconds=300)
    )
    names = [s.name for s in t.steps]
    assert names == [
        "register task definition + start deployment",
        "green tasks start and pass health checks",
        "AfterAllowTestTraffic smoke hook",
        "production traffic shift",
        "termination wait (rollback window)",
        "blue deregistration delay",
    ]
    health = tl.TASK_START_SECONDS + 2 * 15
    assert t.worst_case_seconds == tl.DEPLOY_OVERHEAD_SECONDS + health + 300 + 300 + 600 + 30


def test_ecs_engine_uses_bake_time_and_post_test_hook() -> None:
    t = tl.deploy_timeline(replace(BASE, engine="ecs", strategy="allAtOnce", bake_time_minutes=3))
    by_name = {s.name: s.seconds for s in t.steps}
    assert by_name["POST_TEST_TRAFFIC_SHIFT smoke hook"] == 300
    assert by_name["production traffic shift"] == 0
    assert by_name["bake time (rollback window)"] == 180
    assert "termination wait (rollback window)" not in by_name


def test_migration_comes_first() -> None:
    t = tl.deploy_timeline(replace(BASE, migration_timeout_minutes=7))
    assert t.steps[0].name == "EF Core migration task" and t.steps[0].seconds == 420


@given(st.integers(1, 99), st.integers(1, 60))
def test_linear_shift_reaches_100_percent(percent: int, minutes: int) -> None:
    seconds = tl.shift_seconds(
        "linear", canary_minutes=1, linear_percent=percent, linear_minutes=minutes
    )
    steps = math.ceil(100 / percent)
    assert seconds == (steps - 1) * minutes * 60
    # The traffic after the last step is 100 %.
    assert min(100, steps * percent) == 100


@given(st.integers(0, 60), st.integers(0, 60), st.integers(30, 900))
def test_worst_case_grows_with_every_wait(bake: int, wait: int, hook: int) -> None:
    a = tl.deploy_timeline(
        replace(
            BASE, bake_time_minutes=bake, termination_wait_minutes=wait, hook_timeout_seconds=hook
        )
    )
    b = tl.deploy_timeline(
        replace(
            BASE,
            bake_time_minutes=bake,
            termination_wait_minutes=wait + 1,
            hook_timeout_seconds=hook,
        )
    )
    assert b.worst_case_seconds == a.worst_case_seconds + 60
    assert a.worst_case_seconds == sum(s.seconds for s in a.steps)


def test_lead_time_excludes_approval_and_warns_over_budget() -> None:
    dev = tl.deploy_timeline(replace(BASE, environment="dev", engine="ecs", strategy="allAtOnce"))
    stage = tl.deploy_timeline(replace(BASE, environment="stage"))
    lt = tl.lead_time(
        build_minutes=12,
        stages=[("dev", dev, 3, False), ("stage", stage, 3, False), ("prod", stage, 3, True)],
        budget_minutes=15,
    )
    approval = [s for s in lt.steps if s.name.startswith("manual approval")]
    assert approval and approval[0].seconds == 0
    assert (
        lt.to_staging_seconds
        == 12 * 60 + dev.worst_case_seconds + 180 + stage.worst_case_seconds + 180
    )
    assert any("commit to artifact is estimated at 12 min" in w for w in lt.warnings)
    assert any("over the lead-time budget of 15 min" in w for w in lt.warnings)


def test_preview_prints_timelines_and_lead_time(capsys: object) -> None:
    code, report, problems = preview.build_report("tooling", cache=True)
    assert code == 0 and not problems
    titles = [t["title"] for t in report["timelines"]]
    for env in ("dev", "stage", "prod"):
        assert any(t.startswith(f"Release timeline {env} (") for t in titles), titles
    assert titles[-1].startswith("Lead time (commit → prod: ")
    assert report["timelines"][-1]["warnings"] == []  # the example fits its budget
    _, env_report, _ = preview.build_report("prod", cache=True)
    assert env_report["timelines"][0]["title"].startswith(
        "Release timeline prod (codedeploy, canary): worst case "
    )


def test_preview_warns_when_a_config_exceeds_its_budget(tmp_path: Path) -> None:
    doc = yaml.safe_load((PROJECT_ROOT / "Pulumi.tooling.yaml").read_text())
    doc["config"]["dotnet-delivery:pipeline"]["leadTimeBudgetMinutes"] = 10
    doc["config"]["dotnet-delivery:pipeline"]["stagingBudgetMinutes"] = 5
    doc["config"]["dotnet-delivery:build"]["estimateMinutes"] = 14
    path = tmp_path / "Pulumi.tooling.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, report, problems = preview.build_report("tooling", config_path=path)
    assert code == 0 and not problems
    warnings = report["timelines"][-1]["warnings"]
    assert any(
        "commit to artifact is estimated at 14 min; the target is 10 min" in w for w in warnings
    )
    assert any("over the lead-time budget of 10 min" in w for w in warnings)
    assert any(
        w.startswith("artifact to stage takes up to ") and "over the target of 5 min" in w
        for w in warnings
    )
    assert any(line.startswith("  WARNING: ") for line in preview.timeline_lines(report))


def test_admission_hook_is_part_of_the_ecs_timeline() -> None:
    ecs = replace(BASE, engine="ecs", strategy="allAtOnce")
    without = tl.deploy_timeline(ecs)
    with_hook = tl.deploy_timeline(replace(ecs, admission_hook_seconds=60))
    assert with_hook.steps[1].name == "PRE_SCALE_UP digest admission hook"
    assert with_hook.worst_case_seconds == without.worst_case_seconds + 60
    _, stage, _ = preview.build_report("stage", cache=True)
    assert any(
        "PRE_SCALE_UP digest admission hook" in line for line in stage["timelines"][0]["lines"]
    )

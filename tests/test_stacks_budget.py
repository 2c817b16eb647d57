"""The per-environment AWS Budgets budget (``components.stacks._environment_budget``).

Each environment stack with ``dotnet-delivery:budget`` gets one monthly COST budget filtered
by the ``Application`` AND ``Environment`` tags, alerting on ACTUAL and FORECASTED spend; a
stack without the section gets none. Expected values come from the stack files themselves.
"""

from __future__ import annotations

import functools

import pytest
import yaml

from components import config as config_mod
from components import naming
from components.testing import Recording, cached_render, parse_stack_file
from components.testing.engine import PROJECT_ROOT

BUDGET = "aws:budgets/budget:Budget"
ENVIRONMENTS = ("dev", "stage", "prod")
TAG_KEYS = ("Application", "CostCenter", "Environment", "Owner")


def _stack_text(stack: str) -> str:
    return (PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")


def _config(text: str) -> config_mod.EnvironmentConfig:
    cfg = config_mod.parse(parse_stack_file(text).runtime_config())
    assert isinstance(cfg, config_mod.EnvironmentConfig)
    return cfg


@functools.cache
def _without_budget_text() -> str:
    doc = yaml.safe_load(_stack_text("dev"))
    assert "dotnet-delivery:budget" in doc["config"], "dev no longer has a budget to remove"
    del doc["config"]["dotnet-delivery:budget"]
    return yaml.safe_dump(doc, sort_keys=False)


@functools.cache
def _without_budget() -> Recording:
    return cached_render("dev", stack_file=parse_stack_file(_without_budget_text()))


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_every_environment_stack_file_configures_a_budget(stack: str) -> None:
    # The parametrised checks below are vacuous for a stack without one; say so loudly.
    assert _config(_stack_text(stack)).budget is not None, stack


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_budget_is_a_monthly_cost_budget_with_the_configured_limit(stack: str) -> None:
    cfg = _config(_stack_text(stack))
    assert cfg.budget is not None
    budget = cached_render(stack).one(BUDGET)
    assert budget.inputs["name"] == naming.Names(cfg.app.name, stack).budget
    assert budget.inputs["budgetType"] == "COST"
    assert budget.inputs["timeUnit"] == "MONTHLY"
    assert float(budget.inputs["limitAmount"]) == pytest.approx(cfg.budget.monthly_limit_usd)
    assert budget.inputs["limitUnit"] == "USD"
    # pulumi-aws v7: filter_expression "requires metrics"; the API takes one metric.
    assert budget.inputs["metrics"] == "UnblendedCost"
    assert "costFilters" not in budget.inputs and "costTypes" not in budget.inputs


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_budget_filters_on_application_and_environment_tags(stack: str) -> None:
    cfg = _config(_stack_text(stack))
    budget = cached_render(stack).one(BUDGET)
    assert budget.inputs["filterExpression"] == {
        "ands": [
            {"tags": {"key": "Application", "values": [cfg.app.name], "matchOptions": ["EQUALS"]}},
            {"tags": {"key": "Environment", "values": [stack], "matchOptions": ["EQUALS"]}},
        ]
    }


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_budget_alerts_actual_and_forecasted_spend_to_the_configured_subscribers(
    stack: str,
) -> None:
    cfg = _config(_stack_text(stack))
    assert cfg.budget is not None
    notifications = cached_render(stack).one(BUDGET).inputs["notifications"]
    assert sorted(n["notificationType"] for n in notifications) == ["ACTUAL", "FORECASTED"]
    for notification in notifications:
        assert notification["comparisonOperator"] == "GREATER_THAN"
        assert notification["threshold"] == float(cfg.budget.alert_threshold_percent)
        assert notification["thresholdType"] == "PERCENTAGE"
        assert notification["subscriberEmailAddresses"] == cfg.budget.subscriber_emails
        assert "subscriberSnsTopicArns" not in notification


def test_prod_alerts_every_configured_subscriber() -> None:
    notifications = cached_render("prod").one(BUDGET).inputs["notifications"]
    for notification in notifications:
        assert sorted(notification["subscriberEmailAddresses"]) == [
            "finops@example.com",
            "team-orders@example.com",
        ]
        assert notification["threshold"] == 80.0


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_budget_carries_the_four_tags(stack: str) -> None:
    cfg = _config(_stack_text(stack))
    tags = cached_render(stack).one(BUDGET).inputs["tags"]
    assert set(TAG_KEYS) <= set(tags)
    assert tags["Application"] == cfg.app.name
    assert tags["Environment"] == stack
    assert tags["Owner"] == cfg.app.owner
    assert tags["CostCenter"] == cfg.app.cost_center


def test_a_stack_without_a_budget_section_gets_no_budget() -> None:
    assert _config(_without_budget_text()).budget is None
    rec = _without_budget()
    assert rec.count(BUDGET) == 0
    # ... while the rest of the environment still renders.
    assert rec.count("aws:ecs/service:Service") == 1


def test_the_tooling_stack_has_no_budget() -> None:
    assert cached_render("tooling").count(BUDGET) == 0

"""Alarms users feel: shapes (pulumi_aws MetricAlarm args, botocore PutMetricAlarm) and the
promise that one transient error never fails a release."""

from __future__ import annotations

import inspect
import re
from typing import Any

import botocore.session
import pulumi_aws.cloudwatch as cloudwatch
import pytest
from botocore.validate import ParamValidator
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render.alarms import (
    ALARM_PRESETS,
    AlarmSettingsError,
    AlarmSpec,
    AlarmThresholds,
    alarm_names,
    alarm_specs,
    preset,
    put_metric_alarm_input,
)
from components.render.deployment import MAX_CODEDEPLOY_ALARMS

LB = "app/orders-api-prod-alb/50dc6c495c0c9188"
TGS = {
    "blue": "targetgroup/orders-api-prod-tg-blue/73e2d6bc24d8a067",
    "green": "targetgroup/orders-api-prod-tg-green/83e2d6bc24d8a068",
}


def name(purpose: str) -> str:
    return f"orders-api-prod-{purpose}"


def specs(thresholds: AlarmThresholds | None = None) -> list[AlarmSpec]:
    return alarm_specs(
        thresholds or AlarmThresholds(),
        alarm_name=name,
        load_balancer=LB,
        target_groups=TGS,
        cluster_name="orders-api-prod",
        service_name="orders-api-prod-svc",
    )


def by_name(all_specs: list[AlarmSpec], purpose: str) -> AlarmSpec:
    return next(s for s in all_specs if s.name == name(purpose))


_CW = botocore.session.get_session().get_service_model("cloudwatch")
_PUT = _CW.operation_model("PutMetricAlarm").input_shape


def assert_valid_put(spec: AlarmSpec) -> None:
    request = put_metric_alarm_input(spec)
    report = ParamValidator().validate(request, _PUT)
    assert not report.has_errors(), report.generate_report()
    members = _PUT.members
    for key in ("ComparisonOperator", "Statistic", "TreatMissingData"):
        enum = getattr(members[key], "enum", None)
        if key in request and enum:
            assert request[key] in enum, (key, request[key])


def assert_metric_alarm_args(args: dict[str, Any]) -> None:
    params = inspect.signature(cloudwatch.MetricAlarmArgs.__init__).parameters
    assert set(args) <= set(params) - {"__self__"}, set(args) - set(params)
    query = inspect.signature(cloudwatch.MetricAlarmMetricQueryArgs.__init__).parameters
    metric = inspect.signature(cloudwatch.MetricAlarmMetricQueryMetricArgs.__init__).parameters
    for q in args.get("metric_queries", []):
        assert set(q) <= set(query) and "id" in q
        if "metric" in q:
            assert set(q["metric"]) <= set(metric)
            assert {"metric_name", "period", "stat"} <= set(q["metric"])


# ---- the alarms ----------------------------------------------------------------------


def test_the_alarm_set_and_names() -> None:
    all_specs = specs()
    assert [s.name for s in all_specs] == [
        "orders-api-prod-target-5xx",
        "orders-api-prod-elb-5xx",
        "orders-api-prod-p99-latency",
        "orders-api-prod-p95-latency",
        "orders-api-prod-unhealthy-hosts-blue",
        "orders-api-prod-unhealthy-hosts-green",
        "orders-api-prod-task-shortfall",
    ]
    assert alarm_names(AlarmThresholds(), alarm_name=name) == [s.name for s in all_specs]
    assert len(all_specs) <= MAX_CODEDEPLOY_ALARMS


def test_optional_alarms_can_be_disabled() -> None:
    thresholds = AlarmThresholds(elb_5xx_count=None, p95_latency_seconds=None)
    names = [s.name for s in specs(thresholds)]
    assert name("elb-5xx") not in names and name("p95-latency") not in names
    assert names == alarm_names(thresholds, alarm_name=name)


def test_target_5xx_alarm() -> None:
    spec = by_name(specs(), "target-5xx")
    assert spec.to_args() == {
        "name": "orders-api-prod-target-5xx",
        "alarm_description": "More than 10 target 5xx responses in 3 of 5 60s periods",
        "comparison_operator": "GreaterThanThreshold",
        "evaluation_periods": 5,
        "datapoints_to_alarm": 3,
        "threshold": 10.0,
        "treat_missing_data": "notBreaching",
        "namespace": "AWS/ApplicationELB",
        "metric_name": "HTTPCode_Target_5XX_Count",
        "statistic": "Sum",
        "period": 60,
        "dimensions": {"LoadBalancer": LB},
    }


def test_latency_alarms_use_extended_statistics() -> None:
    all_specs = specs(preset("prod"))
    p99, p95 = by_name(all_specs, "p99-latency"), by_name(all_specs, "p95-latency")
    assert (p99.metric_name, p99.extended_statistic, p99.threshold) == (
        "TargetResponseTime",
        "p99",
        1.5,
    )
    assert (p95.extended_statistic, p95.threshold) == ("p95", 0.75)
    assert p99.statistic is None and "statistic" not in p99.to_args()
    assert p99.evaluate_low_sample_count_percentiles == "ignore"


def test_unhealthy_hosts_per_target_group() -> None:
    blue = by_name(specs(), "unhealthy-hosts-blue")
    assert blue.metric_name == "UnHealthyHostCount"
    assert blue.statistic == "Maximum"
    assert blue.dimensions == {"TargetGroup": TGS["blue"], "LoadBalancer": LB}
    assert blue.threshold == 0.0


def test_task_shortfall_is_metric_math_over_container_insights() -> None:
    spec = by_name(specs(), "task-shortfall")
    args = spec.to_args()
    assert "metric_name" not in args and "namespace" not in args
    assert args["treat_missing_data"] == "missing"
    assert (args["evaluation_periods"], args["datapoints_to_alarm"]) == (5, 5)
    queries = {q["id"]: q for q in args["metric_queries"]}
    assert queries["shortfall"]["expression"] == "desired - running"
    assert queries["shortfall"]["return_data"] is True
    for query_id, metric in (("desired", "DesiredTaskCount"), ("running", "RunningTaskCount")):
        assert queries[query_id]["return_data"] is False
        assert queries[query_id]["metric"] == {
            "metric_name": metric,
            "namespace": "ECS/ContainerInsights",
            "dimensions": {"ClusterName": "orders-api-prod", "ServiceName": "orders-api-prod-svc"},
            "period": 60,
            "stat": "Average",
        }


def test_every_alarm_is_valid_for_pulumi_and_cloudwatch() -> None:
    for spec in specs():
        assert_metric_alarm_args(spec.to_args())
        assert_valid_put(spec)
        cloudwatch.MetricAlarmArgs(**spec.to_args())


def test_put_validation_catches_a_bad_request() -> None:
    request = put_metric_alarm_input(by_name(specs(), "target-5xx"))
    request["EvaluationPeriods"] = "5"
    assert ParamValidator().validate(request, _PUT).has_errors()


def test_arn_suffixes_are_checked() -> None:
    full_arn = f"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/{LB}"
    with pytest.raises(AlarmSettingsError, match=r"load_balancer: .* is not an ALB arn_suffix"):
        alarm_specs(
            AlarmThresholds(),
            alarm_name=name,
            load_balancer=full_arn,
            target_groups=TGS,
            cluster_name="c",
            service_name="s",
        )
    with pytest.raises(AlarmSettingsError, match=r"target_groups\.green: .* arn_suffix"):
        alarm_specs(
            AlarmThresholds(),
            alarm_name=name,
            load_balancer=LB,
            target_groups={"blue": TGS["blue"], "green": "orders-api-prod-tg-green"},
            cluster_name="c",
            service_name="s",
        )


# ---- thresholds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"datapoints_to_alarm": 1}, "alarms.datapoints_to_alarm: 1 must be 2..evaluation"),
        ({"datapoints_to_alarm": 6}, "datapoints_to_alarm: 6 must be 2..evaluation_periods (5)"),
        (
            {"shortfall_datapoints_to_alarm": 1},
            "alarms.shortfall_datapoints_to_alarm: 1 must be 2..shortfall_evaluation_periods",
        ),
        ({"period_seconds": 30}, "alarms.period_seconds: 30 must be a multiple of 60"),
        ({"target_5xx_count": 0}, "alarms.target_5xx_count: 0 must be at least 1"),
        ({"elb_5xx_count": 0.5}, "alarms.elb_5xx_count: 0.5 must be at least 1"),
        ({"p95_latency_seconds": 3.0}, "p95_latency_seconds: 3.0 is above p99_latency_seconds"),
        ({"p99_latency_seconds": 0}, "alarms.p99_latency_seconds: 0 must be in (0, 60]"),
        ({"unhealthy_hosts": -1}, "alarms.unhealthy_hosts: -1 must not be negative"),
        (
            {"period_seconds": 3600, "evaluation_periods": 25},
            "evaluation_periods: 25 x 3600s is more than CloudWatch's one-day",
        ),
    ],
)
def test_thresholds_that_would_flap_or_be_invalid_are_refused(
    kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(AlarmSettingsError, match=re.escape(fragment)):
        AlarmThresholds(**kwargs)


def test_presets_are_stricter_towards_prod() -> None:
    dev, stage, prod = preset("dev"), preset("stage"), preset("prod")
    assert dev.target_5xx_count > stage.target_5xx_count > prod.target_5xx_count
    assert dev.p99_latency_seconds > stage.p99_latency_seconds > prod.p99_latency_seconds
    assert set(ALARM_PRESETS) == {"dev", "stage", "prod"}
    with pytest.raises(AlarmSettingsError, match="no preset for environment 'qa'"):
        preset("qa")


# ---- property: one transient error never fails a release ------------------------------


def alarms_on(spec: AlarmSpec, series: list[float]) -> bool:
    """CloudWatch's M-of-N rule over per-period values (missing data: none here)."""
    assert spec.comparison_operator == "GreaterThanThreshold"
    breaching = [v > spec.threshold for v in series]
    n, m = spec.evaluation_periods, spec.datapoints_to_alarm
    windows = [breaching[i : i + n] for i in range(max(1, len(series) - n + 1))]
    return any(sum(w) >= m for w in windows)


@st.composite
def thresholds(draw: st.DrawFn) -> AlarmThresholds:
    periods = draw(st.integers(2, 10))
    shortfall_periods = draw(st.integers(2, 10))
    p99 = draw(st.floats(0.05, 30, allow_nan=False))
    return AlarmThresholds(
        period_seconds=draw(st.sampled_from([60, 120, 300])),
        evaluation_periods=periods,
        datapoints_to_alarm=draw(st.integers(2, periods)),
        target_5xx_count=draw(st.integers(1, 100)),
        elb_5xx_count=draw(st.one_of(st.none(), st.integers(1, 100))),
        p99_latency_seconds=p99,
        p95_latency_seconds=draw(st.one_of(st.none(), st.floats(0.01, p99))),
        unhealthy_hosts=draw(st.integers(0, 3)),
        shortfall_evaluation_periods=shortfall_periods,
        shortfall_datapoints_to_alarm=draw(st.integers(2, shortfall_periods)),
    )


@given(
    t=thresholds(),
    spike_at=st.integers(0, 19),
    spike=st.floats(0, 1e6, allow_nan=False),
)
@settings(max_examples=80, deadline=None)
def test_a_single_bad_period_never_alarms_and_a_sustained_one_does(
    t: AlarmThresholds, spike_at: int, spike: float
) -> None:
    for spec in specs(t):
        assert_valid_put(spec)
        assert spec.datapoints_to_alarm >= 2
        quiet = [0.0] * 20
        one_spike = list(quiet)
        one_spike[spike_at] = spike
        assert not alarms_on(spec, one_spike), spec.name
        sustained = [spec.threshold + 1] * spec.evaluation_periods
        assert alarms_on(spec, sustained), spec.name
        if spec.metric_name in ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"):
            assert not alarms_on(spec, [1.0] * 20), "one error per period must not alarm"

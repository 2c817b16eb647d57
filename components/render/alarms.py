"""The alarms users feel, as pure specs (no Pulumi): the component creates one
``aws.cloudwatch.MetricAlarm(name, **spec.to_args())`` per :class:`AlarmSpec` and hands
:func:`alarm_names` to the deployment engine's rollback (CodeDeploy ``alarm_configuration``
or the ECS service's ``alarms``).

The alarms
    * **target 5xx** - ``AWS/ApplicationELB HTTPCode_Target_5XX_Count`` (Sum) per load
      balancer: errors the app returned.
    * **ELB 5xx** - ``HTTPCode_ELB_5XX_Count`` (Sum): the 502/503/504s the load balancer
      itself returns when targets fail, reset connections or are missing - what users see
      when the app crashes or shuts down badly (optional, on by default).
    * **p99 and p95 latency** - ``TargetResponseTime`` extended statistics (seconds).
    * **unhealthy hosts** - ``UnHealthyHostCount`` (Maximum), one alarm per target group
      (blue and green: the metric needs the target group dimension).
    * **running-task shortfall** - metric math over Container Insights: ``DesiredTaskCount -
      RunningTaskCount`` for the service.

One transient error never fails a release
    Every alarm is "M of N": ``datapoints_to_alarm`` >= 2 breaching periods within
    ``evaluation_periods`` (so a single bad minute, however bad, never alarms), count
    thresholds are >= 1 with ``GreaterThanThreshold`` (so one error per minute never
    breaches), percentile alarms ignore low-sample periods, and periods without data are
    ``notBreaching`` (no requests means no errors). The shortfall alarm treats missing data
    as ``missing`` (no Container Insights data is "unknown", never a rollback) and has its
    own, longer M-of-N because replacing a task takes minutes.

The 5xx and latency alarms use the load-balancer dimension only, so they cover the blue and
the green target group (and test-listener traffic) with names that do not change when
traffic moves; dimension values are the ALB's and target groups' ``arn_suffix`` strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

ALB_NAMESPACE = "AWS/ApplicationELB"
CONTAINER_INSIGHTS_NAMESPACE = "ECS/ContainerInsights"
MAX_EVALUATION_SECONDS = 86400  # PutMetricAlarm: evaluation_periods * period <= one day

_LB_SUFFIX_RE = re.compile(r"^app/[A-Za-z0-9-]+/[0-9a-z]+$")
_TG_SUFFIX_RE = re.compile(r"^targetgroup/[A-Za-z0-9-]+/[0-9a-z]+$")
_LABEL_RE = re.compile(r"^[a-z][a-z0-9-]*$")


class AlarmSettingsError(ValueError):
    """Alarm thresholds or inputs that would make alarms flap, never fire, or be invalid."""


@dataclass(frozen=True)
class AlarmThresholds:
    """Per-environment thresholds (see :data:`ALARM_PRESETS`)."""

    period_seconds: int = 60
    evaluation_periods: int = 5
    datapoints_to_alarm: int = 3
    #: errors per period above which a period breaches (``>``; at least 1)
    target_5xx_count: float = 10
    #: ``None`` disables the ELB 5xx alarm
    elb_5xx_count: float | None = 10
    p99_latency_seconds: float = 2.0
    #: ``None`` disables the p95 alarm
    p95_latency_seconds: float | None = 1.0
    #: unhealthy targets above which a period breaches (0: any unhealthy target)
    unhealthy_hosts: float = 0
    #: tasks short of desired above which a period breaches (0: any shortfall)
    task_shortfall: float = 0
    shortfall_evaluation_periods: int = 5
    shortfall_datapoints_to_alarm: int = 5

    def __post_init__(self) -> None:
        if self.period_seconds % 60 or not 60 <= self.period_seconds <= MAX_EVALUATION_SECONDS:
            raise AlarmSettingsError(
                f"alarms.period_seconds: {self.period_seconds} must be a multiple of 60 "
                "(load balancer metrics are per minute)"
            )
        self._m_of_n("", self.evaluation_periods, self.datapoints_to_alarm)
        self._m_of_n(
            "shortfall_", self.shortfall_evaluation_periods, self.shortfall_datapoints_to_alarm
        )
        for name, value in (
            ("target_5xx_count", self.target_5xx_count),
            ("elb_5xx_count", self.elb_5xx_count),
        ):
            if value is not None and value < 1:
                raise AlarmSettingsError(
                    f"alarms.{name}: {value} must be at least 1 so a single error per period "
                    "never breaches"
                )
        for name, value in (
            ("p99_latency_seconds", self.p99_latency_seconds),
            ("p95_latency_seconds", self.p95_latency_seconds),
        ):
            if value is not None and not 0 < value <= 60:
                raise AlarmSettingsError(f"alarms.{name}: {value} must be in (0, 60] seconds")
        if (
            self.p95_latency_seconds is not None
            and self.p95_latency_seconds > self.p99_latency_seconds
        ):
            raise AlarmSettingsError(
                f"alarms.p95_latency_seconds: {self.p95_latency_seconds} is above "
                f"p99_latency_seconds {self.p99_latency_seconds}; p95 <= p99 always holds"
            )
        for name, value in (
            ("unhealthy_hosts", self.unhealthy_hosts),
            ("task_shortfall", self.task_shortfall),
        ):
            if value < 0:
                raise AlarmSettingsError(f"alarms.{name}: {value} must not be negative")

    def _m_of_n(self, prefix: str, periods: int, datapoints: int) -> None:
        if not 2 <= datapoints <= periods:
            raise AlarmSettingsError(
                f"alarms.{prefix}datapoints_to_alarm: {datapoints} must be 2..{prefix}"
                f"evaluation_periods ({periods}) so one bad period never alarms"
            )
        if periods * self.period_seconds > MAX_EVALUATION_SECONDS:
            raise AlarmSettingsError(
                f"alarms.{prefix}evaluation_periods: {periods} x {self.period_seconds}s is more "
                "than CloudWatch's one-day evaluation range"
            )


#: Sensible per-environment defaults: dev tolerates more, prod alarms sooner.
ALARM_PRESETS: dict[str, AlarmThresholds] = {
    "dev": AlarmThresholds(
        target_5xx_count=25,
        elb_5xx_count=25,
        p99_latency_seconds=3.0,
        p95_latency_seconds=1.5,
        datapoints_to_alarm=4,
    ),
    "stage": AlarmThresholds(),
    "prod": AlarmThresholds(
        target_5xx_count=5,
        elb_5xx_count=5,
        p99_latency_seconds=1.5,
        p95_latency_seconds=0.75,
    ),
}


def preset(environment: str) -> AlarmThresholds:
    """The preset thresholds of ``dev``/``stage``/``prod``."""
    try:
        return ALARM_PRESETS[environment]
    except KeyError:
        raise AlarmSettingsError(
            f"alarms: no preset for environment {environment!r}; use one of "
            f"{', '.join(ALARM_PRESETS)} or give thresholds explicitly"
        ) from None


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch metric alarm; field names are ``aws.cloudwatch.MetricAlarm`` args."""

    name: str
    alarm_description: str
    comparison_operator: str
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    treat_missing_data: str
    namespace: str | None = None
    metric_name: str | None = None
    statistic: str | None = None
    extended_statistic: str | None = None
    period: int | None = None
    dimensions: Mapping[str, str] | None = None
    evaluate_low_sample_count_percentiles: str | None = None
    #: metric math (``MetricAlarmMetricQueryArgs`` kwargs), instead of a single metric
    metric_queries: tuple[Mapping[str, Any], ...] = field(default=())

    def to_args(self) -> dict[str, Any]:
        """Kwargs for ``aws.cloudwatch.MetricAlarm`` (unset fields left out)."""
        args: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == ():
                continue
            if f.name == "dimensions":
                value = dict(value)
            elif f.name == "metric_queries":
                value = [_plain(q) for q in value]
            args[f.name] = value
        return args


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _purposes(thresholds: AlarmThresholds, target_group_labels: Sequence[str]) -> list[str]:
    purposes = ["target-5xx"]
    if thresholds.elb_5xx_count is not None:
        purposes.append("elb-5xx")
    purposes.append("p99-latency")
    if thresholds.p95_latency_seconds is not None:
        purposes.append("p95-latency")
    for label in target_group_labels:
        if not _LABEL_RE.match(label):
            raise AlarmSettingsError(
                f"target group label {label!r} must be lowercase letters, digits and '-'"
            )
        purposes.append(f"unhealthy-hosts-{label}")
    purposes.append("task-shortfall")
    return purposes


def alarm_names(
    thresholds: AlarmThresholds,
    *,
    alarm_name: Callable[[str], str],
    target_group_labels: Sequence[str] = ("blue", "green"),
) -> list[str]:
    """The names of :func:`alarm_specs`' alarms, in order, without needing any ARN (wire
    the engine's rollback before the load balancer exists)."""
    return [alarm_name(p) for p in _purposes(thresholds, target_group_labels)]


def _m_of_n(thresholds: AlarmThresholds) -> str:
    return (
        f"in {thresholds.datapoints_to_alarm} of {thresholds.evaluation_periods} "
        f"{thresholds.period_seconds}s periods"
    )


def alarm_specs(
    thresholds: AlarmThresholds,
    *,
    alarm_name: Callable[[str], str],
    load_balancer: str,
    target_groups: Mapping[str, str],
    cluster_name: str,
    service_name: str,
) -> list[AlarmSpec]:
    """The service's alarms.

    ``alarm_name`` maps a purpose (``"target-5xx"``) to the physical name (``Names.alarm``).
    ``load_balancer`` is the ALB's ``arn_suffix`` (``app/<name>/<id>``); ``target_groups``
    maps a label (``blue``/``green``) to a target group's ``arn_suffix``.
    """
    if not _LB_SUFFIX_RE.match(load_balancer):
        raise AlarmSettingsError(
            f"load_balancer: {load_balancer!r} is not an ALB arn_suffix ('app/<name>/<id>')"
        )
    for label, suffix in target_groups.items():
        if not _TG_SUFFIX_RE.match(suffix):
            raise AlarmSettingsError(
                f"target_groups.{label}: {suffix!r} is not a target group arn_suffix "
                "('targetgroup/<name>/<id>')"
            )
    if not target_groups:
        raise AlarmSettingsError("target_groups: the blue and green target groups are needed")
    t = thresholds
    lb = {"LoadBalancer": load_balancer}
    names = iter(alarm_names(t, alarm_name=alarm_name, target_group_labels=list(target_groups)))

    def alb_alarm(
        description: str,
        metric_name: str,
        threshold: float,
        *,
        dimensions: Mapping[str, str] = lb,
        statistic: str | None = None,
        extended_statistic: str | None = None,
    ) -> AlarmSpec:
        return AlarmSpec(
            name=next(names),
            alarm_description=f"{description} {_m_of_n(t)}",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=t.evaluation_periods,
            datapoints_to_alarm=t.datapoints_to_alarm,
            threshold=float(threshold),
            treat_missing_data="notBreaching",
            namespace=ALB_NAMESPACE,
            metric_name=metric_name,
            statistic=statistic,
            extended_statistic=extended_statistic,
            period=t.period_seconds,
            dimensions=dict(dimensions),
            evaluate_low_sample_count_percentiles="ignore" if extended_statistic else None,
        )

    specs = [
        alb_alarm(
            f"More than {t.target_5xx_count:g} target 5xx responses",
            "HTTPCode_Target_5XX_Count",
            t.target_5xx_count,
            statistic="Sum",
        )
    ]
    if t.elb_5xx_count is not None:
        specs.append(
            alb_alarm(
                f"More than {t.elb_5xx_count:g} load-balancer 5xx responses (502/503/504)",
                "HTTPCode_ELB_5XX_Count",
                t.elb_5xx_count,
                statistic="Sum",
            )
        )
    for stat, limit in (("p99", t.p99_latency_seconds), ("p95", t.p95_latency_seconds)):
        if limit is not None:
            specs.append(
                alb_alarm(
                    f"Target response time {stat} above {limit:g}s",
                    "TargetResponseTime",
                    limit,
                    extended_statistic=stat,
                )
            )
    for label, suffix in target_groups.items():
        specs.append(
            alb_alarm(
                f"More than {t.unhealthy_hosts:g} unhealthy targets in the {label} target group",
                "UnHealthyHostCount",
                t.unhealthy_hosts,
                dimensions={"TargetGroup": suffix, "LoadBalancer": load_balancer},
                statistic="Maximum",
            )
        )
    service = {"ClusterName": cluster_name, "ServiceName": service_name}

    def task_count(metric: str) -> dict[str, Any]:
        return {
            "metric_name": metric,
            "namespace": CONTAINER_INSIGHTS_NAMESPACE,
            "dimensions": dict(service),
            "period": t.period_seconds,
            "stat": "Average",
        }

    specs.append(
        AlarmSpec(
            name=next(names),
            alarm_description=(
                f"Running tasks more than {t.task_shortfall:g} short of desired in "
                f"{t.shortfall_datapoints_to_alarm} of {t.shortfall_evaluation_periods} "
                f"{t.period_seconds}s periods"
            ),
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=t.shortfall_evaluation_periods,
            datapoints_to_alarm=t.shortfall_datapoints_to_alarm,
            threshold=float(t.task_shortfall),
            treat_missing_data="missing",
            metric_queries=(
                {
                    "id": "shortfall",
                    "expression": "desired - running",
                    "label": "Tasks short of desired",
                    "return_data": True,
                },
                {"id": "desired", "metric": task_count("DesiredTaskCount"), "return_data": False},
                {"id": "running", "metric": task_count("RunningTaskCount"), "return_data": False},
            ),
        )
    )
    return specs


def put_metric_alarm_input(spec: AlarmSpec) -> dict[str, Any]:
    """``spec`` as a CloudWatch ``PutMetricAlarm`` request (wire names; for validation
    against botocore's model and for code that calls the API directly)."""
    request: dict[str, Any] = {
        "AlarmName": spec.name,
        "AlarmDescription": spec.alarm_description,
        "ComparisonOperator": spec.comparison_operator,
        "EvaluationPeriods": spec.evaluation_periods,
        "DatapointsToAlarm": spec.datapoints_to_alarm,
        "Threshold": spec.threshold,
        "TreatMissingData": spec.treat_missing_data,
    }
    optional = {
        "Namespace": spec.namespace,
        "MetricName": spec.metric_name,
        "Statistic": spec.statistic,
        "ExtendedStatistic": spec.extended_statistic,
        "Period": spec.period,
        "EvaluateLowSampleCountPercentile": spec.evaluate_low_sample_count_percentiles,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    if spec.dimensions:
        request["Dimensions"] = [{"Name": k, "Value": v} for k, v in spec.dimensions.items()]
    if spec.metric_queries:
        metrics = []
        for query in spec.metric_queries:
            item: dict[str, Any] = {"Id": query["id"], "ReturnData": query["return_data"]}
            if "expression" in query:
                item["Expression"] = query["expression"]
            if "label" in query:
                item["Label"] = query["label"]
            if "metric" in query:
                metric = query["metric"]
                item["MetricStat"] = {
                    "Metric": {
                        "Namespace": metric["namespace"],
                        "MetricName": metric["metric_name"],
                        "Dimensions": [
                            {"Name": k, "Value": v} for k, v in metric["dimensions"].items()
                        ],
                    },
                    "Period": metric["period"],
                    "Stat": metric["stat"],
                }
            metrics.append(item)
        request["Metrics"] = metrics
    return request

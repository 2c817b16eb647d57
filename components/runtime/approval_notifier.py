"""Manual-approval notifier: SNS (CodePipeline approval) -> Slack or Microsoft Teams webhook.

Subscribed to the approval topic. CodePipeline publishes the JSON documented in "JSON data
format for manual approval notifications in CodePipeline"
(https://docs.aws.amazon.com/codepipeline/latest/userguide/approvals-json-format.html)::

    {"region": ..., "consoleLink": ..., "approval": {"pipelineName", "stageName",
     "actionName", "token", "expires", "externalEntityLink", "approvalReviewLink",
     "customData"}}

Release metadata travels in the approval action's ``CustomData`` as compact JSON (CodePipeline
resolves ``#{Namespace.Variable}`` references in it before publishing; an action
configuration value is at most 1000 characters). :func:`render_custom_data` writes it::

    {"release": 1,                      # format version (required to be recognised)
     "service": "orders-api",
     "version": "1.8.0-build.247-git.a1b2c3d4e5f6",
     "commit": "<git sha>",
     "digest": "sha256:<64 hex>",
     "environment": "prod",             # the environment waiting for approval
     "tests": "stage integration: 148 passed, 0 failed"   # or {"passed": 148, "failed": 0,
                                                          #     "skipped": 2, "report": url}
    }

Every field is optional; a ``customData`` that is absent, not JSON, or JSON without
``"release"`` is shown as a free-text note and the message still names the pipeline, stage,
action and approval link.

Formats (env ``FORMAT``): ``slack`` - Block Kit ``{"text", "blocks"}`` for an incoming webhook
(https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit/blocks);
``teams`` - an Adaptive Card 1.4 in a ``message`` envelope, the payload a Teams *Workflows*
"When a Teams webhook request is received" flow (the replacement for retired Office 365
connectors) and an incoming webhook both accept
(https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook,
https://support.microsoft.com/office/create-incoming-webhooks-with-workflows-for-microsoft-teams-8ae491c7-0394-4861-ba59-055e33f75498).

The webhook URL is read from Secrets Manager (``WEBHOOK_SECRET_ARN``; the secret string is the
URL or ``{"url": "..."}``) on the first invocation and cached for the life of the execution
environment. It is never logged and never part of an exception message. Delivery retries 429
(honouring ``Retry-After``) and 5xx/timeouts/connection errors with bounded exponential backoff
(``WEBHOOK_ATTEMPTS``, ``WEBHOOK_TIMEOUT_SECONDS``, ``WEBHOOK_BASE_DELAY_SECONDS``,
``WEBHOOK_MAX_DELAY_SECONDS``); when it gives up it logs one ERROR line and raises, so the
asynchronous SNS invocation is retried by Lambda. Retries are budgeted from the invocation's
remaining time (``context.get_remaining_time_in_millis()``) less
:data:`FINAL_LOG_MARGIN_SECONDS`: no attempt (its timeout is cut to what is left) and no wait
is started that cannot finish inside the budget, so the function gives up - and logs why -
before Lambda kills it, however the Lambda timeout and the retry settings compare.

Self-contained (stdlib + boto3): ships as a one-file Lambda asset. Handler: ``handler``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

logger = logging.getLogger("approval_notifier")
logger.setLevel(logging.INFO)

FORMATS = ("slack", "teams")
CUSTOM_DATA_VERSION = 1
CUSTOM_DATA_MAX_CHARS = 1000  # CodePipeline ActionConfigurationValue limit
_FIELD_MAX = 300  # longest value shown per field (Slack allows 2000 per text object)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Seconds of the invocation kept back for the give-up ERROR line and the raise.
FINAL_LOG_MARGIN_SECONDS = 5.0
# The shortest attempt worth starting (an attempt's timeout is cut to the time left).
MIN_ATTEMPT_SECONDS = 1.0


class NotifierError(Exception):
    """Configuration or input the notifier cannot work with."""


class WebhookError(NotifierError):
    """The webhook did not take the message; ``permanent`` if retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# --------------------------------------------------------------------------------------------
# Release metadata in customData
# --------------------------------------------------------------------------------------------


def render_custom_data(
    *,
    service: str,
    version: str,
    commit: str,
    digest: str,
    environment: str,
    tests: str | Mapping[str, Any] = "",
) -> str:
    """The approval action's ``CustomData`` (values may be ``#{Namespace.Variable}`` references)."""
    data: dict[str, Any] = {
        "release": CUSTOM_DATA_VERSION,
        "service": service,
        "version": version,
        "commit": commit,
        "digest": digest,
        "environment": environment,
    }
    if tests:
        data["tests"] = dict(tests) if isinstance(tests, Mapping) else tests
    text = json.dumps(data, separators=(",", ":"))
    if len(text) > CUSTOM_DATA_MAX_CHARS:
        raise ValueError(
            f"customData: {len(text)} characters; CodePipeline allows at most "
            f"{CUSTOM_DATA_MAX_CHARS} - shorten tests or the other values"
        )
    return text


@dataclass(frozen=True)
class Release:
    """What the approver needs to know; fields are '' when not provided."""

    service: str = ""
    version: str = ""
    commit: str = ""
    digest: str = ""
    environment: str = ""
    tests: str = ""
    report: str = ""
    note: str = ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _FIELD_MAX else text[: _FIELD_MAX - 1] + "…"


def _tests_summary(tests: Any) -> tuple[str, str]:
    if isinstance(tests, Mapping):
        counts = [
            f"{tests[key]} {key}"
            for key in ("passed", "failed", "skipped")
            if isinstance(tests.get(key), int) and not isinstance(tests.get(key), bool)
        ]
        report = tests.get("report")
        summary = _text(tests.get("summary")) or ", ".join(counts)
        return summary, report if isinstance(report, str) and _is_web_link(report) else ""
    return _text(tests), ""


def parse_custom_data(custom_data: Any) -> Release:
    """Release metadata from ``customData``; anything unrecognised becomes a free-text note."""
    if custom_data is None or (isinstance(custom_data, str) and not custom_data.strip()):
        return Release()
    if not isinstance(custom_data, str):
        return Release(note=_text(custom_data))
    try:
        data = json.loads(custom_data)
    except ValueError:
        return Release(note=_text(custom_data))
    if not isinstance(data, dict) or "release" not in data:
        return Release(note=_text(custom_data))
    tests, report = _tests_summary(data.get("tests"))
    return Release(
        service=_text(data.get("service")),
        version=_text(data.get("version")),
        commit=_text(data.get("commit")),
        digest=_text(data.get("digest")),
        environment=_text(data.get("environment")),
        tests=tests,
        report=report,
        note=_text(data.get("note")),
    )


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    pipeline: str
    stage: str
    action: str
    review_link: str
    console_link: str
    external_link: str
    expires: str
    region: str


def _is_web_link(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urllib.parse.urlsplit(value)
    return parsed.scheme in ("https", "http") and bool(parsed.netloc)


def parse_notification(notification: Any) -> tuple[Approval, Release]:
    """Validate CodePipeline's approval JSON; errors name the missing/invalid key."""
    if not isinstance(notification, Mapping):
        raise NotifierError(
            f"notification: expected a JSON object, got {type(notification).__name__}"
        )
    approval = notification.get("approval")
    if not isinstance(approval, Mapping):
        raise NotifierError(
            "notification.approval: missing; not a CodePipeline approval notification"
        )
    for key in ("pipelineName", "stageName", "actionName", "approvalReviewLink"):
        if not isinstance(approval.get(key), str) or not approval[key].strip():
            raise NotifierError(
                f"notification.approval.{key}: missing or empty ({approval.get(key)!r})"
            )
    if not _is_web_link(approval["approvalReviewLink"]):
        raise NotifierError(
            f"notification.approval.approvalReviewLink: {approval['approvalReviewLink']!r} "
            "is not an http(s) URL"
        )
    parsed = Approval(
        pipeline=_text(approval["pipelineName"]),
        stage=_text(approval["stageName"]),
        action=_text(approval["actionName"]),
        review_link=approval["approvalReviewLink"],
        console_link=str(notification.get("consoleLink") or ""),
        external_link=str(approval.get("externalEntityLink") or ""),
        expires=_text(approval.get("expires")),
        region=_text(notification.get("region")),
    )
    return parsed, parse_custom_data(approval.get("customData"))


def _short(value: str, keep: int) -> str:
    return value if len(value) <= keep else value[:keep]


def _title(approval: Approval, release: Release) -> str:
    if release.service:
        version = f" {release.version}" if release.version else ""
        target = f" → {release.environment}" if release.environment else ""
        return f"Approval needed: {release.service}{version}{target}"
    return f"Approval needed: {approval.pipeline} / {approval.stage} / {approval.action}"


def _facts(approval: Approval, release: Release) -> list[tuple[str, str]]:
    missing = "not provided"
    digest = release.digest
    if digest.startswith("sha256:") and len(digest) > 19:
        digest = f"{digest[:19]}…{digest[-6:]}"
    return [
        ("Service", release.service or missing),
        ("Version", release.version or missing),
        ("Environment", release.environment or approval.stage),
        ("Commit", _short(release.commit, 12) or missing),
        ("Image digest", digest or missing),
        ("Stage tests", release.tests or missing),
        ("Pipeline", approval.pipeline),
        ("Expires", approval.expires or missing),
    ]


def _links(approval: Approval, release: Release) -> list[tuple[str, str]]:
    links = [("Review in CodePipeline", approval.review_link)]
    if _is_web_link(release.report):
        links.append(("Test report", release.report))
    if _is_web_link(approval.external_link):
        links.append(("Details", approval.external_link))
    if _is_web_link(approval.console_link):
        links.append(("Pipeline", approval.console_link))
    return links


def _slack_escape(text: str) -> str:
    # Slack mrkdwn control characters (and what turns text into a mention/link).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(approval: Approval, release: Release) -> dict[str, Any]:
    title = _title(approval, release)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _short(title, 150)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value)}"}
                for name, value in _facts(approval, release)
            ][:10],
        },
    ]
    if release.digest:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"`{_slack_escape(release.digest)}`"},
            }
        )
    if release.note:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(release.note)}}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": label},
                    "url": url,
                    "action_id": f"link-{index}",
                    **({"style": "primary"} if index == 0 else {}),
                }
                for index, (label, url) in enumerate(_links(approval, release))
            ],
        }
    )
    context = f"{approval.pipeline} · stage {approval.stage} · action {approval.action}"
    if approval.region:
        context += f" · {approval.region}"
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(context)}]}
    )
    return {"text": f"{_slack_escape(title)}: {approval.review_link}", "blocks": blocks}


def _teams(approval: Approval, release: Release) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _title(approval, release),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [{"title": n, "value": v} for n, v in _facts(approval, release)],
        },
    ]
    if release.digest:
        body.append(
            {
                "type": "TextBlock",
                "text": release.digest,
                "fontType": "Monospace",
                "size": "Small",
                "wrap": True,
            }
        )
    if release.note:
        body.append({"type": "TextBlock", "text": release.note, "wrap": True})
    body.append(
        {
            "type": "TextBlock",
            "text": f"{approval.pipeline} · stage {approval.stage} · action {approval.action}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [
            {"type": "Action.OpenUrl", "title": label, "url": url}
            for label, url in _links(approval, release)
        ],
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def build_message(notification: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """The webhook payload for one approval notification (``fmt``: ``slack`` or ``teams``)."""
    if fmt not in FORMATS:
        raise NotifierError(f"FORMAT: {fmt!r} is not supported; use one of {list(FORMATS)}")
    approval, release = parse_notification(notification)
    return _slack(approval, release) if fmt == "slack" else _teams(approval, release)


# --------------------------------------------------------------------------------------------
# Delivery
# --------------------------------------------------------------------------------------------


def _retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now())


def _open(request: urllib.request.Request, timeout: float) -> Any:
    return urllib.request.build_opener().open(request, timeout=timeout)


def post_with_retries(
    url: str,
    payload: Mapping[str, Any],
    *,
    attempts: int = 5,
    base_delay: float = 1.0,
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    opener: Callable[..., Any] = _open,
    max_delay: float = 20.0,
    remaining: Callable[[], float] | None = None,
) -> int:
    """POST ``payload`` as JSON; retry 429/5xx/timeouts/connection errors; return the 2xx status.

    Delays double from ``base_delay`` (capped at ``max_delay``); a 429's ``Retry-After`` is
    honoured (also capped). Other 4xx are permanent and not retried. Raises
    :class:`WebhookError` whose message never contains ``url``.

    ``remaining`` (seconds left for delivery; ``None``: unbounded) is the time budget: an
    attempt's timeout is cut to the time left, no attempt starts with less than
    ``min(timeout, MIN_ATTEMPT_SECONDS)`` left, and no wait starts unless it and such an
    attempt still fit. When the budget runs out it gives up (``WebhookError``) at once.
    (``timeout`` bounds each socket operation, as urllib does: connect, send, each read.)
    """
    if attempts < 1 or timeout <= 0 or base_delay < 0 or max_delay < 0:
        raise ValueError("attempts must be >= 1, timeout > 0, delays >= 0")
    body = json.dumps(payload).encode("utf-8")
    last = "not attempted"
    shortest = min(timeout, MIN_ATTEMPT_SECONDS)

    def time_left() -> float:
        return float("inf") if remaining is None else remaining()

    for attempt in range(1, attempts + 1):
        left = time_left()
        if left < shortest:
            done = f"after {attempt - 1} of {attempts} attempts: {last}; " if attempt > 1 else ""
            raise WebhookError(
                f"webhook gave up {done or 'before the first attempt: '}"
                f"{max(left, 0.0):.1f}s of the time budget left, less than the "
                f"{shortest:g}s an attempt needs"
            )
        attempt_timeout = min(timeout, left)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "dotnet-delivery-approval-notifier",
            },
        )
        retry_after: float | None = None
        try:
            with opener(request, timeout=attempt_timeout) as response:
                status = int(getattr(response, "status", None) or response.getcode())
                response.read()
            if 200 <= status < 300:
                return status
            last, retryable = f"HTTP {status}", status == 429 or status >= 500
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status == 429:
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            last, retryable = f"HTTP {status}", status == 429 or 500 <= status <= 599
        except urllib.error.URLError as exc:
            timed_out = isinstance(exc.reason, TimeoutError)
            last = (
                f"no response within {attempt_timeout:g}s"
                if timed_out
                else f"connection failed ({type(exc.reason).__name__})"
            )
            retryable = True
        except TimeoutError:  # socket.timeout is an alias since Python 3.10
            last, retryable = f"no response within {attempt_timeout:g}s", True
        except (http.client.HTTPException, OSError) as exc:
            last, retryable = f"connection failed ({type(exc).__name__})", True
        if not retryable:
            raise WebhookError(
                f"webhook rejected the message: {last} (not retried)", permanent=True
            )
        if attempt == attempts:
            break
        delay = min(max_delay, base_delay * 2 ** (attempt - 1))
        if retry_after is not None:
            delay = min(max_delay, retry_after)
        left = time_left()
        if delay + shortest > left:
            raise WebhookError(
                f"webhook gave up after {attempt} of {attempts} attempts: {last}; the "
                f"{delay:.1f}s wait and another attempt do not fit the {max(left, 0.0):.1f}s "
                "of the time budget left"
            )
        logger.warning(
            "webhook attempt %d/%d failed: %s; retrying in %.1fs", attempt, attempts, last, delay
        )
        sleep(delay)
    raise WebhookError(f"webhook gave up after {attempts} attempts: {last}")


# --------------------------------------------------------------------------------------------
# Secret and handler
# --------------------------------------------------------------------------------------------

_WEBHOOK_URLS: dict[str, str] = {}


def _url_from_secret(text: str, secret_arn: str) -> str:
    candidate = text.strip()
    if candidate.startswith("{"):
        try:
            data = json.loads(candidate)
        except ValueError:
            data = None
        candidate = ""
        if isinstance(data, dict):
            for key in ("url", "webhook_url", "webhookUrl"):
                if isinstance(data.get(key), str):
                    candidate = data[key].strip()
                    break
    parsed = urllib.parse.urlsplit(candidate)
    if parsed.scheme == "https" and parsed.netloc:
        return candidate
    if parsed.scheme == "http" and parsed.hostname in _LOCAL_HOSTS:
        return (
            candidate  # a local endpoint (tests, a sidecar proxy); never a remote plain-HTTP host
        )
    raise NotifierError(
        f"secret {secret_arn} does not hold a usable webhook URL: expected an https:// URL or "
        'JSON {"url": "https://..."} (value not shown)'
    )


def get_webhook_url(secret_arn: str, *, client: Any = None) -> str:
    """The webhook URL from Secrets Manager, cached per secret for the execution environment."""
    cached = _WEBHOOK_URLS.get(secret_arn)
    if cached is not None:
        return cached
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    try:
        response = client.get_secret_value(SecretId=secret_arn)
    except Exception as exc:
        error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
        code = error.get("Code", type(exc).__name__)
        raise NotifierError(f"cannot read webhook secret {secret_arn}: {code}") from None
    text = response.get("SecretString")
    if not isinstance(text, str):
        raise NotifierError(
            f"secret {secret_arn} has no SecretString (binary secrets are not supported)"
        )
    url = _url_from_secret(text, secret_arn)
    _WEBHOOK_URLS[secret_arn] = url
    return url


def forget_webhook_url(secret_arn: str | None = None) -> None:
    """Drop the cached URL (after a permanent failure, or in tests)."""
    if secret_arn is None:
        _WEBHOOK_URLS.clear()
    else:
        _WEBHOOK_URLS.pop(secret_arn, None)


def _quiet_sdk_loggers() -> None:
    # botocore logs response bodies (the secret) at DEBUG; never let them through.
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        sdk = logging.getLogger(name)
        if sdk.getEffectiveLevel() < logging.WARNING:
            sdk.setLevel(logging.WARNING)


def _number(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise NotifierError(f"{name}: {raw!r} is not a number") from None
    if value < minimum:
        raise NotifierError(f"{name}: {raw!r} must be >= {minimum:g}")
    return value


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def delivery_budget(context: Any) -> Callable[[], float] | None:
    """Seconds left for webhook delivery: the invocation's remaining time less
    :data:`FINAL_LOG_MARGIN_SECONDS` (``None`` without a Lambda context: unbounded)."""
    get_remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(get_remaining):
        return None

    def remaining() -> float:
        return float(get_remaining()) / 1000.0 - FINAL_LOG_MARGIN_SECONDS

    return remaining


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda entry point for the SNS subscription."""
    _quiet_sdk_loggers()
    fmt = os.environ.get("FORMAT", "slack").strip().lower()
    if fmt not in FORMATS:
        raise NotifierError(f"FORMAT: {fmt!r} is not supported; use one of {list(FORMATS)}")
    secret_arn = os.environ.get("WEBHOOK_SECRET_ARN", "").strip()
    if not secret_arn:
        raise NotifierError(
            "WEBHOOK_SECRET_ARN: not set; it must name the Secrets Manager secret "
            "holding the webhook URL"
        )
    attempts = int(_number("WEBHOOK_ATTEMPTS", 5, minimum=1))
    timeout = _number("WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
    base_delay = _number("WEBHOOK_BASE_DELAY_SECONDS", 1.0, minimum=0)
    max_delay = _number("WEBHOOK_MAX_DELAY_SECONDS", 20.0, minimum=0)

    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records:
        raise NotifierError("event.Records: missing or empty; expected an SNS event")
    budget = delivery_budget(context)
    delivered = 0
    for index, record in enumerate(records):
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        message = sns.get("Message") if isinstance(sns, Mapping) else None
        if not isinstance(message, str):
            raise NotifierError(
                f"event.Records[{index}].Sns.Message: missing; expected an SNS record"
            )
        try:
            notification = json.loads(message)
        except ValueError as exc:
            raise NotifierError(f"event.Records[{index}].Sns.Message: not JSON ({exc})") from None
        payload = build_message(notification, fmt)
        approval, release = parse_notification(notification)
        url = get_webhook_url(secret_arn)
        try:
            status = post_with_retries(
                url,
                payload,
                attempts=attempts,
                base_delay=base_delay,
                timeout=timeout,
                max_delay=max_delay,
                remaining=budget,
                sleep=_sleep,
                opener=_open,
            )
        except WebhookError as exc:
            if exc.permanent:
                forget_webhook_url(secret_arn)
            logger.error(
                "approval notification NOT delivered (%s): pipeline %s stage %s action %s%s: %s; "
                "approvers must use %s",
                fmt,
                approval.pipeline,
                approval.stage,
                approval.action,
                f" ({release.service} {release.version})" if release.service else "",
                exc,
                approval.review_link,
            )
            raise
        delivered += 1
        logger.info(
            "approval notification delivered (%s, HTTP %d): pipeline %s stage %s action %s",
            fmt,
            status,
            approval.pipeline,
            approval.stage,
            approval.action,
        )
    return {"delivered": delivered, "format": fmt}

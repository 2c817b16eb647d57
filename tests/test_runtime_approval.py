"""The approval notifier Lambda, end to end against pytest-httpserver and moto Secrets Manager.

Input is AWS's documented manual-approval notification JSON (tests/fixtures/); the webhook is a
real local HTTP server, the secret a moto secret.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from components.runtime import approval_notifier as notifier

FIXTURES = Path(__file__).parent / "fixtures"
SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSECRETTOKENxox"
REGION = "eu-west-1"
TOPIC_ARN = "arn:aws:sns:eu-west-1:111111111111:orders-api-approvals"


def _notification(name: str = "approval_notification.json") -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _sns_event(notification: dict[str, Any]) -> dict[str, Any]:
    """An SNS -> Lambda event carrying the notification, as SNS delivers it."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC_ARN}:7d1c",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "TopicArn": TOPIC_ARN,
                    "Subject": (
                        "APPROVAL NEEDED: AWS CodePipeline orders-api-delivery "
                        "for action ApproveProd"
                    ),
                    "Message": json.dumps(notification),
                    "Timestamp": "2025-06-02T09:41:07.000Z",
                    "MessageAttributes": {},
                },
            }
        ]
    }


# ------------------------------------------------------------------------------------------
# customData and messages (pure)
# ------------------------------------------------------------------------------------------


def test_fixture_is_the_documented_shape() -> None:
    for name in ("approval_notification.json", "approval_notification_plain.json"):
        data = _notification(name)
        assert set(data) == {"region", "consoleLink", "approval"}
        assert set(data["approval"]) == {
            "pipelineName",
            "stageName",
            "actionName",
            "token",
            "expires",
            "externalEntityLink",
            "approvalReviewLink",
            "customData",
        }


def test_render_custom_data_round_trips_and_respects_the_action_limit() -> None:
    text = notifier.render_custom_data(
        service="orders-api",
        version="#{BuildVariables.VERSION}",
        commit="#{SourceVariables.CommitId}",
        digest="#{BuildVariables.IMAGE_DIGEST}",
        environment="prod",
        tests={"passed": 148, "failed": 0, "skipped": 2, "report": "https://reports.example/148"},
    )
    release = notifier.parse_custom_data(text)
    assert release.service == "orders-api"
    assert release.version == "#{BuildVariables.VERSION}"
    assert release.tests == "148 passed, 0 failed, 2 skipped"
    assert release.report == "https://reports.example/148"
    with pytest.raises(ValueError, match="CodePipeline allows at most 1000"):
        notifier.render_custom_data(
            service="s", version="v", commit="c", digest="d", environment="e", tests="x" * 1000
        )


@pytest.mark.parametrize(
    "custom_data",
    [None, "", "Review the latest changes.", "[1, 2]", '{"service": "no release marker"}', "{oops"],
)
def test_unrecognised_custom_data_is_a_note(custom_data: str | None) -> None:
    release = notifier.parse_custom_data(custom_data)
    assert release.service == "" and release.digest == ""
    assert release.note == (custom_data or "").strip()


def _slack_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload["blocks"], ensure_ascii=False)


def test_slack_message_names_release_tests_and_the_approval_link() -> None:
    notification = _notification()
    payload = notifier.build_message(notification, "slack")
    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "Approval needed: orders-api 1.8.0-build.247-git.a1b2c3d4e5f6 → prod",
        },
    }
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in blocks[1]["fields"]}
    assert fields["*Service*"] == "orders-api"
    assert fields["*Version*"] == "1.8.0-build.247-git.a1b2c3d4e5f6"
    assert fields["*Environment*"] == "prod"
    assert fields["*Commit*"] == "a1b2c3d4e5f6"
    assert fields["*Stage tests*"] == "stage integration: 148 passed, 0 failed, 2 skipped"
    assert fields["*Image digest*"].startswith("sha256:4f2d8c1e9b7a")
    digest = json.loads(notification["approval"]["customData"])["digest"]
    assert f"`{digest}`" in _slack_text(payload)  # the full digest, copyable
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert actions[0]["url"] == notification["approval"]["approvalReviewLink"]
    assert actions[0]["style"] == "primary"
    assert (
        notification["approval"]["approvalReviewLink"] in payload["text"]
    )  # notification fallback
    assert len(blocks[1]["fields"]) <= 10


def test_teams_message_is_an_adaptive_card_in_a_message_envelope() -> None:
    notification = _notification()
    payload = notifier.build_message(notification, "teams")
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts = {
        f["title"]: f["value"]
        for f in next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    }
    assert facts["Service"] == "orders-api"
    assert facts["Environment"] == "prod"
    assert facts["Stage tests"] == "stage integration: 148 passed, 0 failed, 2 skipped"
    assert any(
        b.get("fontType") == "Monospace" and b["text"].startswith("sha256:4f2d8c")
        for b in card["body"]
    )
    assert card["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "Review in CodePipeline",
        "url": notification["approval"]["approvalReviewLink"],
    }


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_plain_custom_data_falls_back_gracefully(fmt: str) -> None:
    notification = _notification("approval_notification_plain.json")
    text = json.dumps(notifier.build_message(notification, fmt), ensure_ascii=False)
    assert "Approval needed: MyFirstPipeline / MyApprovalStage / MyApprovalAction" in text
    assert "Review the latest changes and approve or reject within seven days." in text
    assert notification["approval"]["approvalReviewLink"] in text
    assert "not provided" in text


def test_slack_text_cannot_mention_or_link() -> None:
    notification = _notification()
    custom = json.loads(notification["approval"]["customData"])
    custom["service"] = "<!channel> & <https://evil.example|click>"
    notification["approval"]["customData"] = json.dumps(custom)
    payload = notifier.build_message(notification, "slack")
    # mrkdwn is parsed for mentions and links; plain_text (the header) is shown literally
    mrkdwn = [payload["text"]] + [
        item["text"]
        for block in payload["blocks"]
        for item in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        if isinstance(item, dict) and item.get("type") == "mrkdwn"
    ]
    text = "\n".join(mrkdwn)
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text
    assert payload["blocks"][0]["text"]["type"] == "plain_text"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda n: n.pop("approval"), "notification.approval: missing"),
        (
            lambda n: n["approval"].pop("approvalReviewLink"),
            "notification.approval.approvalReviewLink",
        ),
        (lambda n: n["approval"].update(pipelineName=""), "notification.approval.pipelineName"),
        (
            lambda n: n["approval"].update(approvalReviewLink="javascript:alert(1)"),
            "is not an http(s) URL",
        ),
    ],
)
def test_invalid_notifications_name_the_key(mutate: Any, fragment: str) -> None:
    notification = _notification()
    mutate(notification)
    with pytest.raises(notifier.NotifierError, match=__import__("re").escape(fragment)):
        notifier.build_message(notification, "slack")


def test_unknown_format_names_the_allowed_ones() -> None:
    with pytest.raises(
        notifier.NotifierError,
        match=r"FORMAT: 'discord' is not supported; use one of \['slack', 'teams'\]",
    ):
        notifier.build_message(_notification(), "discord")


_values = st.one_of(
    st.text(max_size=400), st.integers(), st.none(), st.lists(st.integers(), max_size=3)
)


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {"release": st.just(1)},
        optional={
            k: _values
            for k in ("service", "version", "commit", "digest", "environment", "tests", "note")
        },
    ),
    st.sampled_from(["slack", "teams"]),
)
def test_any_custom_data_yields_a_valid_bounded_message(custom: dict[str, Any], fmt: str) -> None:
    notification = _notification()
    notification["approval"]["customData"] = json.dumps(custom)
    payload = notifier.build_message(notification, fmt)
    json.dumps(payload)
    if fmt == "slack":
        assert len(payload["blocks"][0]["text"]["text"]) <= 150
        assert len(payload["blocks"][1]["fields"]) <= 10
        for block in payload["blocks"]:
            for item in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
                if isinstance(item, dict) and "text" in item and isinstance(item["text"], str):
                    assert len(item["text"]) <= 3000
    else:
        assert payload["attachments"][0]["content"]["actions"][0]["url"].startswith("https://")


# ------------------------------------------------------------------------------------------
# post_with_retries against a real local HTTP server
# ------------------------------------------------------------------------------------------


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_success_on_first_attempt_posts_json(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(
        SECRET_PATH, method="POST", json={"text": "hi"}
    ).respond_with_data("ok")
    sleeps = Sleeps()
    status = notifier.post_with_retries(
        httpserver.url_for(SECRET_PATH),
        {"text": "hi"},
        attempts=3,
        base_delay=1,
        timeout=2,
        sleep=sleeps,
    )
    assert status == 200 and sleeps == []
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"] == "application/json"
    httpserver.check_assertions()


def test_429_then_success_honours_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(SECRET_PATH, method="POST").respond_with_data(
        "rate_limited", status=429, headers={"Retry-After": "3"}
    )
    httpserver.expect_ordered_request(SECRET_PATH, method="POST").respond_with_data("", status=202)
    sleeps = Sleeps()
    status = notifier.post_with_retries(
        httpserver.url_for(SECRET_PATH),
        {"x": 1},
        attempts=4,
        base_delay=0.5,
        timeout=2,
        sleep=sleeps,
    )
    assert status == 202
    assert sleeps == [3.0]  # Retry-After, not the 0.5 s backoff
    assert len(httpserver.log) == 2
    httpserver.check_assertions()


def test_retry_after_is_capped(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data(
        "", status=429, headers={"Retry-After": "3600"}
    )
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    sleeps = Sleeps()
    notifier.post_with_retries(
        httpserver.url_for(SECRET_PATH),
        {},
        attempts=2,
        base_delay=1,
        timeout=2,
        sleep=sleeps,
        max_delay=7,
    )
    assert sleeps == [7]


def test_5xx_retries_with_exponential_backoff(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("", status=503)
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("", status=502)
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    sleeps = Sleeps()
    status = notifier.post_with_retries(
        httpserver.url_for(SECRET_PATH), {}, attempts=5, base_delay=0.5, timeout=2, sleep=sleeps
    )
    assert status == 200 and sleeps == [0.5, 1.0]


def test_5xx_forever_gives_up_after_the_attempts(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SECRET_PATH).respond_with_data("boom", status=500)
    sleeps = Sleeps()
    url = httpserver.url_for(SECRET_PATH)
    with pytest.raises(notifier.WebhookError) as err:
        notifier.post_with_retries(
            url, {}, attempts=4, base_delay=1, timeout=2, sleep=sleeps, max_delay=3
        )
    assert str(err.value) == "webhook gave up after 4 attempts: HTTP 500"
    assert not err.value.permanent
    assert sleeps == [1, 2, 3]
    assert len(httpserver.log) == 4
    assert SECRET_PATH not in str(err.value)


def test_4xx_is_permanent_and_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SECRET_PATH).respond_with_data("invalid_payload", status=400)
    sleeps = Sleeps()
    with pytest.raises(notifier.WebhookError) as err:
        notifier.post_with_retries(
            httpserver.url_for(SECRET_PATH), {}, attempts=4, base_delay=1, timeout=2, sleep=sleeps
        )
    assert err.value.permanent
    assert "HTTP 400 (not retried)" in str(err.value)
    assert sleeps == [] and len(httpserver.log) == 1


class _QuickStopHTTPServer(HTTPServer):
    """Polls for shutdown every 10 ms instead of werkzeug's 0.5 s, so stop() is near-instant."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.01)


@pytest.fixture
def silent_server() -> Iterator[tuple[HTTPServer, threading.Event]]:
    """A threaded pytest-httpserver whose webhook never answers (until released at teardown)."""
    release = threading.Event()
    server = _QuickStopHTTPServer(threaded=True)
    server.start()

    def hang(request: Request) -> Response:
        release.wait(5)
        return Response("late", status=200)

    server.expect_request(SECRET_PATH).respond_with_handler(hang)
    try:
        yield server, release
    finally:
        release.set()
        server.clear()
        server.stop()


def test_webhook_that_never_answers_times_out_and_gives_up(
    silent_server: tuple[HTTPServer, threading.Event],
) -> None:
    server, _ = silent_server
    sleeps = Sleeps()
    with pytest.raises(notifier.WebhookError) as err:
        notifier.post_with_retries(
            server.url_for(SECRET_PATH), {}, attempts=2, base_delay=0.1, timeout=0.2, sleep=sleeps
        )
    assert str(err.value) == "webhook gave up after 2 attempts: no response within 0.2s"
    assert sleeps == [0.1]


def test_connection_refused_is_retried_then_reported() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(
        notifier.WebhookError,
        match=r"gave up after 2 attempts: connection failed \(ConnectionRefusedError\)",
    ):
        notifier.post_with_retries(
            f"http://127.0.0.1:{port}/x", {}, attempts=2, base_delay=0.1, timeout=1, sleep=sleeps
        )


def test_retry_after_http_date() -> None:
    assert (
        notifier._retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412480.0 - 4) == 4.0
    )
    assert notifier._retry_after("soon") is None
    assert notifier._retry_after(None) is None


# ------------------------------------------------------------------------------------------
# The handler end to end: moto Secrets Manager + local webhook
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secretsmanager() -> Iterator[Any]:
    """One moto Secrets Manager for the module (starting moto and a boto3 session per test is
    slow); each test gets its own secret, so no test sees another's state."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            env.setenv(key, value)
        with mock_aws():
            yield boto3.client("secretsmanager", region_name=REGION)


_secret_names = itertools.count()


@pytest.fixture
def secret(
    monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer, secretsmanager: Any
) -> Iterator[tuple[str, str]]:
    for key, value in {
        "WEBHOOK_BASE_DELAY_SECONDS": "0",
        "WEBHOOK_TIMEOUT_SECONDS": "2",
        "WEBHOOK_ATTEMPTS": "3",
    }.items():
        monkeypatch.setenv(key, value)
    notifier.forget_webhook_url()
    url = httpserver.url_for(SECRET_PATH)
    arn = secretsmanager.create_secret(
        Name=f"orders-api/approval-webhook-{next(_secret_names)}", SecretString=url
    )["ARN"]
    monkeypatch.setenv("WEBHOOK_SECRET_ARN", arn)
    yield arn, url
    notifier.forget_webhook_url()


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_handler_posts_the_message_for_the_sns_event(
    secret: tuple[str, str], httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("FORMAT", fmt)
    notification = _notification()
    httpserver.expect_oneshot_request(
        SECRET_PATH, method="POST", json=notifier.build_message(notification, fmt)
    ).respond_with_data("ok")
    assert notifier.handler(_sns_event(notification), None) == {"delivered": 1, "format": fmt}
    httpserver.check_assertions()
    body = httpserver.log[0][0].get_json()
    assert "orders-api" in json.dumps(body) and notification["approval"][
        "approvalReviewLink"
    ] in json.dumps(body)


def test_handler_caches_the_webhook_url(secret: tuple[str, str], httpserver: HTTPServer) -> None:
    arn, _ = secret
    httpserver.expect_request(SECRET_PATH).respond_with_data("ok")
    notifier.handler(_sns_event(_notification()), None)
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=arn, ForceDeleteWithoutRecovery=True
    )
    notifier.handler(_sns_event(_notification()), None)  # no second GetSecretValue
    assert len(httpserver.log) == 2


def test_handler_reads_a_json_secret(secret: tuple[str, str], httpserver: HTTPServer) -> None:
    arn, url = secret
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=arn, SecretString=json.dumps({"url": url})
    )
    httpserver.expect_request(SECRET_PATH).respond_with_data("ok")
    assert notifier.handler(_sns_event(_notification()), None)["delivered"] == 1


def test_handler_429_then_success(secret: tuple[str, str], httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data(
        "", status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request(SECRET_PATH).respond_with_data("ok")
    assert notifier.handler(_sns_event(_notification()), None)["delivered"] == 1
    assert len(httpserver.log) == 2


def test_handler_gives_up_with_one_clear_error_and_never_leaks_the_url(
    secret: tuple[str, str],
    httpserver: HTTPServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, url = secret
    caplog.set_level(logging.DEBUG)  # everything, including botocore's response bodies if allowed
    httpserver.expect_request(SECRET_PATH).respond_with_data("upstream down", status=503)
    with pytest.raises(notifier.WebhookError) as err:
        notifier.handler(_sns_event(_notification()), None)

    ours = [
        r for r in caplog.records if not r.name.startswith("werkzeug")
    ]  # the test server's access log
    errors = [r for r in ours if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert line.startswith(
        "approval notification NOT delivered (slack): "
        "pipeline orders-api-delivery stage Approval action ApproveProd"
    )
    assert "(orders-api 1.8.0-build.247-git.a1b2c3d4e5f6)" in line
    assert "webhook gave up after 3 attempts: HTTP 503" in line
    assert len([r for r in ours if r.levelno == logging.WARNING]) == 2  # one per retry
    logged = "\n".join(r.getMessage() for r in ours) + "".join(capsys.readouterr())
    for secret_part in (url, SECRET_PATH, "xoxSECRETTOKENxox"):
        assert secret_part not in logged
        assert secret_part not in str(err.value)
    assert len(httpserver.log) == 3


def test_permanent_failure_drops_the_cached_url(
    secret: tuple[str, str], httpserver: HTTPServer
) -> None:
    arn, _ = secret
    httpserver.expect_request(SECRET_PATH).respond_with_data("no_service", status=404)
    with pytest.raises(notifier.WebhookError, match="HTTP 404"):
        notifier.handler(_sns_event(_notification()), None)
    assert arn not in notifier._WEBHOOK_URLS


def test_secret_that_is_not_a_url_is_reported_without_its_value(secret: tuple[str, str]) -> None:
    arn, _ = secret
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=arn, SecretString="hunter2-not-a-url"
    )
    with pytest.raises(notifier.NotifierError) as err:
        notifier.handler(_sns_event(_notification()), None)
    assert f"secret {arn} does not hold a usable webhook URL" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_plain_http_to_a_remote_host_is_refused(secret: tuple[str, str]) -> None:
    arn, _ = secret
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=arn, SecretString="http://hooks.slack.com/services/T/B/secret"
    )
    with pytest.raises(notifier.NotifierError, match="usable webhook URL") as err:
        notifier.handler(_sns_event(_notification()), None)
    assert "hooks.slack.com" not in str(err.value)


def test_missing_secret_names_the_arn_and_error_code(
    secret: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:nope-AbCdEf"
    monkeypatch.setenv("WEBHOOK_SECRET_ARN", missing)
    with pytest.raises(
        notifier.NotifierError,
        match=f"cannot read webhook secret {missing}: ResourceNotFoundException",
    ):
        notifier.handler(_sns_event(_notification()), None)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"WEBHOOK_SECRET_ARN": ""}, "WEBHOOK_SECRET_ARN: not set"),
        ({"FORMAT": "email"}, "FORMAT: 'email' is not supported"),
        ({"WEBHOOK_ATTEMPTS": "0"}, "WEBHOOK_ATTEMPTS: '0' must be >= 1"),
        ({"WEBHOOK_TIMEOUT_SECONDS": "fast"}, "WEBHOOK_TIMEOUT_SECONDS: 'fast' is not a number"),
    ],
)
def test_bad_configuration_is_named(
    secret: tuple[str, str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(notifier.NotifierError, match=__import__("re").escape(fragment)):
        notifier.handler(_sns_event(_notification()), None)


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({}, "event.Records: missing or empty"),
        ({"Records": [{"Sns": {}}]}, "event.Records[0].Sns.Message: missing"),
        ({"Records": [{"Sns": {"Message": "not json"}}]}, "event.Records[0].Sns.Message: not JSON"),
        ({"Records": [{"Sns": {"Message": '{"hello": 1}'}}]}, "notification.approval: missing"),
    ],
)
def test_bad_events_are_named(
    secret: tuple[str, str], event: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(notifier.NotifierError, match=__import__("re").escape(fragment)):
        notifier.handler(event, None)


# ------------------------------------------------------------------------------------------
# The time budget: give up (and log it) before Lambda's timeout kills the function
# ------------------------------------------------------------------------------------------


class Clock:
    """A fake clock: the fake opener and sleep advance it; nothing really waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeContext:
    """The part of the Lambda context object the notifier uses."""

    def __init__(self, clock: Clock, timeout_seconds: float) -> None:
        self.clock = clock
        self.deadline = clock.now + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - self.clock.now) * 1000)


class SlowWebhook:
    """A webhook that takes ``took`` seconds (at most the request's timeout, as a socket timeout
    would) and answers 429 with ``Retry-After`` (or times out when ``retry_after`` is None)."""

    def __init__(self, clock: Clock, *, took: float, retry_after: str | None = "20") -> None:
        self.clock = clock
        self.took = took
        self.retry_after = retry_after
        self.timeouts: list[float] = []

    def __call__(self, request: Any, timeout: float) -> Any:
        import email.message
        import urllib.error

        self.timeouts.append(timeout)
        if self.retry_after is None or self.took > timeout:
            self.clock.now += timeout
            raise TimeoutError("timed out")
        self.clock.now += self.took
        headers = email.message.Message()
        headers["Retry-After"] = self.retry_after
        raise urllib.error.HTTPError(request.full_url, 429, "Too Many Requests", headers, None)


def _budget(context: FakeContext) -> Any:
    budget = notifier.delivery_budget(context)
    assert budget is not None
    return budget


def test_worst_case_settings_give_up_inside_the_lambda_timeout() -> None:
    # Defaults (5 attempts x 5 s, Retry-After capped at 20 s) need ~105 s: more than 60 s.
    clock = Clock()
    context = FakeContext(clock, 60)
    webhook = SlowWebhook(clock, took=5)
    with pytest.raises(notifier.WebhookError) as err:
        notifier.post_with_retries(
            "https://hooks.example/x",
            {},
            attempts=5,
            timeout=5,
            max_delay=20,
            sleep=clock.sleep,
            opener=webhook,
            remaining=_budget(context),
        )
    # 0-5 attempt, 20 s wait, 25-30 attempt, 20 s wait, 50-55 attempt; a third 20 s wait
    # cannot fit: give up at 55 s, keeping the 5 s margin for the log line.
    assert webhook.timeouts == [5, 5, 5]
    assert clock.sleeps == [20, 20]
    assert clock.now == 55
    assert str(err.value) == (
        "webhook gave up after 3 of 5 attempts: HTTP 429; the 20.0s wait and another attempt "
        "do not fit the 0.0s of the time budget left"
    )
    assert not err.value.permanent


def test_the_last_attempt_timeout_is_cut_to_the_time_left() -> None:
    clock = Clock()
    context = FakeContext(clock, 58)  # budget 53 s
    webhook = SlowWebhook(clock, took=9, retry_after=None)  # never answers
    with pytest.raises(
        notifier.WebhookError, match=r"after 3 of 5 attempts: no response within 3s"
    ):
        notifier.post_with_retries(
            "https://hooks.example/x",
            {},
            attempts=5,
            timeout=5,
            base_delay=20,
            max_delay=20,
            sleep=clock.sleep,
            opener=webhook,
            remaining=_budget(context),
        )
    assert webhook.timeouts == [5, 5, 3]
    assert clock.now == 53


def test_no_attempt_when_the_budget_is_already_spent() -> None:
    clock = Clock()
    webhook = SlowWebhook(clock, took=0.1)
    with pytest.raises(notifier.WebhookError) as err:
        notifier.post_with_retries(
            "https://hooks.example/x",
            {},
            timeout=5,
            sleep=clock.sleep,
            opener=webhook,
            remaining=_budget(FakeContext(clock, 5.5)),  # 0.5 s after the margin
        )
    assert webhook.timeouts == [] and clock.sleeps == []
    assert str(err.value) == (
        "webhook gave up before the first attempt: 0.5s of the time budget left, less than "
        "the 1s an attempt needs"
    )


def test_no_budget_without_a_lambda_context() -> None:
    assert notifier.delivery_budget(None) is None
    assert notifier.delivery_budget(object()) is None
    clock = Clock()
    budget = _budget(FakeContext(clock, 60))
    assert budget() == 60 - notifier.FINAL_LOG_MARGIN_SECONDS


@settings(max_examples=80, deadline=None)
@given(
    lambda_timeout=st.floats(min_value=0, max_value=900),
    attempts=st.integers(min_value=1, max_value=8),
    timeout=st.floats(min_value=0.1, max_value=30),
    base_delay=st.floats(min_value=0, max_value=10),
    max_delay=st.floats(min_value=0, max_value=60),
    took=st.floats(min_value=0, max_value=40),
    retry_after=st.one_of(st.none(), st.integers(min_value=0, max_value=3600).map(str)),
)
def test_delivery_never_outlives_the_budget(
    lambda_timeout: float,
    attempts: int,
    timeout: float,
    base_delay: float,
    max_delay: float,
    took: float,
    retry_after: str | None,
) -> None:
    clock = Clock()
    context = FakeContext(clock, lambda_timeout)
    webhook = SlowWebhook(clock, took=took, retry_after=retry_after)
    with pytest.raises(notifier.WebhookError, match=r"^webhook gave up "):
        notifier.post_with_retries(
            "https://hooks.example/x",
            {},
            attempts=attempts,
            timeout=timeout,
            base_delay=base_delay,
            max_delay=max_delay,
            sleep=clock.sleep,
            opener=webhook,
            remaining=_budget(context),
        )
    budget = lambda_timeout - notifier.FINAL_LOG_MARGIN_SECONDS
    assert clock.now <= max(budget, 0) + 1e-9
    assert len(webhook.timeouts) <= attempts
    assert all(t <= timeout for t in webhook.timeouts)


def test_handler_logs_the_give_up_error_before_the_lambda_timeout(
    secret: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key, value in {
        "WEBHOOK_ATTEMPTS": "5",
        "WEBHOOK_TIMEOUT_SECONDS": "5",
        "WEBHOOK_BASE_DELAY_SECONDS": "1",
        "WEBHOOK_MAX_DELAY_SECONDS": "20",
    }.items():
        monkeypatch.setenv(key, value)
    clock = Clock()
    webhook = SlowWebhook(clock, took=5)
    monkeypatch.setattr(notifier, "_open", webhook)
    monkeypatch.setattr(notifier, "_sleep", clock.sleep)
    context = FakeContext(clock, 60)
    logged_at: list[float] = []

    class When(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                logged_at.append(clock.now)

    when = When()
    notifier.logger.addHandler(when)
    caplog.set_level(logging.INFO)
    try:
        with pytest.raises(notifier.WebhookError, match="after 3 of 5 attempts: HTTP 429"):
            notifier.handler(_sns_event(_notification()), context)
    finally:
        notifier.logger.removeHandler(when)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("approval notification NOT delivered (slack): pipeline ")
    assert "webhook gave up after 3 of 5 attempts: HTTP 429" in errors[0]
    assert logged_at == [55.0]  # the 5 s margin is still left when the error is logged
    assert context.get_remaining_time_in_millis() == 5000


def test_module_is_self_contained() -> None:
    source = Path(notifier.__file__).read_text()
    assert "from components" not in source and "import components" not in source

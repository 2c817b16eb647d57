"""Load balancers: ``lb-listener-https-tls`` and ``alb-access-logs-drop-invalid-headers``.

ELB security policy names carry their lowest TLS version: ``ELBSecurityPolicy-TLS13-1-2-…``
accepts TLS 1.2 and 1.3, ``…-TLS13-1-0-…`` still accepts TLS 1.0, ``ELBSecurityPolicy-TLS-1-2-…``
and ``…-FS-1-2-…`` accept only TLS 1.2, and the dated legacy policies
(``ELBSecurityPolicy-2016-08``, the API default) accept TLS 1.0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._core import GuardrailPolicy, Settings, Subject, as_list, as_mapping, as_str, is_true

LISTENER_TYPES = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
RECOMMENDED_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"

_VERSIONED_POLICY_RE = re.compile(r"^ELBSecurityPolicy-(TLS13|TLS|FS)-1-([0-3])(?:-|$)")
_LEGACY_POLICY_RE = re.compile(r"^ELBSecurityPolicy-(?:FS-)?\d{4}-\d{2}$")


def ssl_policy_support(name: str) -> tuple[int, bool] | None:
    """``(lowest TLS 1.x minor version, supports TLS 1.3)`` for an ELB policy, or ``None``."""
    match = _VERSIONED_POLICY_RE.match(name)
    if match:
        return int(match.group(2)), match.group(1) == "TLS13"
    if _LEGACY_POLICY_RE.match(name):
        return 0, False
    return None


def _tls_problem(policy: str | None, settings: Settings) -> str | None:
    if not policy:
        return (
            "sslPolicy is not set, so AWS uses ELBSecurityPolicy-2016-08 (TLS 1.0). "
            f"Fix: set sslPolicy = '{RECOMMENDED_SSL_POLICY}'."
        )
    if policy in settings.strings("allowedSslPolicies"):
        return None
    support = ssl_policy_support(policy)
    fix = f"Fix: use '{RECOMMENDED_SSL_POLICY}' (or another ELBSecurityPolicy-TLS13-1-2-* policy)."
    if support is None:
        return (
            f"sslPolicy '{policy}' is not a known ELB security policy. {fix} Or list it in this "
            "policy's allowedSslPolicies config."
        )
    lowest, tls13 = support
    minimum = str(settings["minimumTlsVersion"] or "1.2")
    required_minor = 3 if minimum == "1.3" else 2
    if lowest < required_minor:
        return (
            f"sslPolicy '{policy}' still accepts TLS 1.{lowest} (minimum is TLS {minimum}). {fix}"
        )
    if settings["requireTls13Support"] and not tls13:
        return f"sslPolicy '{policy}' does not offer TLS 1.3. {fix}"
    return None


def _redirects_to_https(action: Mapping[str, Any]) -> bool:
    if (as_str(action.get("type")) or "").lower() != "redirect":
        return False
    redirect = as_mapping(action.get("redirect"))
    return redirect is not None and (as_str(redirect.get("protocol")) or "").upper() == "HTTPS"


def check_listener(props: Mapping[str, Any], settings: Settings, subject: Subject) -> Iterator[str]:
    raw = as_str(props.get("protocol"))
    protocol = (raw or "HTTP").upper()
    port = props.get("port")
    where = (
        f"{subject.label} (port {int(port)})" if isinstance(port, (int, float)) else subject.label
    )
    if protocol in ("HTTPS", "TLS"):
        problem = _tls_problem(as_str(props.get("sslPolicy")), settings)
        if problem:
            yield f"{where}: {problem}"
        return
    if protocol != "HTTP":
        return  # TCP, UDP, GENEVE, QUIC...: not a web listener
    shown = "HTTP" if raw else "not set (HTTP by default)"
    actions = [a for a in (as_mapping(x) for x in as_list(props.get("defaultActions"))) if a]
    fix = (
        "Fix: serve traffic on an HTTPS listener and make the HTTP listener's only default "
        "action a redirect with protocol 'HTTPS' and status 'HTTP_301'."
    )
    if not actions:
        yield f"{where}: protocol is {shown} and it has no default action. {fix}"
        return
    for action in actions:
        if not _redirects_to_https(action):
            kind = as_str(action.get("type")) or "?"
            yield (
                f"{where}: protocol is {shown} and its default action '{kind}' does not redirect "
                f"to HTTPS, so traffic is served unencrypted. {fix}"
            )


LB_LISTENER_HTTPS_TLS = GuardrailPolicy(
    name="lb-listener-https-tls",
    display_name="Listeners are HTTPS with a modern TLS policy",
    description=(
        "Load balancer listeners serve HTTPS/TLS with a TLS 1.2+ security policy that offers "
        "TLS 1.3; an HTTP listener may only redirect to HTTPS."
    ),
    resource_types=LISTENER_TYPES,
    check=check_listener,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps=(
        f"Use protocol HTTPS with sslPolicy '{RECOMMENDED_SSL_POLICY}'; make HTTP listeners "
        "redirect to HTTPS."
    ),
    config_properties={
        "minimumTlsVersion": {
            "type": "string",
            "enum": ["1.2", "1.3"],
            "description": "Lowest TLS version a listener may accept.",
            "default": "1.2",
        },
        "requireTls13Support": {
            "type": "boolean",
            "description": "Require the policy to offer TLS 1.3 (an ELBSecurityPolicy-TLS13-*).",
            "default": True,
        },
        "allowedSslPolicies": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Extra security policy names accepted as they are.",
            "default": [],
        },
    },
)


def check_load_balancer(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    kind = (as_str(props.get("loadBalancerType")) or "application").lower()
    if kind != "application":
        return
    if settings["requireAccessLogs"]:
        logs = as_mapping(props.get("accessLogs"))
        if logs is None or not is_true(logs.get("enabled")) or not as_str(logs.get("bucket")):
            yield (
                f"{subject.label}: access logs are off. Fix: set accessLogs = {{bucket: <log "
                "bucket>, enabled: true} (the bucket policy must allow the ELB log delivery "
                "service)."
            )
    if settings["requireDropInvalidHeaders"] and not is_true(props.get("dropInvalidHeaderFields")):
        yield (
            f"{subject.label}: invalid HTTP header fields are forwarded to targets. Fix: set "
            "dropInvalidHeaderFields = true."
        )


ALB_ACCESS_LOGS_DROP_INVALID_HEADERS = GuardrailPolicy(
    name="alb-access-logs-drop-invalid-headers",
    display_name="ALBs keep access logs and drop invalid headers",
    description=(
        "Application load balancers write access logs and drop HTTP headers with invalid "
        "field names (request smuggling / desync hardening)."
    ),
    resource_types=LOAD_BALANCER_TYPES,
    check=check_load_balancer,
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
    remediation_steps="Set accessLogs {bucket, enabled: true} and dropInvalidHeaderFields: true.",
    config_properties={
        "requireAccessLogs": {"type": "boolean", "default": True},
        "requireDropInvalidHeaders": {"type": "boolean", "default": True},
    },
)

"""``account-local-secrets``: secrets by reference, resolved in the resource's own account.

Secret references are ECS ``secrets[].valueFrom``, ``logConfiguration.secretOptions[]
.valueFrom`` and ``repositoryCredentials.credentialsParameter``, CodeBuild environment
variables of type ``SECRETS_MANAGER`` / ``PARAMETER_STORE`` and the CodeBuild
``registryCredential``. A bare name (``/app/db-password``, ``prod/db:password::``) resolves in
the caller's own account; an ARN must name the owning account: the ``accountId`` of the
policy config when set, otherwise the account of the resource's own role (the task execution
role, the CodeBuild service role), which is the principal that reads the secret.

Plain environment variables (ECS, CodeBuild ``PLAINTEXT``, Lambda) must not carry a credential:
a password/secret/token/API-key name with a literal value, a connection string with a
password, credentials in a URL, an AWS access key id, or a private key. Messages never echo
the value.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._core import (
    ACCOUNT_ID_RE,
    GuardrailPolicy,
    Settings,
    Subject,
    arn_account,
    as_list,
    as_mapping,
    as_str,
)
from .images import LAMBDA_FUNCTION, TASK_DEFINITION, container_definitions

CODEBUILD_PROJECT = "aws:codebuild/project:Project"
SECRET_REFERENCE_TYPES = frozenset({"SECRETS_MANAGER", "PARAMETER_STORE"})
SECRET_SERVICES = frozenset({"secretsmanager", "ssm"})

_TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_CREDENTIAL_TOKENS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "apikey",
        "apitoken",
        "credential",
        "credentials",
        "privatekey",
        "accesskey",
        "secretkey",
    }
)
_CREDENTIAL_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("signing", "key"),
        ("auth", "key"),
        ("client", "secret"),
        ("master", "key"),
    }
)
# A last word that says the variable holds a reference or a setting, not the credential.
_REFERENCE_SUFFIXES = frozenset(
    {
        "arn",
        "id",
        "ids",
        "name",
        "names",
        "path",
        "param",
        "parameter",
        "url",
        "uri",
        "endpoint",
        "file",
        "ttl",
        "timeout",
        "lifetime",
        "length",
        "header",
        "expiry",
        "expiration",
        "enabled",
        "region",
        "type",
        "version",
        "audience",
        "issuer",
        "provider",
    }
)
_HARMLESS_VALUES = frozenset({"", "true", "false", "yes", "no", "on", "off", "none", "null"})
_AWS_ACCESS_KEY_RE = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
_CONNECTION_PASSWORD_RE = re.compile(r"(?i)(?:^|;)\s*(?:password|pwd)\s*=\s*[^;\s]")
_URL_CREDENTIALS_RE = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")

_FIX_PLAIN = (
    "Fix: store the value in Secrets Manager or SSM Parameter Store (SecureString) in this "
    "account and pass it by reference (ECS 'secrets', CodeBuild type SECRETS_MANAGER or "
    "PARAMETER_STORE)."
)
_FIX_REF = (
    "Fix: keep the secret in the account that runs the workload (create or replicate it "
    "there) and reference it by name or by an ARN in that account."
)


def name_tokens(name: str) -> list[str]:
    """``DB_PASSWORD`` / ``dbPassword`` / ``ConnectionStrings__Db`` → lower-case words."""
    return [t.lower() for t in _TOKEN_RE.findall(name)]


def is_credential_name(name: str) -> bool:
    """True when ``name`` says it holds a credential (and not a reference to one)."""
    tokens = name_tokens(name)
    if not tokens or tokens[-1] in _REFERENCE_SUFFIXES:
        return False
    if any(t in _CREDENTIAL_TOKENS for t in tokens):
        return True
    if "pwd" in tokens and len(tokens) > 1:  # a bare PWD is the shell's working directory
        return True
    return any(pair in _CREDENTIAL_PAIRS for pair in itertools.pairwise(tokens))


def plaintext_credential(name: str, value: str, *, judge_name: bool = True) -> str | None:
    """What credential the plain variable ``name=value`` carries, or ``None``.

    ``judge_name=False`` skips the name test (an allowed name) but still checks the value.
    """
    if _AWS_ACCESS_KEY_RE.search(value):
        return "an AWS access key id"
    if _PRIVATE_KEY_RE.search(value):
        return "a private key"
    if _CONNECTION_PASSWORD_RE.search(value):
        return "a connection string with a password"
    if _URL_CREDENTIALS_RE.search(value):
        return "a URL with embedded credentials"
    stripped = value.strip()
    if stripped.lower() in _HARMLESS_VALUES or stripped.startswith("arn:"):
        return None
    if judge_name and is_credential_name(name):
        return "a credential in plain text (its name says it is one)"
    return None


def reference_problem(reference: str) -> tuple[str | None, str | None]:
    """``(account, problem)`` for a secret reference: account ``None`` means local."""
    ref = reference.strip()
    if not ref:
        return None, "is empty"
    if not ref.startswith("arn:"):
        return None, None
    parts = ref.split(":", 5)
    if len(parts) < 6:
        return None, f"'{ref}' is not a complete ARN"
    if parts[2] not in SECRET_SERVICES:
        return None, f"'{ref}' is not a Secrets Manager secret or SSM parameter ARN"
    account = arn_account(ref)
    if account is None:
        return None, f"'{ref}' does not name a 12-digit account"
    return account, None


class _ExpectedAccount:
    """The account secrets must live in, looked up only when a reference needs it."""

    def __init__(self, settings: Settings, role: Callable[[], Any], role_label: str) -> None:
        self._settings = settings
        self._role = role
        self._role_label = role_label
        self._resolved: tuple[str | None, str] | None = None

    def get(self) -> tuple[str | None, str]:
        if self._resolved is None:
            configured = self._settings["accountId"]
            if isinstance(configured, str) and ACCOUNT_ID_RE.match(configured):
                self._resolved = (configured, "the accountId set in the policy config")
            else:
                role = self._role()  # may raise UnknownValueError during preview
                if not isinstance(role, str) or not role:
                    self._resolved = (None, f"no {self._role_label} is set")
                else:
                    account = arn_account(role)
                    where = f"the account of the {self._role_label} {role}"
                    if account is None:
                        where = f"the {self._role_label} '{role}' is not an ARN with an account"
                    self._resolved = (account, where)
        return self._resolved


def _check_references(
    refs: list[tuple[str, Any]], expected: _ExpectedAccount, subject: Subject
) -> Iterator[str]:
    for where, raw in refs:
        if not isinstance(raw, str):
            yield f"{subject.label}: {where} has no reference. {_FIX_REF}"
            continue
        account, problem = reference_problem(raw)
        if problem:
            yield f"{subject.label}: {where} {problem}. {_FIX_REF}"
            continue
        if account is None:
            continue  # a bare name resolves in the caller's own account
        owner, source = expected.get()
        if owner is None:
            yield (
                f"{subject.label}: {where} references account {account} but the owning "
                f"account cannot be determined ({source}). Fix: set the role to an ARN, or set "
                "accountId in the account-local-secrets policy config."
            )
        elif account != owner:
            yield (
                f"{subject.label}: {where} references a secret in account {account}, not in "
                f"{owner} ({source}). {_FIX_REF}"
            )


def _plain(where: str, name: Any, value: Any, settings: Settings, subject: Subject) -> str | None:
    if not isinstance(name, str) or not isinstance(value, str):
        return None
    allowed = any(fnmatch.fnmatchcase(name, p) for p in settings.strings("allowedEnvironmentNames"))
    finding = plaintext_credential(name, value, judge_name=not allowed)
    if finding is None:
        return None
    return f"{subject.label}: {where} variable '{name}' holds {finding}. {_FIX_PLAIN}"


def _task_definition(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    containers = container_definitions(props)
    if isinstance(containers, str):
        return  # reported by ecs-image-digest-pinned
    refs: list[tuple[str, Any]] = []
    for container in containers:
        cname = container.get("name", "?")
        for env in container.get("environment") or []:
            if isinstance(env, dict):
                found = _plain(
                    f"container '{cname}' environment",
                    env.get("name"),
                    env.get("value"),
                    settings,
                    subject,
                )
                if found:
                    yield found
        for secret in container.get("secrets") or []:
            if isinstance(secret, dict):
                refs.append(
                    (f"container '{cname}' secret '{secret.get('name')}'", secret.get("valueFrom"))
                )
        credentials = container.get("repositoryCredentials")
        if isinstance(credentials, dict):
            refs.append(
                (
                    f"container '{cname}' repositoryCredentials",
                    credentials.get("credentialsParameter"),
                )
            )
        logging = container.get("logConfiguration")
        if isinstance(logging, dict):
            for option in logging.get("secretOptions") or []:
                if isinstance(option, dict):
                    refs.append(
                        (
                            f"container '{cname}' log secretOption '{option.get('name')}'",
                            option.get("valueFrom"),
                        )
                    )
    if refs:
        expected = _ExpectedAccount(
            settings, lambda: props.get("executionRoleArn"), "task execution role"
        )
        yield from _check_references(refs, expected, subject)


def _codebuild(props: Mapping[str, Any], settings: Settings, subject: Subject) -> Iterator[str]:
    environment = as_mapping(props.get("environment"))
    if environment is None:
        return
    refs: list[tuple[str, Any]] = []
    for variable in (as_mapping(v) for v in as_list(environment.get("environmentVariables"))):
        if variable is None:
            continue
        name = variable.get("name")
        kind = (as_str(variable.get("type")) or "PLAINTEXT").upper()
        if kind in SECRET_REFERENCE_TYPES:
            refs.append((f"environment variable '{name}' ({kind})", variable.get("value")))
        else:
            found = _plain("environment", name, variable.get("value"), settings, subject)
            if found:
                yield found
    registry = as_mapping(environment.get("registryCredential"))
    if registry is not None:
        refs.append(("environment.registryCredential", registry.get("credential")))
    if refs:
        expected = _ExpectedAccount(settings, lambda: props.get("serviceRole"), "service role")
        yield from _check_references(refs, expected, subject)


def _lambda(props: Mapping[str, Any], settings: Settings, subject: Subject) -> Iterator[str]:
    environment = as_mapping(props.get("environment"))
    variables = as_mapping(environment.get("variables")) if environment else None
    if variables is None:
        return
    for name in variables:
        found = _plain("environment", name, variables[name], settings, subject)
        if found:
            yield found


def check_account_local_secrets(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    if subject.type == TASK_DEFINITION:
        yield from _task_definition(props, settings, subject)
    elif subject.type == CODEBUILD_PROJECT:
        yield from _codebuild(props, settings, subject)
    elif subject.type == LAMBDA_FUNCTION:
        yield from _lambda(props, settings, subject)


ACCOUNT_LOCAL_SECRETS = GuardrailPolicy(
    name="account-local-secrets",
    display_name="Secrets are references in the workload's own account",
    description=(
        "Secrets reach ECS tasks and CodeBuild only as Secrets Manager / SSM references that "
        "resolve in the account that owns the resource, and no plain environment variable "
        "carries a credential."
    ),
    resource_types=(TASK_DEFINITION, CODEBUILD_PROJECT, LAMBDA_FUNCTION),
    check=check_account_local_secrets,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    remediation_steps=_FIX_PLAIN + " " + _FIX_REF,
    config_properties={
        "accountId": {
            "type": "string",
            "pattern": "^[0-9]{12}$",
            "description": (
                "The account secrets must live in. When unset, the account of the resource's "
                "own role (task execution role, CodeBuild service role) is used."
            ),
        },
        "allowedEnvironmentNames": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": (
                "Globs of plain variable names whose name only looks like a credential "
                "(values are still checked for keys, passwords in connection strings, etc.)."
            ),
            "default": [],
        },
    },
)

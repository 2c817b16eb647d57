"""``account-local-secrets``: secrets by reference, resolved in the resource's own account.

Secret references are ECS ``secrets[].valueFrom``, ``logConfiguration.secretOptions[]
.valueFrom`` and ``repositoryCredentials.credentialsParameter``, CodeBuild environment
variables of type ``SECRETS_MANAGER`` / ``PARAMETER_STORE`` and the CodeBuild
``registryCredential``. A bare name (``/app/db-password``, ``prod/db:password::``) resolves in
the caller's own account; an ARN must name the owning account: the ``accountId`` of the
policy config when set, otherwise the account of the resource's own role (the task execution
role, the CodeBuild service role), which is the principal that reads the secret.

The inline buildspec of a CodeBuild project (``source.buildspec`` holding YAML) is judged
the same way: its ``env.secrets-manager`` / ``env.parameter-store`` entries are references
that must be account-local, and its ``env.variables`` are plain variables.

Plain environment variables (ECS, CodeBuild ``PLAINTEXT``, buildspec ``env.variables``,
Lambda) must not carry a credential. By value, whatever the name: an AWS access key id, a
private key, a JWT, a well-known token (GitHub, GitLab, Slack, Stripe, npm, Google API key), a
webhook URL whose path is the secret (Slack, Teams, Discord) or a URL signed with ``sig=``
(Logic Apps, Azure SAS), a connection string with a password or account key (``;``, ``,``,
``?`` or ``&`` separated), a URL with ``user:password@``. By name: a credential word
(password, pass, secret, token, PAT, API key, signing/JWT key, …; also fused, as in
``PGPASSWORD``) with a literal value, unless the name's last word says it is a reference or a
setting (``_ARN``, ``_PARAMETER``, ``_URL``, ``_LENGTH``, ``_TTL``, ``_SECONDS``, ``_DAYS`` …).
Messages never echo the value.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._buildspec import buildspec_env, is_inline_buildspec
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
        "tokens",
        "apikey",
        "apitoken",
        "credential",
        "credentials",
        "privatekey",
        "accesskey",
        "secretkey",
        "signingkey",
    }
)
# Fused words (``PGPASSWORD``, ``GITHUBTOKEN``, ``NUGETAPIKEY``) end with one of these.
_CREDENTIAL_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "credential",
    "credentials",
)
# Short words that are a credential only as the name's last word (``DB_PASS``, ``GH_PAT``);
# elsewhere they mean something else (``PASS_THROUGH``).
_CREDENTIAL_LAST_WORDS = frozenset({"pass", "pat", "pwd"})
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
        ("jwt", "key"),
        ("hmac", "key"),
        ("encryption", "key"),
        ("account", "key"),
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
        # settings about a credential: how long, how many, how often, how
        "seconds",
        "secs",
        "minutes",
        "mins",
        "hours",
        "days",
        "ms",
        "count",
        "size",
        "limit",
        "min",
        "max",
        "interval",
        "rotation",
        "algorithm",
        "mode",
        "policy",
        "format",
        "scheme",
        "required",
        "prefix",
        "location",
    }
)
_HARMLESS_VALUES = frozenset({"", "true", "false", "yes", "no", "on", "off", "none", "null"})
# A value that only points at a credential: an ARN, a KMS alias, a placeholder that is
# substituted later ($VAR, ${VAR}, {{resolve:...}}).
_REFERENCE_VALUE_RE = re.compile(
    r"^(?:arn:|alias/|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$|\{\{.*\}\}$)", re.S
)
_AWS_ACCESS_KEY_RE = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
_PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_JWT_RE = re.compile(r"(?<![\w-])eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*")
_CONNECTION_PASSWORD_RE = re.compile(
    r"(?i)(?:^|[;,?&])\s*(?:password|passwd|pwd|accountkey|sharedaccesskey)\s*=\s*[^;,&\s]"
)
# scheme://[user]:password@ - the password is a literal unless it is a $VAR / {{...}}.
_URL_CREDENTIALS_RE = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]*:(?P<password>[^/\s@]+)@")
_KNOWN_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a GitHub token", re.compile(r"(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})")),
    ("a GitLab token", re.compile(r"(?<![\w-])glpat-[\w-]{20,}")),
    ("a Slack token", re.compile(r"(?<![\w-])(?:xox[abposr]|xapp)-[A-Za-z0-9-]{10,}")),
    ("a Stripe key", re.compile(r"(?<![\w])[sr]k_live_[A-Za-z0-9]{10,}")),
    ("an npm token", re.compile(r"(?<![\w])npm_[A-Za-z0-9]{36}")),
    ("a Google API key", re.compile(r"(?<![\w-])AIza[\w-]{35}")),
)
# Webhook URLs whose path or signature *is* the credential: anyone holding them can post.
_WEBHOOK_RE = re.compile(
    r"(?i)https?://(?:hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/"
    r"|[\w.-]*\.webhook\.office\.com/|outlook\.office(?:365)?\.com/webhook"
    r"|(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks/)\S+"
)
_SIGNED_URL_RE = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://\S*[?&](?:sig|x-amz-signature)=[^&\s]")

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
    """True when ``name`` says it holds a credential (and not a reference to one or a
    setting about one): ``DB_PASSWORD``, ``PGPASSWORD``, ``DB_PASS``, ``GH_PAT``,
    ``Jwt__Key``, but not ``DB_PASSWORD_SECRET_ARN``, ``PASSWORD_MIN_LENGTH``,
    ``TOKEN_TTL_SECONDS`` or ``SECRET_ROTATION_DAYS``."""
    tokens = name_tokens(name)
    if not tokens or tokens[-1] in _REFERENCE_SUFFIXES:
        return False
    if tokens[-1] in _CREDENTIAL_LAST_WORDS and (tokens[-1] != "pwd" or len(tokens) > 1):
        return True  # a bare PWD is the shell's working directory
    if any(t in _CREDENTIAL_TOKENS or t.endswith(_CREDENTIAL_ENDINGS) for t in tokens):
        return True
    if "pwd" in tokens and len(tokens) > 1:
        return True
    return any(pair in _CREDENTIAL_PAIRS for pair in itertools.pairwise(tokens))


def _url_credentials(value: str) -> bool:
    for match in _URL_CREDENTIALS_RE.finditer(value):
        password = match.group("password")
        if not (password.startswith("$") or password.startswith("{{")):
            return True
    return False


def plaintext_credential(name: str, value: str, *, judge_name: bool = True) -> str | None:
    """What credential the plain variable ``name=value`` carries, or ``None``.

    The value is judged whatever the name (a ``_URL`` name does not excuse a webhook URL);
    ``judge_name=False`` (an allowed name) skips only the name test.
    """
    if _AWS_ACCESS_KEY_RE.search(value):
        return "an AWS access key id"
    if _PRIVATE_KEY_RE.search(value):
        return "a private key"
    for what, pattern in _KNOWN_TOKENS:
        if pattern.search(value):
            return what
    if _JWT_RE.search(value):
        return "a JSON Web Token"
    if _WEBHOOK_RE.search(value):
        return "a webhook URL (the URL itself is the credential)"
    if _SIGNED_URL_RE.search(value):
        return "a signed URL (its sig= / X-Amz-Signature is a credential)"
    if _CONNECTION_PASSWORD_RE.search(value):
        return "a connection string with a password or key"
    if _url_credentials(value):
        return "a URL with embedded credentials"
    stripped = value.strip()
    if stripped.lower() in _HARMLESS_VALUES or _REFERENCE_VALUE_RE.match(stripped):
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
    refs: list[tuple[str, Any]] = []
    environment = as_mapping(props.get("environment"))
    if environment is not None:
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
    source = as_mapping(props.get("source"))
    buildspec = as_str(source.get("buildspec")) if source is not None else None
    if buildspec and is_inline_buildspec(buildspec):
        env = buildspec_env(buildspec)
        for name, value in env.get("variables", ()):
            found = _plain("buildspec env.variables", name, value, settings, subject)
            if found:
                yield found
        for section in ("parameter-store", "secrets-manager"):
            for name, value in env.get(section, ()):
                refs.append((f"buildspec env.{section} '{name}'", value))
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

"""The offline engine: run the real Pulumi program under the mock monitor and record it.

:func:`render` runs a program (by default this project's ``__main__.py``) for one stack with
its own ``Pulumi.<stack>.yaml``, under :class:`~components.testing.mocks.OfflineMocks`, and
returns a :class:`Recording` of every registered resource: URN, type, name, parent,
provider, custom or component, inputs (camelCase wire names, exactly as CrossGuard sees
them), options (ignore_changes, protect, depends_on, …) and outputs, plus the stack exports.

Each render runs in a fresh :class:`contextvars.Context`, so renders are isolated from each
other (Pulumi's runtime settings, config and root stack are context variables).

:func:`cached_render` (or ``render(..., cache=True)``) memoises renders per process, keyed by
the stack, the stack file's parsed content, the project directory and the program file's
path and text; each call returns a deep copy, so callers can never see each other's changes.
Test modules that render the same unmodified stacks share one render per stack this way.

``secure:`` values in a stack file are never decrypted: they become placeholders marked
secret, and every secret value is recorded as :data:`SECRET`.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import hashlib
import json
import os
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.sync_await import _sync_await

from components.testing.mocks import OfflineMocks
from components.testing.queries import RecordedResource, Recording

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET = "[secret]"
SECRET_PLACEHOLDER = "offline-secret-placeholder"


class StackFileError(Exception):
    """A stack file that cannot be read (missing, not YAML, not a mapping)."""


# --------------------------------------------------------------------------------------
# Stack files
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StackFile:
    """A parsed ``Pulumi.<stack>.yaml``: flat ``namespace:key`` → value, plus secret keys."""

    config: dict[str, Any]
    secret_keys: frozenset[str] = field(default_factory=frozenset)

    def runtime_config(self) -> dict[str, str]:
        """Values as the Pulumi runtime hands them to a program (objects as JSON text)."""
        out: dict[str, str] = {}
        for key, value in self.config.items():
            out[key] = value if isinstance(value, str) else json.dumps(value)
        return out


def _strip_secure(value: Any, path: str, secrets: set[str], top: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            secrets.add(top)
            return SECRET_PLACEHOLDER
        return {k: _strip_secure(v, f"{path}.{k}", secrets, top) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secure(v, f"{path}[{i}]", secrets, top) for i, v in enumerate(value)]
    return value


def parse_stack_file(text: str, *, project: str = "dotnet-delivery") -> StackFile:
    """Parse a stack file's text; keys without a namespace belong to ``project``."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise StackFileError("a stack file is a YAML mapping with a 'config' key")
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise StackFileError("'config' must be a mapping of keys to values")
    config: dict[str, Any] = {}
    secrets: set[str] = set()
    for key, value in raw.items():
        full = str(key) if ":" in str(key) else f"{project}:{key}"
        config[full] = _strip_secure(value, full, secrets, full)
    return StackFile(config=config, secret_keys=frozenset(secrets))


def load_stack_file(path: Path, *, project: str = "dotnet-delivery") -> StackFile:
    if not path.is_file():
        raise StackFileError(f"{path}: no such stack file")
    return parse_stack_file(path.read_text(encoding="utf-8"), project=project)


# --------------------------------------------------------------------------------------
# Recording monitor
# --------------------------------------------------------------------------------------
def _mask(value: Any) -> Any:
    """Replace wire-format secrets by :data:`SECRET`; keep everything else."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Unwrap wire-format secrets to their values (for mocks' state)."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records each registration's request."""

    def __init__(self, mocks: OfflineMocks) -> None:
        super().__init__(mocks)
        self.records: list[RecordedResource] = []
        #: Outputs that components register with ``register_outputs`` (by URN).
        self.component_outputs: dict[str, dict[str, Any]] = {}
        self._secret_inputs: dict[str, Any] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The real engine leaves the root stack out of a child's type chain.
        if parent and parent.split("::")[2].split("$")[-1] == "pulumi:pulumi:Stack":
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs_wire = rpc.deserialize_properties(request.object, keep_unknowns=True)
        state = self.resources.get(response.urn)
        outputs = dict(state.state) if state is not None else {}
        secret_outputs = set(request.additionalSecretOutputs)
        masked_inputs = _mask(inputs_wire)
        masked_outputs = {
            k: (SECRET if k in secret_outputs or rpc.is_rpc_secret(v) else _mask(v))
            for k, v in outputs.items()
        }
        # Secret inputs stay secret in the outputs that echo them.
        for k, v in masked_inputs.items():
            if v == SECRET and k in masked_outputs:
                masked_outputs[k] = SECRET
        timeouts = request.customTimeouts
        options: dict[str, Any] = {
            "protect": bool(request.protect),
            "ignoreChanges": list(request.ignoreChanges),
            "dependsOn": list(request.dependencies),
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "retainOnDelete": bool(request.retainOnDelete),
            "replaceOnChanges": list(request.replaceOnChanges),
            "additionalSecretOutputs": sorted(secret_outputs),
            "aliases": [str(a) for a in request.aliasURNs],
            "deletedWith": request.deletedWith or None,
            "customTimeouts": {
                k: getattr(timeouts, k)
                for k in ("create", "update", "delete")
                if timeouts is not None and getattr(timeouts, k, None)
            },
        }
        self.records.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                provider=request.provider or None,
                custom=bool(request.custom),
                id=response.id or None,
                inputs=masked_inputs,
                outputs=masked_outputs,
                options=options,
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        if isinstance(outputs, dict):
            self.component_outputs[request.urn] = _mask(outputs)
        return super().RegisterResourceOutputs(request)

    def recorded(self) -> list[RecordedResource]:
        """Every record, components with the outputs they registered, sorted by URN."""
        out = []
        for record in self.records:
            registered = self.component_outputs.get(record.urn)
            if registered and not record.custom:
                record = dataclasses.replace(record, outputs={**record.outputs, **registered})
            out.append(record)
        return sorted(out, key=lambda r: r.urn)

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        state = self.resources.get(response.urn)
        self.records.append(
            RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                provider=request.provider or None,
                custom=True,
                id=request.id or None,
                inputs=_mask(rpc.deserialize_properties(request.properties)),
                outputs=_mask(dict(state.state)) if state else {},
                options={"read": True},
            )
        )
        return response


# --------------------------------------------------------------------------------------
# Running a program
# --------------------------------------------------------------------------------------
Program = Callable[[], None]


def program_from_file(path: Path) -> Program:
    """A program that executes ``path`` (a Pulumi ``__main__.py``) as ``__main__``."""

    def run() -> None:
        root = str(path.parent)
        if root not in sys.path:
            sys.path.insert(0, root)
        runpy.run_path(str(path), run_name="__main__")

    return run


def _resolve(value: Any) -> Any:
    """Resolve an export to plain data (secrets masked)."""
    output = pulumi.Output.from_input(value)

    async def get() -> Any:
        known = await output.is_known()
        secret = await output.is_secret()
        result = await output.future()
        if not known:
            return "[unknown]"
        return SECRET if secret else result

    return get()


def run_program(
    program: Program,
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: frozenset[str] = frozenset(),
    account_id: str,
    region: str,
    stack_outputs: Callable[[str], Mapping[str, Any]] | None = None,
    preview: bool = False,
) -> Recording:
    """Run ``program`` under the recording mock monitor in an isolated context."""

    def in_context() -> Recording:
        mocks = OfflineMocks(account_id=account_id, region=region, stack_outputs=stack_outputs)
        monitor = RecordingMonitor(mocks)
        settings.ROOT.set(None)
        pulumi_mocks.set_mocks(
            mocks, project=project, stack=stack, preview=preview, monitor=monitor
        )
        set_all_config(dict(config), list(secret_keys))
        exports: dict[str, Any] = {}

        async def body() -> None:
            program()
            await pulumi.runtime.stack.wait_for_rpcs()
            root = settings.get_root_resource()
            stack_outputs_ = getattr(root, "outputs", {}) or {}
            for key, value in stack_outputs_.items():
                exports[key] = await _resolve(value)

        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()
        _sync_await(body())
        return Recording(
            project=project,
            stack=stack,
            resources=monitor.recorded(),
            exports={k: _mask(_plain_export(v)) for k, v in exports.items()},
            config={k: ("[secret]" if k in secret_keys else v) for k, v in config.items()},
        )

    return contextvars.Context().run(in_context)


def _plain_export(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------------------
# This project's stacks
# --------------------------------------------------------------------------------------
def stack_file_path(stack: str, project_dir: Path = PROJECT_ROOT) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def _account_and_region(stack_file: StackFile, stack: str) -> tuple[str, str]:
    """The stack's own account id and region, read leniently (validation happens later)."""
    cfg = stack_file.config
    region = str(cfg.get("aws:region") or "us-east-1")
    accounts = cfg.get("dotnet-delivery:accounts") or {}
    account = "123456789012"
    if isinstance(accounts, dict):
        if cfg.get("dotnet-delivery:role") == "tooling":
            account = str(accounts.get("tooling") or account)
        else:
            env = cfg.get("dotnet-delivery:environment")
            envs = accounts.get("environments") or {}
            if isinstance(envs, dict) and env in envs:
                account = str(envs[env])
    return account, region


_REFERENCE_CACHE: dict[tuple[str, str], dict[str, Any]] = {}


def stack_reference_outputs(project_dir: Path = PROJECT_ROOT) -> Callable[[str], dict[str, Any]]:
    """Resolve a ``StackReference`` name (``org/project/stack`` or ``stack``) to the exports
    of that stack's own offline render (cached per stack-file content)."""

    def resolve(name: str) -> dict[str, Any]:
        stack = name.rsplit("/", 1)[-1]
        path = stack_file_path(stack, project_dir)
        if not path.is_file():
            return {}
        key = (str(path), path.read_text(encoding="utf-8"))
        if key not in _REFERENCE_CACHE:
            disk = _reference_cache_file(project_dir, stack, key[1])
            if disk is not None and disk.is_file():
                _REFERENCE_CACHE[key] = json.loads(disk.read_text(encoding="utf-8"))
            else:
                # The memoised render: a test that renders this stack itself reuses it.
                exports = dict(cached_render(stack, project_dir=project_dir).exports)
                _REFERENCE_CACHE[key] = exports
                if disk is not None:
                    _write_atomically(disk, json.dumps(exports, sort_keys=True))
        return _REFERENCE_CACHE[key]

    return resolve


#: Set to any value to turn the on-disk StackReference cache off.
NO_DISK_CACHE_ENV = "DOTNET_DELIVERY_NO_DISK_CACHE"
DISK_CACHE_DIR = ".offline-cache"


def _source_fingerprint(project_dir: Path) -> str:
    """A hash of everything a render's exports can depend on: the program, the component
    library, the locked dependencies."""
    digest = hashlib.sha256()
    library = (project_dir / "components").rglob("*.py")
    files = sorted([project_dir / "__main__.py", project_dir / "requirements.txt", *library])
    for file in files:
        if file.is_file():
            digest.update(str(file.relative_to(project_dir)).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def _reference_cache_file(project_dir: Path, stack: str, stack_text: str) -> Path | None:
    """Where a referenced stack's exports are kept between processes (``preview`` of an
    environment stack would otherwise render the tooling stack every time), keyed by the
    stack file and :func:`_source_fingerprint`; ``None`` when the cache is off."""
    if os.environ.get(NO_DISK_CACHE_ENV):
        return None
    key = hashlib.sha256((stack_text + _source_fingerprint(project_dir)).encode()).hexdigest()
    return project_dir / DISK_CACHE_DIR / f"exports-{stack}-{key[:32]}.json"


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only checkout: the cache is an optimisation only
        pass


_RENDER_CACHE: dict[tuple[str, ...], Recording] = {}


def _render_key(
    stack: str,
    stack_file: StackFile,
    project_dir: Path,
    program_path: Path,
    project: str,
    preview: bool,
) -> tuple[str, ...]:
    """Everything a render of this project's program depends on, as text."""
    config = json.dumps(stack_file.config, sort_keys=True, default=str)
    secrets = json.dumps(sorted(stack_file.secret_keys))
    program_text = program_path.read_text(encoding="utf-8") if program_path.is_file() else ""
    # An environment stack also depends on the stack file its StackReference reads.
    referenced = ""
    if stack_file.config.get("dotnet-delivery:role") == "environment":
        ref = str(stack_file.config.get("dotnet-delivery:toolingStack") or "tooling")
        ref_path = stack_file_path(ref.rsplit("/", 1)[-1], project_dir)
        referenced = ref_path.read_text(encoding="utf-8") if ref_path.is_file() else ""
    return (
        stack,
        config,
        secrets,
        str(project_dir.resolve()),
        str(program_path.resolve()),
        program_text,
        referenced,
        project,
        str(preview),
    )


def cached_render(
    stack: str,
    *,
    project_dir: Path = PROJECT_ROOT,
    stack_file: StackFile | None = None,
    config_path: Path | None = None,
    project: str = "dotnet-delivery",
    preview: bool = False,
) -> Recording:
    """:func:`render` memoised per process (the program is ``<project_dir>/__main__.py``).

    The key is the stack name, the stack file's parsed content (``stack_file``,
    ``config_path`` or ``Pulumi.<stack>.yaml``), the referenced tooling stack file of an
    environment stack, the project directory and the program file's path and text. Every
    call returns a deep copy of the memoised :class:`Recording`, so a caller that changes
    its copy cannot affect another caller.
    """
    if stack_file is None:
        stack_file = load_stack_file(
            config_path or stack_file_path(stack, project_dir), project=project
        )
    program_path = project_dir / "__main__.py"
    key = _render_key(stack, stack_file, project_dir, program_path, project, preview)
    if key not in _RENDER_CACHE:
        _RENDER_CACHE[key] = render(
            stack,
            project_dir=project_dir,
            stack_file=stack_file,
            project=project,
            preview=preview,
        )
    return copy.deepcopy(_RENDER_CACHE[key])


def render(
    stack: str,
    *,
    project_dir: Path = PROJECT_ROOT,
    stack_file: StackFile | None = None,
    config_path: Path | None = None,
    program: Program | None = None,
    project: str = "dotnet-delivery",
    preview: bool = False,
    cache: bool = False,
    account_id: str | None = None,
    region: str | None = None,
) -> Recording:
    """Render one stack of a Pulumi project offline.

    ``stack_file`` (already parsed) or ``config_path`` replace ``Pulumi.<stack>.yaml``.
    ``program`` defaults to ``<project_dir>/__main__.py``. ``cache=True`` is
    :func:`cached_render` (a per-process memo; not with a custom ``program``).
    ``account_id`` / ``region`` set the account and region the mocks put in ARNs (default:
    read from this project's config shape - ``dotnet-delivery:accounts`` and ``aws:region`` -
    else ``123456789012`` / ``us-east-1``); other teams' programs pass their own.
    """
    if cache:
        if program is not None or account_id is not None or region is not None:
            raise ValueError(
                "render(cache=True) memoises this project's __main__.py with its own config "
                "only; use cache=False with program=, account_id= or region="
            )
        return cached_render(
            stack,
            project_dir=project_dir,
            stack_file=stack_file,
            config_path=config_path,
            project=project,
            preview=preview,
        )
    if stack_file is None:
        stack_file = load_stack_file(
            config_path or stack_file_path(stack, project_dir), project=project
        )
    default_account, default_region = _account_and_region(stack_file, stack)
    account = account_id or default_account
    region = region or default_region
    references = stack_reference_outputs(project_dir)
    # Referenced stacks render first, outside this render's context.
    tooling_ref = stack_file.config.get("dotnet-delivery:toolingStack")
    if stack_file.config.get("dotnet-delivery:role") == "environment":
        references(str(tooling_ref or "tooling"))
    return run_program(
        program or program_from_file(project_dir / "__main__.py"),
        project=project,
        stack=stack,
        config=stack_file.runtime_config(),
        secret_keys=stack_file.secret_keys,
        account_id=account,
        region=region,
        stack_outputs=references,
        preview=preview,
    )

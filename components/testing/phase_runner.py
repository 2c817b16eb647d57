"""Run a rendered buildspec locally with bash, in CodeBuild's order and semantics.

:func:`run_buildspec` executes the ``phases`` of a buildspec ``dict`` (as returned by
:func:`components.render.buildspec.render_buildspec`) against a source directory, with the
fake tools of :mod:`components.testing.fake_tools` first on ``PATH``, and returns a
:class:`BuildResult`: build status, each phase's status and command results, the exported
variables, the artifact and report files an upload would find, and the fake-tool calls.

CodeBuild semantics modelled (buildspec version 0.2)
----------------------------------------------------
Sources: the buildspec reference
https://docs.aws.amazon.com/codebuild/latest/userguide/build-spec-ref.html , build phase
transitions https://docs.aws.amazon.com/codebuild/latest/userguide/view-build-details-phases.html ,
environment variables
https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html .

* Order: ``install`` -> ``pre_build`` -> ``build`` -> ``post_build``; then UPLOAD_ARTIFACTS,
  which "is always attempted, even if the BUILD phase fails".
* A command fails when it exits non-zero; the remaining commands of that block are skipped.
  ``finally`` commands "are executed even if a command in the commands block fails"; "the
  phase is successful when all commands in the commands and the finally blocks run
  successfully". (A failing ``finally`` command here also skips the remaining ``finally``
  commands.)
* ``phases/*/on-failure``: ``ABORT`` aborts the build (no later phase runs); ``CONTINUE``
  continues with the next phase. ``RETRY*`` values are not modelled and are refused.
* Without ``on-failure`` the documented phase transitions apply: a failed ``install`` or
  ``pre_build`` ends the build (FINALIZING); a failed ``build`` still runs ``post_build``
  ("commands in some build phases might not be run if commands in earlier build phases
  fail", and the transition diagram sends BUILD failures to POST_BUILD).
* ``CODEBUILD_BUILD_SUCCEEDING`` is ``1`` while the build is succeeding and ``0`` after any
  phase failed ("Set to 0 if the build is failing, or 1 if the build is succeeding").
* Version 0.2 keeps state between commands ("In buildspec version 0.1, CodeBuild runs each
  command in a separate instance of the default shell ... we recommend that you use version
  0.2, which solves this issue"): the working directory and environment variables carry
  over, to later commands and later phases. CodeBuild implements this by running each
  command as its own script (``/codebuild/output/tmp/script.sh`` in build logs) with the
  environment and directory restored, so shell functions, shell options (``set -e``) and
  traps do *not* carry over. The runner does the same: one fresh shell per command,
  variables (``set -a``: plain assignments persist too) and ``pwd`` saved on exit and
  restored before the next command. A command must not install its own ``EXIT`` trap.
* ``env.shell``: ``bash`` or ``/bin/sh`` (the Linux tags; default ``/bin/sh``).
* ``env.variables`` have the lowest precedence: the ``env`` argument of
  :func:`run_buildspec` stands for the project / start-build / batch-task variables and
  wins. Names starting with ``CODEBUILD_`` are reserved and refused in the buildspec.
* ``env.secrets-manager`` (``secret-id:json-key:version-stage:version-id``) and
  ``env.parameter-store`` are resolved from the ``secrets`` / ``parameters`` arguments; a
  missing one fails the build before any phase, as CodeBuild does while provisioning.
* ``env.exported-variables``: their values when ``post_build`` ended ("after the post_build
  phase ends, the value of exported variables cannot change").
* ``artifacts`` / ``secondary-artifacts`` / ``reports``: the files matching ``files`` under
  ``base-directory`` when the phases ended, whatever the status (upload is attempted even
  after a failed build), so a test can assert that nothing names an image after a failure.
* Not modelled: ``runtime-versions`` (the tools on ``PATH`` are used), ``run-as``,
  ``proxy``, caches, timeouts per phase (one timeout per command instead).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.testing.fake_tools import FAKE_TOOLS_DIR, read_calls, write_control

PHASES = ("install", "pre_build", "build", "post_build")
ON_FAILURE = ("ABORT", "CONTINUE")
SUCCEEDED, FAILED, SKIPPED = "SUCCEEDED", "FAILED", "SKIPPED"

CODEBUILD_DEFAULTS: Mapping[str, str] = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "CODEBUILD_BUILD_ID": "orders-build:0f0e0d0c-0b0a-4909-8807-060504030201",
    "CODEBUILD_BUILD_ARN": (
        "arn:aws:codebuild:eu-west-1:123456789012:build/"
        "orders-build:0f0e0d0c-0b0a-4909-8807-060504030201"
    ),
    "CODEBUILD_BUILD_NUMBER": "7",
    "CODEBUILD_BUILD_IMAGE": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
    "CODEBUILD_INITIATOR": "codepipeline/orders-pipeline",
    "CODEBUILD_RESOLVED_SOURCE_VERSION": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
}


class BuildspecError(ValueError):
    """A buildspec the runner cannot execute faithfully (names the key and the value)."""


@dataclass(frozen=True)
class CommandResult:
    phase: str
    block: str
    command: str
    exit_code: int
    output: str


@dataclass(frozen=True)
class PhaseResult:
    name: str
    status: str
    commands: tuple[CommandResult, ...] = ()


@dataclass(frozen=True)
class ToolCall:
    tool: str
    argv: tuple[str, ...]
    cwd: str


@dataclass(frozen=True)
class BuildResult:
    """What a CodeBuild run of the buildspec would have produced."""

    status: str
    phases: tuple[PhaseResult, ...]
    exported_variables: Mapping[str, str]
    artifacts: Mapping[str, tuple[str, ...]]
    artifact_dirs: Mapping[str, Path]
    reports: Mapping[str, tuple[str, ...]]
    calls: tuple[ToolCall, ...]
    error: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)

    def phase(self, name: str) -> PhaseResult:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(
            f"phase {name!r} is not in this buildspec; phases: {[p.name for p in self.phases]}"
        )

    @property
    def output(self) -> str:
        return "".join(c.output for p in self.phases for c in p.commands)

    def calls_of(self, tool: str, *prefix: str) -> list[ToolCall]:
        """Calls of ``tool`` whose argv starts with ``prefix``."""
        return [c for c in self.calls if c.tool == tool and c.argv[: len(prefix)] == tuple(prefix)]

    def artifact_files(self, name: str = "primary") -> dict[str, str]:
        """Relative path -> text of every artifact file (``name``: primary or secondary id)."""
        base = self.artifact_dirs.get(name)
        return (
            {
                rel: (base / rel).read_text(encoding="utf-8", errors="replace")
                for rel in self.artifacts.get(name, ())
            }
            if base
            else {}
        )


def run_buildspec(
    spec: Mapping[str, Any],
    source_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    parameters: Mapping[str, str] | None = None,
    control: Mapping[str, Any] | None = None,
    fake_state_dir: Path | None = None,
    command_timeout: float = 60.0,
) -> BuildResult:
    """Execute ``spec``'s phases in ``source_dir`` the way CodeBuild would (module docstring).

    ``env`` plays the project / start-build / batch-task variables (they override
    ``env.variables``); ``secrets`` maps a Secrets Manager secret id to its value (a JSON
    text when references use a json-key); ``control`` is written as the fake tools' control
    file; ``fake_state_dir`` shares the fake registry between runs (a batch).
    """
    source_dir = Path(source_dir).resolve()
    _validate(spec)
    env_section = spec.get("env") or {}
    shell = str(env_section.get("shell") or "/bin/sh")
    if shell not in ("bash", "/bin/sh"):
        raise BuildspecError(f"env.shell: {shell!r} is not a Linux shell tag; use bash or /bin/sh")

    with tempfile.TemporaryDirectory(prefix="phase-runner-") as tmp:
        work = Path(tmp)
        state_dir = Path(fake_state_dir) if fake_state_dir else work / "fake-state"
        state_dir.mkdir(parents=True, exist_ok=True)
        calls_log = state_dir / "calls.log"
        calls_before = len(read_calls(str(calls_log)))
        control_file = work / "control"
        write_control(str(control_file), control or {})
        bin_dir = work / "bin"
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
        home = work / "home"
        home.mkdir()

        base: dict[str, str] = {
            "PATH": os.pathsep.join(
                [str(bin_dir), str(FAKE_TOOLS_DIR), "/usr/local/bin", "/usr/bin", "/bin"]
            ),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(work),
            "FAKE_TOOLS_DIR": str(FAKE_TOOLS_DIR),
            "FAKE_CONTROL": str(control_file),
            "FAKE_CALLS_LOG": str(calls_log),
            "FAKE_STATE_DIR": str(state_dir),
            "CODEBUILD_SRC_DIR": str(source_dir),
            **CODEBUILD_DEFAULTS,
        }
        variables = {
            str(k): _as_env_value(k, v) for k, v in (env_section.get("variables") or {}).items()
        }
        merged = {**base, **variables, **{str(k): str(v) for k, v in (env or {}).items()}}
        try:
            merged.update(_resolve_references(env_section, secrets or {}, parameters or {}))
        except BuildspecError as error:
            return _result(
                spec,
                source_dir,
                FAILED,
                (),
                {},
                calls_log,
                calls_before,
                error=str(error),
                environment=merged,
            )

        state = work / "state"
        state.mkdir()
        (state / "env.sh").write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in merged.items()),
            encoding="utf-8",
        )
        (state / "cwd").write_text(str(source_dir), encoding="utf-8")

        phases: list[PhaseResult] = []
        succeeding = True
        stop = False
        for name in PHASES:
            body = (spec.get("phases") or {}).get(name)
            if body is None:
                continue
            if stop:
                phases.append(PhaseResult(name, SKIPPED))
                continue
            results: list[CommandResult] = []
            failed = False
            for block in ("commands", "finally"):
                if block == "finally" and not body.get("finally"):
                    continue
                for command in body.get(block) or []:
                    outcome = _run_command(
                        shell, state, str(command), succeeding, command_timeout, name, block
                    )
                    results.append(outcome)
                    if outcome.exit_code != 0:
                        failed = True
                        break
            phases.append(PhaseResult(name, FAILED if failed else SUCCEEDED, tuple(results)))
            if failed:
                succeeding = False
                on_failure = body.get("on-failure")
                if on_failure == "ABORT":
                    stop = True
                elif on_failure == "CONTINUE":
                    pass
                elif name in ("install", "pre_build"):
                    stop = True
        final_env = _read_state(shell, state)
        exported = {
            k: final_env[k] for k in env_section.get("exported-variables") or [] if k in final_env
        }
        return _result(
            spec,
            source_dir,
            SUCCEEDED if succeeding else FAILED,
            tuple(phases),
            exported,
            calls_log,
            calls_before,
            environment=final_env,
        )


def _validate(spec: Mapping[str, Any]) -> None:
    if str(spec.get("version")) != "0.2":
        raise BuildspecError(f"version: {spec.get('version')!r}; the runner models 0.2 only")
    phases = spec.get("phases")
    if not isinstance(phases, Mapping) or not phases:
        raise BuildspecError("phases: a buildspec needs at least one phase")
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise BuildspecError(f"phases: unknown phase(s) {unknown}; allowed: {list(PHASES)}")
    for name, body in phases.items():
        on_failure = (body or {}).get("on-failure")
        if on_failure is not None and on_failure not in ON_FAILURE:
            raise BuildspecError(
                f"phases.{name}.on-failure: {on_failure!r} is not modelled; use ABORT or CONTINUE"
            )
        if not (body or {}).get("commands"):
            raise BuildspecError(f"phases.{name}.commands: required when the phase is given")
    for key in (spec.get("env") or {}).get("variables") or {}:
        if str(key).startswith("CODEBUILD_"):
            raise BuildspecError(f"env.variables.{key}: the CODEBUILD_ prefix is reserved")


def _as_env_value(key: object, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BuildspecError(f"env.variables.{key}: {value!r} must be a string")
    return str(value)


def _resolve_references(
    env_section: Mapping[str, Any], secrets: Mapping[str, str], parameters: Mapping[str, str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, reference in (env_section.get("secrets-manager") or {}).items():
        ref = str(reference)
        parts = ref.split(":")
        cut = 7 if ref.startswith("arn:") else 1
        secret_id, rest = ":".join(parts[:cut]), parts[cut:]
        if secret_id not in secrets:
            raise BuildspecError(f"env.secrets-manager.{key}: secret {secret_id!r} does not exist")
        value = secrets[secret_id]
        if rest and rest[0]:
            try:
                value = str(json.loads(value)[rest[0]])
            except (ValueError, KeyError, TypeError) as error:
                raise BuildspecError(
                    f"env.secrets-manager.{key}: secret {secret_id!r} has no JSON key {rest[0]!r}"
                ) from error
        out[str(key)] = value
    for key, name in (env_section.get("parameter-store") or {}).items():
        if str(name) not in parameters:
            raise BuildspecError(f"env.parameter-store.{key}: parameter {name!r} does not exist")
        out[str(key)] = parameters[str(name)]
    return out


_PREAMBLE_BASH = """\
__state={state}
. "$__state/env.sh"
cd "$(cat "$__state/cwd")" || exit 1
export CODEBUILD_BUILD_SUCCEEDING={succeeding}
trap '__rc=$?; export -n __rc; export -p > "$__state/env.sh"; pwd > "$__state/cwd"; \
exit $__rc' EXIT
set -a
"""
_PREAMBLE_SH = """\
__state={state}
. "$__state/env.sh"
cd "$(cat "$__state/cwd")" || exit 1
export CODEBUILD_BUILD_SUCCEEDING={succeeding}
trap '__rc=$?; export -p > "$__state/env.sh"; pwd > "$__state/cwd"; exit $__rc' EXIT
set -a
"""


def _run_command(
    shell: str,
    state: Path,
    command: str,
    succeeding: bool,
    timeout: float,
    phase: str,
    block: str,
) -> CommandResult:
    preamble = _PREAMBLE_BASH if shell == "bash" else _PREAMBLE_SH
    script = state / "script.sh"
    script.write_text(
        preamble.format(state=shlex.quote(str(state)), succeeding="1" if succeeding else "0")
        + command
        + "\n",
        encoding="utf-8",
    )
    executable = shutil.which("bash") if shell == "bash" else "/bin/sh"
    try:
        completed = subprocess.run(
            [executable or "bash", str(script)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin"},
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace")
        return CommandResult(phase, block, command, 124, output + f"\n[timed out after {timeout}s]")
    return CommandResult(
        phase, block, command, completed.returncode, completed.stdout.decode(errors="replace")
    )


def _read_state(shell: str, state: Path) -> dict[str, str]:
    executable = shutil.which("bash") if shell == "bash" else "/bin/sh"
    completed = subprocess.run(
        [executable or "bash", "-c", '. "$1/env.sh"; env -0', "read-state", str(state)],
        stdout=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    )
    out: dict[str, str] = {}
    for item in completed.stdout.decode(errors="replace").split("\0"):
        if "=" in item:
            key, value = item.split("=", 1)
            if not key.startswith("__"):
                out[key] = value
    return out


def _read_calls(path: Path, skip: int) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(call["tool"], tuple(call["argv"]), call["cwd"])
        for call in read_calls(str(path))[skip:]
    )


def _match(base: Path, patterns: Sequence[str]) -> tuple[str, ...]:
    if not base.is_dir():
        return ()
    found: set[str] = set()
    for pattern in patterns:
        for path in base.glob(str(pattern)):
            if path.is_file():
                found.add(path.relative_to(base).as_posix())
    return tuple(sorted(found))


def _result(
    spec: Mapping[str, Any],
    source_dir: Path,
    status: str,
    phases: tuple[PhaseResult, ...],
    exported: Mapping[str, str],
    calls_log: Path,
    calls_before: int,
    *,
    error: str = "",
    environment: Mapping[str, str] | None = None,
) -> BuildResult:
    artifacts: dict[str, tuple[str, ...]] = {}
    dirs: dict[str, Path] = {}
    section = spec.get("artifacts") or {}
    groups = {"primary": section, **(section.get("secondary-artifacts") or {})}
    for name, group in groups.items():
        if not group.get("files"):
            continue
        base = source_dir / str(group.get("base-directory") or ".")
        dirs[name] = base
        artifacts[name] = _match(base, group["files"])
    reports = {
        str(name): _match(
            source_dir / str(group.get("base-directory") or "."), group.get("files") or []
        )
        for name, group in (spec.get("reports") or {}).items()
    }
    return BuildResult(
        status=status,
        phases=phases,
        exported_variables=dict(exported),
        artifacts=artifacts,
        artifact_dirs=dirs,
        reports=reports,
        calls=_read_calls(calls_log, calls_before),
        error=error,
        environment=dict(environment or {}),
    )

"""``python -m components.preview --stack NAME``: render a stack offline and judge it.

Renders the stack from its own ``Pulumi.NAME.yaml`` (or ``--config FILE``) with the offline
engine, evaluates the CrossGuard policy pack on the recorded resources, and prints the
resource tree, counts by type, the release timeline and the policy verdicts.

Exit codes: 0 clean (advisory findings allowed), 1 a mandatory policy violation,
2 invalid configuration (one line per bad key on stderr, no traceback).

``--json FILE`` writes the machine-readable report; ``--markdown FILE`` a report fit for a
pull-request comment. ``secure:`` values are never decrypted and never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from components import config as config_mod
from components.render import timeline
from components.stacks import InvalidConfiguration
from components.testing.engine import (
    PROJECT_ROOT,
    StackFileError,
    load_stack_file,
    render,
    stack_file_path,
)
from components.testing.queries import Recording

EXIT_OK = 0
EXIT_MANDATORY = 1
EXIT_CONFIG = 2


def _violations(recording: Recording) -> list[dict[str, Any]]:
    from components.testing.policy_runner import evaluate

    resources = [r.to_dict() for r in recording.resources]
    return [
        v.to_dict()
        for v in evaluate(resources, stack_name=recording.stack, project=recording.project)
    ]


def cross_stack_problems(
    cfg: config_mod.StackConfig,
    siblings: dict[str, config_mod.EnvironmentConfig],
    project_dir: Path,
) -> list[str]:
    """Rules spanning stacks, read from the stack files: for the tooling stack against every
    environment it deploys, for an environment stack against the tooling stack it reads."""
    if isinstance(cfg, config_mod.ToolingConfig):
        return config_mod.cross_stack_problems(cfg, list(siblings.values()))
    tooling_name = (cfg.tooling_stack or "tooling").rsplit("/", 1)[-1]
    try:
        tooling = config_mod.parse(
            load_stack_file(stack_file_path(tooling_name, project_dir)).runtime_config()
        )
    except (StackFileError, config_mod.ConfigError):
        return []  # the tooling stack's own preview reports its problems
    if not isinstance(tooling, config_mod.ToolingConfig):
        return []
    return config_mod.cross_stack_problems(tooling, [cfg])


def _siblings(
    cfg: config_mod.StackConfig, project_dir: Path
) -> dict[str, config_mod.EnvironmentConfig]:
    """The environment stacks' validated configs, read from their own stack files (only
    the preview reads them; the tooling *program* never reads an environment stack)."""
    out: dict[str, config_mod.EnvironmentConfig] = {}
    if not isinstance(cfg, config_mod.ToolingConfig):
        return out
    for env in cfg.pipeline.environments:
        path = stack_file_path(env.name, project_dir)
        try:
            sibling = config_mod.parse(load_stack_file(path).runtime_config())
        except (StackFileError, config_mod.ConfigError):
            continue
        if isinstance(sibling, config_mod.EnvironmentConfig):
            out[env.name] = sibling
    return out


def build_report(
    stack: str,
    *,
    config_path: Path | None = None,
    project_dir: Path = PROJECT_ROOT,
    cache: bool = False,
) -> tuple[int, dict[str, Any], list[str]]:
    """Render + judge ``stack``. Returns (exit code, report, config problems).

    ``cache=True`` renders through the per-process render memo (``render(..., cache=True)``);
    the CLI never sets it, so every ``preview`` run renders afresh.
    """
    try:
        stack_file = load_stack_file(config_path or stack_file_path(stack, project_dir))
    except StackFileError as exc:
        return EXIT_CONFIG, {}, [str(exc)]
    try:
        cfg = config_mod.parse(stack_file.runtime_config())
    except config_mod.ConfigError as exc:
        return EXIT_CONFIG, {}, exc.problems
    siblings = _siblings(cfg, project_dir)
    problems = cross_stack_problems(cfg, siblings, project_dir)
    if problems:
        return EXIT_CONFIG, {}, problems
    try:
        recording = render(stack, project_dir=project_dir, stack_file=stack_file, cache=cache)
    except (config_mod.ConfigError, InvalidConfiguration) as exc:
        return EXIT_CONFIG, {}, exc.problems
    violations = _violations(recording)
    report: dict[str, Any] = {
        "project": recording.project,
        "stack": stack,
        "role": cfg.role,
        "resources": [r.to_dict() for r in recording.resources],
        "counts": recording.counts_by_type(),
        "exports": recording.exports,
        "violations": violations,
        "timelines": timeline.for_stack(cfg, siblings),
        "warnings": cfg.warnings if isinstance(cfg, config_mod.EnvironmentConfig) else [],
    }
    mandatory = [v for v in violations if v["enforcementLevel"] == "mandatory"]
    return (EXIT_MANDATORY if mandatory else EXIT_OK), report, []


# --------------------------------------------------------------------------------------
# Rendering the report
# --------------------------------------------------------------------------------------
def _short_type(token: str) -> str:
    return token


def resource_tree(report: dict[str, Any]) -> Tree:
    tree = Tree(f"[bold]{report['project']}[/] / [bold]{report['stack']}[/] ({report['role']})")
    nodes: dict[str | None, Tree] = {None: tree}
    resources = report["resources"]
    urns = {r["urn"] for r in resources}
    pending = list(resources)
    # Parents are registered before children, but be robust to any order.
    for _ in range(len(pending) + 1):
        rest = []
        for res in pending:
            parent = res["parent"] if res["parent"] in urns else None
            if parent in nodes:
                label = f"{res['name']} [dim]{_short_type(res['type'])}[/]"
                nodes[res["urn"]] = nodes[parent].add(label)
            else:
                rest.append(res)
        if not rest:
            break
        pending = rest
    return tree


def print_report(report: dict[str, Any], console: Console) -> None:
    console.print(resource_tree(report))
    table = Table(title=f"{len(report['resources'])} resources by type")
    table.add_column("type")
    table.add_column("count", justify="right")
    for token, count in report["counts"].items():
        table.add_row(token, str(count))
    console.print(table)
    for line in timeline_lines(report):
        console.print(line)
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning[/] {warning}")
    violations = report["violations"]
    if not violations:
        console.print("[green]Policy pack: no violations[/]")
    for v in violations:
        colour = "red" if v["enforcementLevel"] == "mandatory" else "yellow"
        console.print(
            f"[{colour}]{v['enforcementLevel']}[/] [bold]{v['policy']}[/] "
            f"{v.get('urn') or '(stack)'}\n    {v['message']}"
        )


def timeline_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for entry in report.get("timelines", []):
        lines.append(entry["title"])
        lines.extend(f"  {step}" for step in entry["lines"])
        for warning in entry.get("warnings", []):
            lines.append(f"  WARNING: {warning}")
    return lines


def markdown(report: dict[str, Any], exit_code: int) -> str:
    status = {0: "✅ clean", 1: "❌ mandatory policy violation"}.get(exit_code, "invalid")
    out = [
        f"### `pulumi preview` (offline) — stack `{report['stack']}`: {status}",
        "",
        f"{len(report['resources'])} resources.",
        "",
        "| type | count |",
        "|---|---:|",
    ]
    out += [f"| `{t}` | {c} |" for t, c in report["counts"].items()]
    if report.get("warnings"):
        out += ["", "#### Configuration warnings", ""]
        out += [f"- {w}" for w in report["warnings"]]
    if report.get("timelines"):
        out += ["", "#### Release timeline", "", "```"]
        out += timeline_lines(report)
        out += ["```"]
    out += ["", "#### Policy verdicts", ""]
    if not report["violations"]:
        out.append("No violations.")
    else:
        out += ["| level | policy | resource | message |", "|---|---|---|---|"]
        for v in report["violations"]:
            msg = v["message"].replace("|", "\\|").replace("\n", " ")
            out.append(
                f"| {v['enforcementLevel']} | `{v['policy']}` | `{v.get('urn') or ''}` | {msg} |"
            )
    return "\n".join(out) + "\n"


def json_report(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("project", "stack", "role", "resources", "violations", "counts", "exports", "warnings")
    return {k: report[k] for k in keys} | {"timelines": report.get("timelines", [])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.preview",
        description="Render a stack offline, evaluate the policy pack, print the result.",
    )
    parser.add_argument("--stack", required=True, help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--config", type=Path, help="use this stack file instead")
    parser.add_argument("--json", type=Path, dest="json_path", help="write the JSON report here")
    parser.add_argument("--markdown", type=Path, help="write a Markdown report here")
    parser.add_argument("--quiet", action="store_true", help="print only problems")
    args = parser.parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    code, report, problems = build_report(args.stack, config_path=args.config)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        print(
            f"invalid configuration for stack {args.stack!r}: {len(problems)} problem(s); "
            "nothing was rendered",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if not args.quiet:
        print_report(report, console)
    if args.json_path:
        args.json_path.write_text(json.dumps(json_report(report), indent=2, default=str))
    if args.markdown:
        args.markdown.write_text(markdown(report, code))
    mandatory = sum(1 for v in report["violations"] if v["enforcementLevel"] == "mandatory")
    console.print(
        f"stack {args.stack}: {len(report['resources'])} resources, "
        f"{len(report['violations'])} policy finding(s), {mandatory} mandatory"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())

"""Behaviour of the fake build tools (stdlib only; imported by the scripts next to it).

Each fake appends ``{"tool", "argv", "cwd"}`` as one record to ``$FAKE_CALLS_LOG`` and reads
what to do from ``$FAKE_CONTROL`` (missing file: everything passes, nothing is found). State
that must survive between calls (images built, tagged, pushed) lives in
``$FAKE_STATE_DIR/docker.state``. The three files are ``marshal`` streams written and read
by the same interpreter (the runner puts ``python3`` -> its own interpreter on ``PATH``):
``marshal`` needs no import, ``json`` costs each fake call ~10 ms of start-up, and a build
makes ~15 calls. Use :func:`write_control` / :func:`read_calls` from Python.

Control keys (all optional)::

    {
      "fail": [["dotnet", "build"], ["docker", "push"]],   # argv prefixes that exit 1
      "dotnet": {"failing_tests": ["Orders.Tests"],          # test projects that fail
                 "vulnerable": [{"package": "System.Text.Json", "version": "8.0.0",
                                 "severity": "High", "transitive": true,
                                 "advisory": "https://github.com/advisories/GHSA-..."}]},
      "gitleaks": {"findings": [{"RuleID": "aws-access-token", "File": "appsettings.json"}]},
      "trivy": {"vulnerabilities": [{"id": "CVE-2024-0001", "severity": "CRITICAL",
                                     "package": "openssl", "installed": "3.0.1",
                                     "fixed": "3.0.2"}]},
      "docker": {"digests": {"<repo>:<tag>": "sha256:<64 hex>"}},   # digest per pushed ref
      "aws": {"batch_arn": "arn:...:build-batch/p:id", "batch_number": 42}
    }
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Mapping, Sequence

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs each call ~20 ms
if TYPE_CHECKING:
    from typing import Any

TOOLS = ("aws", "curl", "docker", "dotnet", "gitleaks", "trivy")
INSTALLED_TOOLS = ("gitleaks", "trivy")


def write_control(path: str, control: Mapping[str, Any]) -> None:
    """Write the control file the fakes read (``control`` as in the module docstring)."""
    with open(path, "wb") as handle:
        marshal.dump(_plain(control), handle)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def read_calls(path: str) -> list[dict[str, Any]]:
    """Every recorded call, oldest first."""
    calls: list[dict[str, Any]] = []
    if not os.path.exists(path):
        return calls
    with open(path, "rb") as handle:
        while True:
            try:
                calls.append(marshal.load(handle))
            except EOFError:
                return calls


def _control() -> dict[str, Any]:
    path = os.environ.get("FAKE_CONTROL", "")
    if path and os.path.exists(path):
        with open(path, "rb") as handle:
            data = marshal.load(handle)
            return data if isinstance(data, dict) else {}
    return {}


def _record(tool: str, argv: Sequence[str]) -> None:
    path = os.environ.get("FAKE_CALLS_LOG")
    if path:
        with open(path, "ab") as handle:
            marshal.dump({"tool": tool, "argv": list(argv), "cwd": os.getcwd()}, handle)


def _opt(argv: Sequence[str], *names: str) -> str | None:
    """Value of ``--name value`` or ``--name=value``."""
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _positionals(argv: Sequence[str], with_value: Sequence[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in with_value:
            skip = True
            continue
        if not arg.startswith("-"):
            out.append(arg)
    return out


def _dumps(value: Any, **options: Any) -> str:
    import json  # lazily: only the calls that print JSON pay for it

    return json.dumps(value, **options)


def _sha256(data: bytes) -> str:
    import hashlib  # lazily: most calls never hash

    return hashlib.sha256(data).hexdigest()


def _digest_of(text: str) -> str:
    return "sha256:" + _sha256(text.encode())


# ---------------------------------------------------------------------------------------
# Archives served by the fake curl (deterministic, so a test can pin their sha256)
# ---------------------------------------------------------------------------------------


def stub_script(tool: str) -> bytes:
    """The "binary" inside a downloaded archive: it runs the fake of the same name."""
    return f'#!/bin/sh\nexec "$FAKE_TOOLS_DIR/{tool}" "$@"\n'.encode()


def archive_bytes(tool: str) -> bytes:
    """A .tar.gz with one executable member ``tool``, byte-for-byte reproducible."""
    import gzip  # imported here: the other fakes start faster without them
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = stub_script(tool)
        info = tarfile.TarInfo(tool)
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def archive_sha256(tool: str) -> str:
    return _sha256(archive_bytes(tool))


# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------


def _curl(argv: Sequence[str], control: dict[str, Any]) -> int:
    output = _opt(argv, "--output", "-o")
    urls = [a for a in argv if a.startswith("https://")]
    if not output or len(urls) != 1:
        print("fake curl: expected --output FILE and one https:// URL", file=sys.stderr)
        return 2
    name = urls[0].rsplit("/", 1)[-1]
    tool = next((t for t in INSTALLED_TOOLS if name.startswith(t + "_")), None)
    if tool is None or urls[0] in control.get("curl", {}).get("missing", []):
        print(f"curl: (22) The requested URL returned error: 404 ({urls[0]})", file=sys.stderr)
        return 22
    payload = archive_bytes(tool)
    if urls[0] in control.get("curl", {}).get("tampered", []):
        payload += b"tampered"
    with open(output, "wb") as handle:
        handle.write(payload)
    return 0


def _trx(outcome: str, name: str) -> str:
    total, passed = ("1", "1") if outcome == "Passed" else ("1", "0")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">\n'
        f'  <ResultSummary outcome="{"Completed" if passed == "1" else "Failed"}">\n'
        f'    <Counters total="{total}" executed="{total}" passed="{passed}" '
        f'failed="{int(total) - int(passed)}" />\n'
        "  </ResultSummary>\n"
        f"  <!-- {name} -->\n"
        "</TestRun>\n"
    )


def _dotnet(argv: Sequence[str], control: dict[str, Any]) -> int:
    settings = control.get("dotnet", {})
    if not argv or argv[0] in ("--version", "--info"):
        print("8.0.404")
        return 0
    command = argv[0]
    if command == "test":
        project = _positionals(
            argv[1:], ("--configuration", "--logger", "--results-directory", "--collect")
        )[0]
        name = os.path.basename(project).rsplit(".", 1)[0]
        results = _opt(argv, "--results-directory") or "TestResults"
        logger = _opt(argv, "--logger") or ""
        trx_name = logger.split("LogFileName=", 1)[1] if "LogFileName=" in logger else "r.trx"
        os.makedirs(results, exist_ok=True)
        failing = name in settings.get("failing_tests", [])
        with open(os.path.join(results, trx_name), "w", encoding="utf-8") as handle:
            handle.write(_trx("Failed" if failing else "Passed", name))
        if _opt(argv, "--collect"):
            coverage_dir = os.path.join(results, _sha256(name.encode())[:8])
            os.makedirs(coverage_dir, exist_ok=True)
            with open(os.path.join(coverage_dir, "coverage.cobertura.xml"), "w") as handle:
                handle.write('<?xml version="1.0"?><coverage line-rate="0.9"></coverage>\n')
        if failing:
            print(f"Failed!  - Failed: 1, Passed: 0, Total: 1 - {name}.dll")
            return 1
        print(f"Passed!  - Failed: 0, Passed: 1, Total: 1 - {name}.dll")
        return 0
    if command == "list" and "--vulnerable" in argv:
        frameworks: dict[str, list[dict[str, Any]]] = {
            "topLevelPackages": [],
            "transitivePackages": [],
        }
        for item in settings.get("vulnerable", []):
            kind = "transitivePackages" if item.get("transitive") else "topLevelPackages"
            frameworks[kind].append(
                {
                    "id": item["package"],
                    "resolvedVersion": item.get("version", "1.0.0"),
                    "vulnerabilities": [
                        {
                            "severity": item["severity"],
                            "advisoryurl": item.get("advisory", "https://github.com/advisories"),
                        }
                    ],
                }
            )
        listed: dict[str, Any] = {"path": os.path.join(os.getcwd(), "src/Service/Service.csproj")}
        if frameworks["topLevelPackages"] or frameworks["transitivePackages"]:
            listed["frameworks"] = [{"framework": "net8.0", **frameworks}]
        print(
            _dumps(
                {
                    "version": 1,
                    "parameters": "--vulnerable --include-transitive",
                    "sources": ["https://api.nuget.org/v3/index.json"],
                    "projects": [listed],
                },
                indent=2,
            )
        )
        return 0
    return 0


def _gitleaks(argv: Sequence[str], control: dict[str, Any]) -> int:
    if argv and argv[0] == "version":
        print("8.21.2")
        return 0
    found = control.get("gitleaks", {}).get("findings", [])
    report = _opt(argv, "--report-path")
    if report:
        with open(report, "w", encoding="utf-8") as handle:
            handle.write(_dumps({"version": "2.1.0", "runs": [{"results": found}]}))
    if found:
        for item in found:
            print(f"Finding: REDACTED  RuleID: {item.get('RuleID')}  File: {item.get('File')}")
        print(f"WRN leaks found: {len(found)}")
        return int(_opt(argv, "--exit-code") or "1")
    print("INF no leaks found")
    return 0


def _trivy(argv: Sequence[str], control: dict[str, Any]) -> int:
    if not argv or argv[0] in ("--version", "version"):
        print("Version: 0.57.1")
        return 0
    if argv[0] != "image":
        return 0
    image = _positionals(
        argv[1:],
        (
            "--format",
            "--output",
            "--severity",
            "--exit-code",
            "--scanners",
            "--ignorefile",
            "--cache-dir",
        ),
    )[-1]
    if image not in _state().get("local", {}):
        print(f"FATAL unable to find the specified image {image!r}", file=sys.stderr)
        return 1
    items = list(control.get("trivy", {}).get("vulnerabilities", []))
    if "--ignore-unfixed" in argv:
        items = [v for v in items if v.get("fixed")]
    severities = _opt(argv, "--severity")
    if severities:
        items = [v for v in items if v["severity"] in severities.split(",")]
    fmt = _opt(argv, "--format") or "table"
    if fmt == "json":
        body = _dumps(
            {
                "SchemaVersion": 2,
                "ArtifactName": image,
                "ArtifactType": "container_image",
                "Results": [
                    {
                        "Target": f"{image} (debian 12.8)",
                        "Class": "os-pkgs",
                        "Vulnerabilities": [
                            {
                                "VulnerabilityID": v["id"],
                                "PkgName": v.get("package", "libfoo"),
                                "InstalledVersion": v.get("installed", "1.0.0"),
                                "FixedVersion": v.get("fixed", ""),
                                "Severity": v["severity"],
                                "Status": "fixed" if v.get("fixed") else "affected",
                            }
                            for v in items
                        ],
                    }
                ],
            },
            indent=2,
        )
    elif fmt == "cyclonedx":
        body = _dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "version": 1,
                "metadata": {"component": {"type": "container", "name": image}},
                "components": [],
            },
            indent=2,
        )
    else:
        body = "\n".join(f"{v['id']} {v['severity']}" for v in items)
    output = _opt(argv, "--output")
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(body + "\n")
    else:
        print(body)
    exit_code = _opt(argv, "--exit-code")
    return int(exit_code) if exit_code and items else 0


def _state_path() -> str:
    return os.path.join(os.environ["FAKE_STATE_DIR"], "docker.state")


def _state() -> dict[str, Any]:
    path = _state_path()
    if os.path.exists(path):
        with open(path, "rb") as handle:
            data: dict[str, Any] = marshal.load(handle)
            return data
    return {"local": {}, "registry": {}}


def _save(state: dict[str, Any]) -> None:
    with open(_state_path(), "wb") as handle:
        marshal.dump(state, handle)


def _docker(argv: Sequence[str], control: dict[str, Any]) -> int:
    state = _state()
    settings = control.get("docker", {})
    if not argv or argv[0] in ("version", "--version"):
        print("Docker version 26.1.4")
        return 0
    if argv[0] == "login":
        sys.stdin.read()
        print("Login Succeeded")
        return 0
    if argv[0] == "run":
        print("installing: arm64 OK\ninstalling: amd64 OK")
        return 0
    if argv[0] == "tag":
        source, target = argv[1], argv[2]
        if source not in state["local"]:
            print(f"Error response from daemon: No such image: {source}", file=sys.stderr)
            return 1
        state["local"][target] = state["local"][source]
        _save(state)
        return 0
    if argv[0] == "push":
        ref = argv[1]
        if ref not in state["local"]:
            print(f"An image does not exist locally with the tag: {ref}", file=sys.stderr)
            return 1
        digest = settings.get("digests", {}).get(ref) or _digest_of("push:" + ref)
        state["registry"][ref] = {"digest": digest, "platform": state["local"][ref]["platform"]}
        state["registry"][ref.rsplit(":", 1)[0] + "@" + digest] = state["registry"][ref]
        _save(state)
        repository, tag = ref.rsplit(":", 1)
        print(f"The push refers to repository [{repository}]")
        print(f"{tag}: digest: {digest} size: 1573")
        return 0
    if argv[:2] == ["buildx", "version"]:
        print("github.com/docker/buildx v0.17.1")
        return 0
    if argv[:2] == ["buildx", "build"]:
        built = _opt(argv, "--tag", "-t")
        platform = _opt(argv, "--platform") or "linux/amd64"
        if not built or "--load" not in argv:
            print("fake docker: buildx build needs --tag and --load", file=sys.stderr)
            return 1
        state["local"][built] = {"platform": platform}
        _save(state)
        print(f"naming to docker.io/{built} done")
        return 0
    if argv[:3] == ["buildx", "imagetools", "create"]:
        index_ref = _opt(argv, "--tag", "-t")
        sources = _positionals(argv[3:], ("--tag", "-t"))
        missing = [s for s in sources if s not in state["registry"]]
        if not index_ref or not sources or missing:
            print(f"ERROR: {missing or 'no sources'}: not found", file=sys.stderr)
            return 1
        digests = sorted(state["registry"][s]["digest"] for s in sources)
        digest = settings.get("digests", {}).get(index_ref) or _digest_of(
            "index:" + ",".join(digests)
        )
        state["registry"][index_ref] = {
            "digest": digest,
            "manifests": [
                {
                    "digest": state["registry"][s]["digest"],
                    "platform": state["registry"][s]["platform"],
                }
                for s in sources
            ],
        }
        _save(state)
        print(f"pushing {index_ref} {digest}")
        return 0
    if argv[:3] == ["buildx", "imagetools", "inspect"]:
        ref = _positionals(argv[3:], ("--format",))[0]
        entry = state["registry"].get(ref)
        if not entry:
            print(f"ERROR: {ref}: not found", file=sys.stderr)
            return 1
        print(
            _dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": entry["digest"],
                    "manifests": [
                        {
                            "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": m["digest"],
                            "platform": dict(
                                zip(("os", "architecture"), m["platform"].split("/"), strict=False)
                            ),
                        }
                        for m in entry.get("manifests", [])
                    ],
                }
            )
        )
        return 0
    return 0


def _aws(argv: Sequence[str], control: dict[str, Any]) -> int:
    settings = control.get("aws", {})
    if not argv or argv[0] == "--version":
        print("aws-cli/2.22.0")
        return 0
    if argv[:2] == ["ecr", "get-login-password"]:
        print("fake-ecr-password")
        return 0
    if argv[:2] == ["codebuild", "batch-get-builds"]:
        print(
            settings.get(
                "batch_arn",
                "arn:aws:codebuild:eu-west-1:123456789012:build-batch/orders-build:0b1c2d3e",
            )
        )
        return 0
    if argv[:2] == ["codebuild", "batch-get-build-batches"]:
        print(settings.get("batch_number", 42))
        return 0
    print(f"fake aws: unsupported call {' '.join(argv)}", file=sys.stderr)
    return 2


_HANDLERS = {
    "aws": _aws,
    "curl": _curl,
    "docker": _docker,
    "dotnet": _dotnet,
    "gitleaks": _gitleaks,
    "trivy": _trivy,
}


def main(tool: str) -> None:
    argv = sys.argv[1:]
    _record(tool, argv)
    control = _control()
    for prefix in control.get("fail", []):
        if prefix and prefix[0] == tool and list(argv[: len(prefix) - 1]) == prefix[1:]:
            print(f"fake {tool}: told to fail: {' '.join(argv)}", file=sys.stderr)
            sys.exit(1)
    sys.exit(_HANDLERS[tool](argv, control))

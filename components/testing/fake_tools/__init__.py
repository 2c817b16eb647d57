"""Fake ``dotnet``, ``docker``, ``trivy``, ``gitleaks``, ``aws`` and ``curl`` for the phase runner.

The executables in this directory are put first on ``PATH`` by
:func:`components.testing.phase_runner.run_buildspec`. Each appends its argv to a calls log
and obeys a control file (format in :mod:`._fakelib`; written by :func:`write_control`).
The fake ``curl`` serves a reproducible archive for the gitleaks/Trivy release URLs, so a
buildspec's pinned ``sha256sum -c`` check passes only with :func:`archive_sha256` of that
tool.
"""

from pathlib import Path

from components.testing.fake_tools._fakelib import (
    TOOLS,
    archive_bytes,
    archive_sha256,
    read_calls,
    write_control,
)

FAKE_TOOLS_DIR = Path(__file__).resolve().parent

__all__ = [
    "FAKE_TOOLS_DIR",
    "TOOLS",
    "archive_bytes",
    "archive_sha256",
    "read_calls",
    "write_control",
]

#!/usr/bin/env bash
# Set up everything this repository needs, from the committed lockfiles, on a machine with
# only Python >= 3.11 and git. Idempotent: run it again after pulling.
#   .tools/  a private virtualenv holding the pinned uv (a fast installer for the lockfiles)
#   .venv/   the project environment, exactly as requirements-dev.txt (hash-pinned) says,
#            byte-compiled up front (preview start-up would otherwise recompile pulumi_aws);
#            Pulumi's own `toolchain: pip` installs requirements.txt into the same .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION="0.13.9"
PYTHON="${PYTHON:-python3}"
if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$PYTHON" -m venv .tools
  .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi
[ -x .venv/bin/python ] || .tools/bin/uv venv --quiet --python "$PYTHON" .venv
.tools/bin/uv pip sync --quiet --require-hashes --compile-bytecode --python .venv/bin/python requirements-dev.txt

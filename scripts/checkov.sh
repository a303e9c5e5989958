#!/usr/bin/env bash
# Static security checks of terraform/ with checkov, in a virtualenv of its own: checkov pins
# versions of python-hcl2 (and others) that conflict with what the test suite uses, so it never
# goes into .venv.
#
#   scripts/checkov.sh              # creates the venv on first use, then runs checkov
#   DR_CHECKOV_VENV=/tmp/ck scripts/checkov.sh
#   DR_CHECKOV_VERSION=3.3.30 scripts/checkov.sh
#
# Exit code: checkov's (0: no failed check). Offline: --skip-download keeps checkov from fetching
# its policy bundle or talking to any platform; only PyPI is needed, once, to install it.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${DR_CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dr/checkov-venv}"
version="${DR_CHECKOV_VERSION:-3.3.30}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/checkov" ] || ! "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$version"; then
  echo "installing checkov $version into $venv (first run only)" >&2
  mkdir -p "$(dirname "$venv")"
  log="$(mktemp)"
  if ! { "$python" -m venv "$venv" \
         && "$venv/bin/pip" install --disable-pip-version-check --upgrade pip \
         && "$venv/bin/pip" install --disable-pip-version-check "checkov==$version"; } >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "could not install checkov $version into $venv (full log: $log)" >&2
    exit 2
  fi
  rm -f "$log"
fi

export BC_SKIP_MAPPING=TRUE          # no calls home for guideline mappings
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
exec "$venv/bin/checkov" -d terraform --skip-download --compact --quiet "$@"

#!/usr/bin/env bash
# LocalStack community on the host, without Docker, for the opt-in test job:
#
#   scripts/localstack.sh start && DR_TEST_LOCALSTACK=1 .venv/bin/python -m pytest -m localstack tests/integration
#   scripts/localstack.sh stop
#
# start   make the virtualenv when missing (localstack-core[runtime] and the pins it needs, on
#         Python >= 3.12, outside this repository), start LocalStack in the background on
#         $LOCALSTACK_LISTEN and wait until it answers /_localstack/health
# stop    stop the LocalStack this script started (its pid file; nothing else)
# restart stop, then start: an empty LocalStack (it keeps its state in memory)
# status  say whether it is running and print its health document
#
# Environment:
#   LOCALSTACK_HOME     where the virtualenv, data, log and pid file live
#                       (default: ${XDG_CACHE_HOME:-~/.cache}/dr-localstack)
#   LOCALSTACK_VENV     the virtualenv (default: $LOCALSTACK_HOME/venv)
#   LOCALSTACK_PYTHON   the Python to make it with (default: the first of python3.14, python3.13,
#                       python3.12, python3 on PATH that is new enough: >= 3.13 for
#                       localstack-core 4.14, which imports warnings.deprecated; >= 3.12 before)
#   LOCALSTACK_VERSION  the localstack-core version (default: the one the README's table is about;
#                       4.13.1 is the newest that runs on Python 3.12)
#   LOCALSTACK_LISTEN   host:port (default 127.0.0.1:4566; DR_LOCALSTACK_ENDPOINT must match)
set -euo pipefail

LOCALSTACK_VERSION="${LOCALSTACK_VERSION:-4.14.0}"
LOCALSTACK_HOME="${LOCALSTACK_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/dr-localstack}"
LOCALSTACK_VENV="${LOCALSTACK_VENV:-$LOCALSTACK_HOME/venv}"
LOCALSTACK_LISTEN="${LOCALSTACK_LISTEN:-127.0.0.1:4566}"
DATA="$LOCALSTACK_HOME/data"
PIDFILE="$LOCALSTACK_HOME/localstack.pid"
LOG="$LOCALSTACK_HOME/localstack.log"
HEALTH="http://$LOCALSTACK_LISTEN/_localstack/health"
case "$LOCALSTACK_VERSION" in
  4.1[4-9]*|4.[2-9][0-9]*|[5-9].*|20[0-9][0-9].*) MIN_PY=3.13 ;;
  *) MIN_PY=3.12 ;;
esac
MIN_PY_TUPLE="(${MIN_PY/./, })"
# Pins found necessary with localstack-core's runtime extra (newer majors break its imports).
PINS=("cbor2<6" "pyopenssl<25" "cryptography<45" "service_identity")

die() { echo "localstack.sh: $*" >&2; exit 1; }

find_python() {
  if [ -n "${LOCALSTACK_PYTHON:-}" ]; then
    echo "$LOCALSTACK_PYTHON"; return
  fi
  local candidate
  for candidate in python3.14 python3.13 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c "import sys; sys.exit(sys.version_info < $MIN_PY_TUPLE)" 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  die "localstack-core $LOCALSTACK_VERSION needs Python >= $MIN_PY; none found on PATH" \
      "(set LOCALSTACK_PYTHON=/path/to/python$MIN_PY, or LOCALSTACK_VERSION=4.13.1 for Python 3.12)"
}

ensure_venv() {
  local want="localstack-core[runtime]==$LOCALSTACK_VERSION ${PINS[*]}"
  local marker="$LOCALSTACK_VENV/.dr-installed"
  if [ -x "$LOCALSTACK_VENV/bin/python" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ] \
      && "$LOCALSTACK_VENV/bin/python" -c "import sys; sys.exit(sys.version_info < $MIN_PY_TUPLE)"; then
    return
  fi
  local python
  python="$(find_python)"
  "$python" -c "import sys; sys.exit(sys.version_info < $MIN_PY_TUPLE)" \
    || die "$python is older than $MIN_PY, which localstack-core $LOCALSTACK_VERSION needs"
  echo "localstack.sh: installing $want into $LOCALSTACK_VENV (takes a few minutes)" >&2
  mkdir -p "$LOCALSTACK_HOME"
  if [ -x "$LOCALSTACK_VENV/bin/python" ] \
      && ! "$LOCALSTACK_VENV/bin/python" -c "import sys; sys.exit(sys.version_info < $MIN_PY_TUPLE)"; then
    [ -f "$marker" ] || die "$LOCALSTACK_VENV has a Python older than $MIN_PY and is not this script's"
    rm -rf "$LOCALSTACK_VENV"  # made by this script for an older localstack-core
  fi
  [ -x "$LOCALSTACK_VENV/bin/python" ] || "$python" -m venv "$LOCALSTACK_VENV"
  "$LOCALSTACK_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$LOCALSTACK_VENV/bin/python" -m pip install --quiet \
    "localstack-core[runtime]==$LOCALSTACK_VERSION" "${PINS[@]}"
  echo "$want" >"$marker"
}

healthy() {
  "$LOCALSTACK_VENV/bin/python" - "$HEALTH" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
EOF
}

running_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  if pid="$(running_pid)"; then
    echo "localstack.sh: already running (pid $pid) on $LOCALSTACK_LISTEN"; return
  fi
  ensure_venv
  if healthy; then
    die "something already answers on $LOCALSTACK_LISTEN that this script did not start"
  fi
  mkdir -p "$DATA"
  # OVERRIDE_IN_DOCKER=0: it runs on the host; FILESYSTEM_ROOT: its state and caches under
  # $LOCALSTACK_HOME rather than /var/lib/localstack; DNS_ADDRESS=0: no DNS server on port 53;
  # DISABLE_EVENTS=1, SKIP_SSL_CERT_DOWNLOAD=1: no analytics and no certificate download (it
  # serves plain HTTP to the tests and needs nothing from the internet).
  GATEWAY_LISTEN="$LOCALSTACK_LISTEN" OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$DATA" DNS_ADDRESS=0 \
    DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    setsid "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + ${LOCALSTACK_START_TIMEOUT:-120}))
  until healthy; do
    if ! running_pid >/dev/null; then
      tail -n 30 "$LOG" >&2
      die "LocalStack exited during start-up (log: $LOG)"
    fi
    [ $SECONDS -lt $deadline ] || die "LocalStack did not answer $HEALTH in time (log: $LOG)"
    sleep 1
  done
  echo "localstack.sh: LocalStack $LOCALSTACK_VERSION running (pid $(cat "$PIDFILE")) at http://$LOCALSTACK_LISTEN"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"; echo "localstack.sh: not running"; return
  fi
  # setsid made it a process group leader: stop the group it started, and only that.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  fi
  rm -f "$PIDFILE"
  echo "localstack.sh: stopped (pid $pid)"
}

status() {
  if pid="$(running_pid)"; then
    echo "localstack.sh: running (pid $pid) at http://$LOCALSTACK_LISTEN"
    "$LOCALSTACK_VENV/bin/python" - "$HEALTH" <<'EOF' || true
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())
EOF
  else
    echo "localstack.sh: not running"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;  # LocalStack keeps its state in memory: a restart empties it
  status) status ;;
  install) ensure_venv ;;
  *) echo "usage: $0 start|stop|restart|status|install" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Smoke test of the MCP conformance harness itself (no gateway, no key): installs
# the pinned deps if missing, starts each of the three servers, runs both clients
# against each, and checks the `basic` and `progress` scenario outputs.
# Usage: bash tests/conformance/smoke.sh     Exit 0 = every pair passed.
set -euo pipefail
cd "$(dirname "$0")"

[ -d node_modules ] || npm ci --no-audit --no-fund >&2
python3 -c 'import mcp' 2>/dev/null || python3 -m pip install -q -r requirements.txt >&2

# The real interpreter, not a pyenv shim: a shim may leave a bash wrapper between
# us and Python, so the PID we would signal is not the server's.
PY=$(python3 -c 'import sys; print(sys.executable)')

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

start() { # start <name> <cmd...>: waits for "listening <port>", sets PORT
  local name=$1; shift
  RAN_LOG="$TMP/$name.ran" "$@" --port 0 >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PIDS+=($!)
  for _ in $(seq 100); do
    PORT=$(awk '/^listening /{print $2}' "$TMP/$name.out")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "FAIL $name did not start"; cat "$TMP/$name.err"; exit 1
}

passed=0; failed=0
check() { # check <label> <scenario> <json>
  if python3 - "$2" "$3" <<'EOF'
import json, sys
scenario, out = sys.argv[1], json.loads(sys.argv[2])
assert out["initialize"] == "ok", out["initialize"]
if scenario == "basic":
    assert sorted(out["tools"] or []) == ["echo", "progress", "secret_admin", "whoami"], out["tools"]
    assert out["calls"][0] == {"tool": "echo", "ok": True, "text": "hi"}, out["calls"][0]
    assert all(c["ok"] for c in out["calls"]), out["calls"]
else:
    p = out["progress"]
    assert out["calls"] == [{"tool": "progress", "ok": True, "text": "done"}], out["calls"]
    assert len(p) == 3, f"expected 3 progress notifications, got {p}"
    assert p[2] - p[0] >= 250, f"notifications not incremental: {p}"
EOF
  then echo "ok   $1 $2"; passed=$((passed + 1)); else echo "FAIL $1 $2: $3"; failed=$((failed + 1)); fi
}

export KEYSMITH_KEY=
for server in ts_server py_server careless_upstream; do
  case $server in
    ts_server) start $server node ts_server.mjs ;;
    *) start $server "$PY" $server.py ;;
  esac
  url="http://127.0.0.1:$PORT/mcp"
  for client in ts_client py_client; do
    case $client in ts_client) cmd=(node ts_client.mjs) ;; *) cmd=("$PY" py_client.py) ;; esac
    for scenario in basic progress; do
      [ $server = careless_upstream ] && [ $scenario = progress ] && continue
      check "$client -> $server" $scenario "$(timeout 60 "${cmd[@]}" "$url" $scenario)"
    done
  done
  if grep -q "^secret_admin	-$" "$TMP/$server.ran"; then echo "ok   $server RAN_LOG"; passed=$((passed + 1)); else echo "FAIL $server RAN_LOG"; failed=$((failed + 1)); fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

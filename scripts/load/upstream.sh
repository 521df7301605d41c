# Sourced by the load scripts: the static MCP upstream (upstream.conf), an
# nginx in a process of its own, so every configuration measured forwards to
# the same separate server.

# start_upstream WORK PORT: its pid file is WORK/upstream.pid.
start_upstream() {
  sed -e "s|@WORK@|$1|g" -e "s|@UPSTREAM@|$2|g" scripts/load/upstream.conf >"$1/upstream.conf"
  /usr/sbin/nginx -c "$1/upstream.conf" -p "$1" -e "$1/upstream-error.log"
}

# stop_upstream WORK
stop_upstream() {
  if [ -f "$1/upstream.pid" ]; then kill "$(cat "$1/upstream.pid")" 2>/dev/null || true; fi
}

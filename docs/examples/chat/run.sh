#!/usr/bin/env bash
# The chat demo in one command: the Node example app (hook + page + tokens) and one wsrelay beside it.
#
#   bash docs/examples/chat/run.sh          then open the URL it prints, in two browser windows
#
# Builds what is missing first: the client (clients/js/dist, with npm and the committed lockfile)
# and the relay (build/relay/wsrelay, as tools/dev does). Ctrl-C stops both processes.
# Environment: APP_PORT (3000), RELAY_PORT (8080), WSRELAY_BIN (a relay binary to use instead).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
APP_PORT="${APP_PORT:-3000}"
RELAY_PORT="${RELAY_PORT:-8080}"
RELAY="${WSRELAY_BIN:-$ROOT/build/relay/wsrelay}"

log() { printf '==> %s\n' "$*" >&2; }
for tool in node npm; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
done

if [[ ! -f "$ROOT/clients/js/dist/wsrelay-client.min.js" ]]; then
    log "building the client (clients/js)"
    (cd "$ROOT/clients/js" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
fi
if [[ ! -x "$RELAY" ]]; then
    log "building the relay (build/)"
    (cd "$ROOT" && cmake --preset default >/dev/null && nice cmake --build --preset default --target wsrelay)
fi

# Fresh secrets for this run, shared by the two processes and passed in the environment, as a
# Kubernetes Secret would be; nothing secret is written to the config file.
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
JWT_SECRET="$(secret)"
HOOK_SECRET="$(secret)"
API_KEY="$(secret)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wsrelay-chat.XXXXXX")"
cat >"$WORK/wsrelay.yaml" <<EOF
listen: {host: 127.0.0.1, port: $RELAY_PORT}
broker: {type: memory}          # one relay; with several, use redis (docs/scaling.md)
auth:
  enabled: true                 # the secret comes from WSRELAY_AUTH_JWT_SECRET
hook:
  url: http://127.0.0.1:$APP_PORT/hook
  routes: ["chat:*=hook"]       # a client's publish on chat:* goes to the app, which publishes it
channels:
  - {pattern: "chat:*", history_size: 100}   # a reconnecting page recovers what it missed
drain: {window_ms: 2000}
EOF

APP_PID=""
RELAY_PID=""
stop() {
    trap - EXIT INT TERM
    for pid in $RELAY_PID $APP_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $RELAY_PID $APP_PID; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 130' INT TERM

WSRELAY_AUTH_JWT_SECRET="$JWT_SECRET" WSRELAY_HOOK_SECRET="$HOOK_SECRET" WSRELAY_API_KEY="$API_KEY" \
    "$RELAY" --config "$WORK/wsrelay.yaml" \
    2> >(while IFS= read -r line; do printf 'relay | %s\n' "$line"; done >&2) &
RELAY_PID=$!

DEMO=1 HOOK_SECRET="$HOOK_SECRET" JWT_SECRET="$JWT_SECRET" RELAY_API_KEY="$API_KEY" \
    RELAY_URLS="ws://127.0.0.1:$RELAY_PORT/ws" RELAY_API_URL="http://127.0.0.1:$RELAY_PORT" \
    node "$ROOT/docs/examples/hook-node/server.js" "$APP_PORT" \
    > >(while IFS= read -r line; do
            printf 'app   | %s\n' "$line"
            [[ "$line" == listening* ]] && printf '\n==> chat demo: open http://127.0.0.1:%s/ (Ctrl-C stops it)\n\n' "$APP_PORT"
        done) 2>&1 &
APP_PID=$!

# Either process ending ends the demo.
wait -n "$RELAY_PID" "$APP_PID" || true
log "a process stopped; shutting down"

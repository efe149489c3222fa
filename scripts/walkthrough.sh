#!/usr/bin/env bash
# The walkthrough of docs/walkthrough.md, step by step, against a running `python -m devhost run`.
# Exits non-zero as soon as a step fails, so CI keeps the documented commands honest.
#
# Settings (environment), defaults matching `make run`:
#   HOST_URL      http://localhost:7071        the Functions host
#   SANDBOX_URL   https://localhost:8443       the WNS sandbox
#   CA            .sandbox/ca.pem              the sandbox CA
#   KEY           read from KEYS_FILE          the function key
#   KEYS_FILE     .devhost/keys.json
#   PYTHON        python3                      used only to read JSON
#   INSTALLATION  my-pc
#   TIMEOUT       30                           seconds to wait for deliveries
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_URL=${HOST_URL:-http://localhost:7071}
SANDBOX_URL=${SANDBOX_URL:-https://localhost:8443}
CA=${CA:-.sandbox/ca.pem}
KEYS_FILE=${KEYS_FILE:-.devhost/keys.json}
PYTHON=${PYTHON:-python3}
INSTALLATION=${INSTALLATION:-my-pc}
TIMEOUT=${TIMEOUT:-30}

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'walkthrough: FAILED: %s\n' "$*" >&2; exit 1; }
# json FIELD: print one field of the JSON document on stdin ("a.b" for nested fields).
json() {
  "$PYTHON" -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value if isinstance(value, str) else json.dumps(value))
' "$1"
}
# call EXPECTED_STATUS curl-arguments...: run curl, check the status (a glob: 20[01]), print the body.
call() {
  local expected=$1 body status
  shift
  body=$(mktemp)
  status=$(curl --silent --show-error --output "$body" --write-out '%{http_code}' "$@") || {
    rm -f "$body"
    fail "curl $* could not connect"
  }
  # shellcheck disable=SC2254
  case $status in $expected) ;; *)
    cat "$body" >&2
    rm -f "$body"
    fail "curl $* answered $status, expected $expected"
    ;;
  esac
  cat "$body"
  rm -f "$body"
}

[ -f "$CA" ] || fail "no sandbox CA at $CA: is \`python -m devhost run\` running?"
if [ -z "${KEY:-}" ]; then
  [ -f "$KEYS_FILE" ] || fail "no keys file at $KEYS_FILE: set KEY or KEYS_FILE"
  KEY=$(json functionKeys.default < "$KEYS_FILE")
fi

step "0. The app is up"
call 200 "$HOST_URL/api/health" >/dev/null
echo "healthy"

step "1. Create a channel in the WNS sandbox (a Windows device would get one from WNS)"
channel=$(call 201 --cacert "$CA" -X POST "$SANDBOX_URL/_sandbox/channels")
echo "$channel"
CHANNEL_ID=$(json channelId <<<"$channel")
CHANNEL_URI=$(json channelUri <<<"$channel")
EXPIRES_AT=$(json expiresAt <<<"$channel")

step "2. Register it as installation $INSTALLATION (201 created, 200 on a re-run)"
call '20[01]' -X PUT "$HOST_URL/api/installations/$INSTALLATION" \
  -H "x-functions-key: $KEY" -H "content-type: application/json" \
  -d "{\"channelUri\": \"$CHANNEL_URI\", \"expiresAt\": \"$EXPIRES_AT\"}"
echo

step "3. Send a toast"
toast=$(call 202 -X POST "$HOST_URL/api/notifications" \
  -H "x-functions-key: $KEY" -H "content-type: application/json" \
  -d "{\"type\": \"toast\", \"target\": {\"installationId\": \"$INSTALLATION\"},
       \"payload\": \"<toast><visual><binding template='ToastGeneric'><text>Hello from pushfuncs</text></binding></visual></toast>\"}")
echo "$toast"
TOAST_ID=$(json id <<<"$toast")

step "4. Send a raw notification"
raw=$(call 202 -X POST "$HOST_URL/api/notifications" \
  -H "x-functions-key: $KEY" -H "content-type: application/json" \
  -d "{\"type\": \"raw\", \"payload\": \"{\\\"hello\\\": \\\"raw\\\"}\", \"target\": {\"installationId\": \"$INSTALLATION\"}}")
echo "$raw"
RAW_ID=$(json id <<<"$raw")

step "5. Both arrive in the sandbox inbox"
deadline=$((SECONDS + TIMEOUT))
while :; do
  inbox=$(call 200 --cacert "$CA" "$SANDBOX_URL/_sandbox/channels/$CHANNEL_ID/inbox")
  types=$("$PYTHON" -c 'import json, sys; print(" ".join(sorted(d["type"] for d in json.load(sys.stdin))))' <<<"$inbox")
  [ "$types" = "wns/raw wns/toast" ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "inbox has [$types] after ${TIMEOUT}s, expected a toast and a raw notification"
  sleep 0.5
done
echo "$inbox" | "$PYTHON" -c '
import json, sys
for delivery in json.load(sys.stdin):
    print(delivery["type"] + ": " + delivery["payload"])
'

step "6. Their status says delivered"
for id in "$TOAST_ID" "$RAW_ID"; do
  while :; do
    summary=$(call 200 "$HOST_URL/api/notifications/$id" -H "x-functions-key: $KEY")
    state=$(json status <<<"$summary")
    [ "$state" = delivered ] && break
    [ "$SECONDS" -lt "$deadline" ] || fail "notification $id is $state, expected delivered"
    sleep 0.5
  done
  echo "$summary"
done

printf '\nwalkthrough: OK\n'

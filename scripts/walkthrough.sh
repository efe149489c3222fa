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
#   INSTALLATION  alice-pc
#   DEVICE_USER   alice                        a test user of the sandbox's Entra ID
#   TIMEOUT       30                           seconds to wait for deliveries
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_URL=${HOST_URL:-http://localhost:7071}
SANDBOX_URL=${SANDBOX_URL:-https://localhost:8443}
CA=${CA:-.sandbox/ca.pem}
KEYS_FILE=${KEYS_FILE:-.devhost/keys.json}
PYTHON=${PYTHON:-python3}
INSTALLATION=${INSTALLATION:-alice-pc}
DEVICE_USER=${DEVICE_USER:-alice}
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

step "2. Sign in as $DEVICE_USER (the sandbox plays Entra ID; a Windows app uses MSAL)"
tenant=$(call 200 --cacert "$CA" "$SANDBOX_URL/_sandbox" | json tenantId)
signin=$(call 200 --cacert "$CA" "$SANDBOX_URL/$tenant/oauth2/v2.0/token" \
  -d grant_type=password -d client_id=sandbox-device-app -d "username=$DEVICE_USER" \
  -d password=sandbox-user-password -d "scope=api://sandbox-api/Installations.ReadWrite")
TOKEN=$(json access_token <<<"$signin")
echo "got an access token for the API (not shown)"

step "3. The device registers its channel as installation $INSTALLATION with its token (201 created, 200 on a re-run)"
registered=$(call '20[01]' -X PUT "$HOST_URL/api/me/installations/$INSTALLATION" \
  -H "Authorization: Bearer $TOKEN" -H "content-type: application/json" \
  -d "{\"channelUri\": \"$CHANNEL_URI\", \"expiresAt\": \"$EXPIRES_AT\", \"userId\": \"someone-else\"}")
USER_ID=$(json userId <<<"$registered")
[ "$USER_ID" != someone-else ] || fail "the device chose its own userId"
echo "registered; userId is $DEVICE_USER's object id from the token: $USER_ID"
call 401 -X GET "$HOST_URL/api/me/installations/$INSTALLATION" >/dev/null
echo "without the token: 401"

step "4. Send a toast"
toast=$(call 202 -X POST "$HOST_URL/api/notifications" \
  -H "x-functions-key: $KEY" -H "content-type: application/json" \
  -d "{\"type\": \"toast\", \"target\": {\"installationId\": \"$INSTALLATION\"},
       \"payload\": \"<toast><visual><binding template='ToastGeneric'><text>Hello from pushfuncs</text></binding></visual></toast>\"}")
echo "$toast"
TOAST_ID=$(json id <<<"$toast")

step "5. Send a raw notification"
raw=$(call 202 -X POST "$HOST_URL/api/notifications" \
  -H "x-functions-key: $KEY" -H "content-type: application/json" \
  -d "{\"type\": \"raw\", \"payload\": \"{\\\"hello\\\": \\\"raw\\\"}\", \"target\": {\"userId\": \"$USER_ID\"}}")
echo "$raw"
RAW_ID=$(json id <<<"$raw")

step "6. Both arrive in the sandbox inbox"
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

step "7. Their status says delivered"
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

#!/usr/bin/env bash
# Smoke walk of the /sessions API of a running service (native or AgentOS):
#
#   scripts/test-session-api.sh BASE_URL
#
# list -> create -> rename -> patch -> get -> runs [-> runs of a seeded session] -> delete.
# Prints one "ok <step>" line per step; the first wrong status or value prints what was
# expected and what came back (on stderr) and exits 1. Needs curl and jq.
#
# Environment (all optional):
#   SMOKE_AUTH                 key for `Authorization: Bearer $SMOKE_AUTH` (OS_SECURITY_KEY)
#   SMOKE_DB_ID                sent as ?db_id= on every request (needed with several databases)
#   SMOKE_SESSION_WITH_RUNS    id of an existing session with runs: its runs must be a non-empty array
#   SMOKE_TIMEOUT              seconds per request (default 30)
#
# The walk creates one session `smoke-<time>-<pid>-<random>` and deletes it again.

set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 BASE_URL   (e.g. http://127.0.0.1:8080)" >&2
    exit 2
fi
for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$0: $tool is required" >&2; exit 2; }
done

BASE_URL="${1%/}"
TIMEOUT="${SMOKE_TIMEOUT:-30}"
WORK="$(mktemp -d)"
BODY="$WORK/body"
SID=""
CREATED=0

cleanup() {
    # A walk that failed half-way does not leave its session behind (best effort).
    if [[ "$CREATED" == 1 ]]; then
        curl "${CURL_ARGS[@]}" -o /dev/null -X DELETE "$(url "/sessions/${SID}")" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

CURL_ARGS=(--silent --show-error --max-time "$TIMEOUT" -H "Accept: application/json")
if [[ -n "${SMOKE_AUTH:-}" ]]; then
    CURL_ARGS+=(-H "Authorization: Bearer ${SMOKE_AUTH}")
fi

STATUS=""
STEP=""

fail() {  # fail EXPECTED GOT
    echo "FAIL ${STEP}: expected ${1}, got ${2}" >&2
    if [[ -s "$BODY" ]]; then
        echo "  response body: $(head -c 2000 "$BODY")" >&2
    fi
    exit 1
}

# url PATH [QUERY]: BASE_URL + PATH, with the query and SMOKE_DB_ID appended.
url() {
    local query="${2:-}"
    if [[ -n "${SMOKE_DB_ID:-}" ]]; then
        query="${query:+${query}&}db_id=$(jq -rn --arg v "$SMOKE_DB_ID" '$v|@uri')"
    fi
    printf '%s%s%s' "$BASE_URL" "$1" "${query:+?${query}}"
}

# call METHOD URL [JSON_BODY]: sets STATUS, leaves the response body in $BODY.
call() {
    local method="$1" target="$2" data="${3:-}"
    local args=("${CURL_ARGS[@]}" -X "$method" -o "$BODY" -w '%{http_code}')
    if [[ -n "$data" ]]; then
        args+=(-H "Content-Type: application/json" --data-binary "$data")
    fi
    : >"$BODY"
    if ! STATUS="$(curl "${args[@]}" "$target" 2>"$WORK/curl.err")"; then
        fail "an HTTP answer from $method $target" "curl error: $(tr '\n' ' ' <"$WORK/curl.err")"
    fi
}

expect_status() {  # expect_status CODE
    [[ "$STATUS" == "$1" ]] || fail "status $1" "status $STATUS"
}

# expect_json FILTER EXPECTED_JSON: jq FILTER applied to the body equals EXPECTED_JSON
# (compared as canonical JSON, so key order and spacing do not matter).
expect_json() {
    local filter="$1" want got
    want="$(jq -cS . <<<"$2")"
    if ! got="$(jq -cS "$filter" "$BODY" 2>/dev/null)"; then
        fail "JSON with $filter == $want" "a body that is not JSON"
    fi
    [[ "$got" == "$want" ]] || fail "$filter == $want" "$filter == $got"
}

ok() { echo "ok ${STEP}"; }

SID="smoke-$(date +%s)-$$-${RANDOM}"
NAME="smoke session ${SID}"
STATE='{"smoke": true, "counter": 1, "tags": ["a", "b"]}'
NEW_STATE='{"smoke": true, "counter": 2}'
METADATA='{"source": "smoke-test", "attempt": 1}'

STEP="list"
call GET "$(url /sessions)"
expect_status 200
expect_json '.meta | type' '"object"'
expect_json '.data | type' '"array"'
ok

STEP="create"
call POST "$(url /sessions type=agent)" "$(jq -cn --arg id "$SID" --argjson state "$STATE" \
    '{session_id: $id, session_state: $state}')"
expect_status 201
CREATED=1
expect_json '.session_id' "$(jq -cn --arg v "$SID" '$v')"
expect_json '.session_state' "$STATE"
ok

STEP="rename"
call POST "$(url "/sessions/${SID}/rename")" "$(jq -cn --arg n "$NAME" '{session_name: $n}')"
expect_status 200
expect_json '.session_id' "$(jq -cn --arg v "$SID" '$v')"
expect_json '.session_name' "$(jq -cn --arg v "$NAME" '$v')"
ok

STEP="patch"
call PATCH "$(url "/sessions/${SID}")" "$(jq -cn --argjson s "$NEW_STATE" --argjson m "$METADATA" \
    '{session_state: $s, metadata: $m}')"
expect_status 200
expect_json '.session_state' "$NEW_STATE"
expect_json '.metadata' "$METADATA"
expect_json '.session_name' "$(jq -cn --arg v "$NAME" '$v')"
ok

STEP="get"
call GET "$(url "/sessions/${SID}")"
expect_status 200
expect_json '.session_id' "$(jq -cn --arg v "$SID" '$v')"
expect_json '.session_name' "$(jq -cn --arg v "$NAME" '$v')"
expect_json '.session_state' "$NEW_STATE"
expect_json '.metadata' "$METADATA"
ok

STEP="runs"
call GET "$(url "/sessions/${SID}/runs")"
expect_status 200
expect_json '.' '[]'
ok

if [[ -n "${SMOKE_SESSION_WITH_RUNS:-}" ]]; then
    STEP="runs-existing"
    call GET "$(url "/sessions/$(jq -rn --arg v "$SMOKE_SESSION_WITH_RUNS" '$v|@uri')/runs")"
    expect_status 200
    expect_json 'type == "array" and length > 0' 'true'
    ok
fi

STEP="delete"
call DELETE "$(url "/sessions/${SID}")"
expect_status 204
CREATED=0
ok

STEP="get-deleted"
call GET "$(url "/sessions/${SID}")"
expect_status 404
expect_json '.detail' "$(jq -cn --arg v "Session with id '${SID}' not found" '$v')"
ok

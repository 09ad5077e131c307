#!/usr/bin/env bash
# End-to-end smoke of manifests/overlays/demo on a running cluster (the kind workflow,
# .github/workflows/kind.yml, runs it; so can you, once the overlay is applied and ready):
#
#   tests/k8s/smoke.sh [NAMESPACE]        (default actbridge-demo; needs kubectl and jq)
#
# From a client pod in the namespace:
#   1. alice logs in at the demo token service (password grant through the front end's
#      client, agent-portal: her token's audience names every agent);
#   2. she calls the agent through its Service; the capture hands the request to Envoy,
#      actbridge verifies and delegates it, the agent calls document-service, and
#      actbridge swaps the agent's placeholder for a token delegated to document-service;
#   3. document-service (an echo) shows that token: sub = alice, act = summarizer-tech,
#      aud = document-service, and it is not alice's own token.
# Refused: no token (401), and carol through summarizer-tech (403, empty grant).
set -euo pipefail

NS="${1:-actbridge-demo}"
CLIENT_IMAGE="${CLIENT_IMAGE:-curlimages/curl:8.11.1}"
AGENT_URL=http://summarizer-tech:8080/summarize/DOC-001
TOKEN_URL=http://actbridge-sts:8180/realms/actbridge/protocol/openid-connect/token
AGENT_ID=spiffe://demo.example.com/agent/summarizer-tech
DOCS_ID=spiffe://demo.example.com/service/document-service

k() { kubectl -n "$NS" "$@"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

k delete pod smoke-client --ignore-not-found --wait=true >/dev/null
k run smoke-client --image="$CLIENT_IMAGE" --restart=Never --command -- sleep 600 >/dev/null
trap 'k delete pod smoke-client --wait=false >/dev/null 2>&1 || true' EXIT
k wait pod/smoke-client --for=condition=Ready --timeout=120s >/dev/null

# curl inside the cluster; prints the body, then the status code on a line of its own.
call() { k exec smoke-client -- curl -sS --max-time 15 -w '\n%{http_code}' "$@" || true; }
status_of() { tail -n1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }

login() {
  local user="$1" out
  out=$(call -X POST "$TOKEN_URL" \
    --data-urlencode grant_type=password \
    --data-urlencode "username=$user" \
    --data-urlencode "password=${user}123" \
    --data-urlencode client_id=agent-portal \
    --data-urlencode client_secret=agent-portal-demo-secret \
    --data-urlencode "scope=openid documents.read")
  [ "$(status_of "$out")" = 200 ] || fail "$user's login: HTTP $(status_of "$out"): $(body_of "$out")"
  body_of "$out" | jq -er .access_token
}

# The claims of a JWT (its payload, base64url-decoded).
claims() {
  local p
  p=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
  while (( ${#p} % 4 )); do p+='='; done
  base64 -d <<<"$p"
}

echo "smoke: 1. alice logs in"
alice=$(login alice)
alice_sub=$(claims "$alice" | jq -r .sub)

echo "smoke: 2. alice -> summarizer-tech -> document-service"
out=$(call -H "Authorization: Bearer $alice" "$AGENT_URL")
[ "$(status_of "$out")" = 200 ] || fail "alice's call: HTTP $(status_of "$out"): $(body_of "$out")"
delegated=$(body_of "$out" | tr -d '\r' | awk 'tolower($1) == "authorization:" && $2 == "Bearer" {print $3; exit}')
[ -n "$delegated" ] || fail "document-service received no bearer token: $(body_of "$out")"
[ "$delegated" != "$alice" ] || fail "alice's own token reached document-service"

echo "smoke: 3. the token document-service received"
claims "$delegated" | jq '{sub, preferred_username, aud, act, scope}'
claims "$delegated" | jq -e --arg sub "$alice_sub" --arg agent "$AGENT_ID" --arg docs "$DOCS_ID" '
  .sub == $sub
  and .preferred_username == "alice"
  and ([.aud] | flatten | index($docs) != null)
  and .act.client_id == $agent' >/dev/null \
  || fail "the delegated token is not sub=alice, act=summarizer-tech, aud=document-service"

echo "smoke: 4. refused: no token"
out=$(call "$AGENT_URL")
[ "$(status_of "$out")" = 401 ] || fail "no token: expected HTTP 401, got $(status_of "$out")"

echo "smoke: 5. refused: carol through summarizer-tech (hr ∩ {finance, engineering} is empty)"
carol=$(login carol)
out=$(call -H "Authorization: Bearer $carol" "$AGENT_URL")
[ "$(status_of "$out")" = 403 ] || fail "carol: expected HTTP 403, got $(status_of "$out"): $(body_of "$out")"

echo "smoke: ok"

#!/usr/bin/env bash
# Registers one agent as a client of a Keycloak realm (26.2 or later, standard token
# exchange), on Keycloak's admin REST API. Idempotent: a re-run updates the client, never
# duplicates it. Needs curl and jq. See docs/deploy.md ("The keycloak overlay").
set -euo pipefail

PROG=register-agent
USAGE="Usage: $0 --url URL --realm NAME --agent SPIFFE_ID
            (--secret-file FILE | --jwks-file FILE [--signing-alg ALG])
            [--audience CLIENT_ID]... [--scope NAME]... [--front-end CLIENT_ID]...
            [--name NAME] [--admin-user USER] [--admin-password-file FILE] [--dry-run]

Registers the agent SPIFFE_ID as a confidential client of realm NAME (its client id is
its SPIFFE ID) that may only get tokens for itself (service account) and exchange users'
tokens (RFC 8693 standard token exchange): no direct access grants, no standard flow,
no implicit flow, no device or CIBA grant, forced off on every run. actbridge takes the
actor from azp: a token whose azp is the agent must only come from an exchange.

  --url URL                 Keycloak's base URL, e.g. http://127.0.0.1:8080
  --realm NAME              the realm (it must exist)
  --agent SPIFFE_ID         the agent's SPIFFE ID (spiffe://...), its client id
  --audience CLIENT_ID      a destination the agent may exchange tokens for (an existing
                            client; repeatable). The agent itself is always one (inbound
                            delegation). These are the agent's audiences: an audience
                            mapper of the agent not named here is removed.
  --scope NAME              an OAuth scope the agent may ask for in an exchange
                            (repeatable): created if the realm lacks it, attached as an
                            optional client scope. Optional scopes of the agent that are
                            neither named here nor realm default optional scopes are
                            detached.
  --front-end CLIENT_ID     a client users log in through (repeatable): it gets an
                            audience mapper naming the agent, so users' tokens name the
                            agent in aud (the agent's exchange needs that)
  --secret-file FILE        client_secret_basic/post: writes the client's secret (made by
                            Keycloak, kept across runs) to FILE, mode 0600
  --jwks-file FILE          private_key_jwt: the agent's public JWKS (no private members)
  --signing-alg ALG         the client assertion's algorithm (default ES256)
  --name NAME               the client's display name (default: kept, or the last path
                            segment of the SPIFFE ID for a new client)
  --admin-user USER         admin user of the master realm (env KEYCLOAK_ADMIN_USER,
                            default admin)
  --admin-password-file F   its password's file; otherwise env KEYCLOAK_ADMIN_PASSWORD
  --dry-run                 print what would be sent, contact nothing
  -h, --help                this text"

die() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 1
}
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }
usage_error() {
  printf '%s: %s (see --help)\n' "$PROG" "$*" >&2
  exit 2
}

url="" realm="" agent="" name="" secret_file="" jwks_file="" signing_alg=ES256
admin_user="${KEYCLOAK_ADMIN_USER:-admin}" admin_password_file="" dry_run=false
audiences=() scopes=() front_ends=()

need_value() { [[ $# -ge 2 && -n "$2" ]] || usage_error "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
  --url) need_value "$@"; url="${2%/}"; shift 2 ;;
  --realm) need_value "$@"; realm="$2"; shift 2 ;;
  --agent) need_value "$@"; agent="$2"; shift 2 ;;
  --audience) need_value "$@"; audiences+=("$2"); shift 2 ;;
  --scope) need_value "$@"; scopes+=("$2"); shift 2 ;;
  --front-end) need_value "$@"; front_ends+=("$2"); shift 2 ;;
  --secret-file) need_value "$@"; secret_file="$2"; shift 2 ;;
  --jwks-file) need_value "$@"; jwks_file="$2"; shift 2 ;;
  --signing-alg) need_value "$@"; signing_alg="$2"; shift 2 ;;
  --name) need_value "$@"; name="$2"; shift 2 ;;
  --admin-user) need_value "$@"; admin_user="$2"; shift 2 ;;
  --admin-password-file) need_value "$@"; admin_password_file="$2"; shift 2 ;;
  --admin-password | --admin-password=*)
    usage_error "no password on the command line: use KEYCLOAK_ADMIN_PASSWORD or --admin-password-file" ;;
  --dry-run) dry_run=true; shift ;;
  -h | --help) printf '%s\n' "$USAGE"; exit 0 ;;
  *) usage_error "unknown argument: $1" ;;
  esac
done

command -v jq >/dev/null || die "jq is required"
command -v curl >/dev/null || die "curl is required"

[[ -n "$url" ]] || usage_error "--url is required"
[[ -n "$realm" ]] || usage_error "--realm is required"
[[ -n "$agent" ]] || usage_error "--agent is required"
[[ "$agent" == spiffe://?* ]] || usage_error "--agent must be a SPIFFE ID (spiffe://...), not '$agent'"
if [[ -n "$secret_file" && -n "$jwks_file" ]] || [[ -z "$secret_file" && -z "$jwks_file" ]]; then
  usage_error "give exactly one of --secret-file and --jwks-file"
fi
case "$signing_alg" in
RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | ES512 | EdDSA) ;;
*) usage_error "--signing-alg: unsupported algorithm '$signing_alg'" ;;
esac
for s in ${scopes[@]+"${scopes[@]}"}; do
  [[ "$s" != openid ]] || usage_error "--scope openid: not a client scope (always allowed)"
  case "$s" in
  *[[:space:][:cntrl:]\"\\]*) usage_error "--scope '$s': not an OAuth scope token" ;;
  esac
done

jwks=""
if [[ -n "$jwks_file" ]]; then
  [[ -r "$jwks_file" ]] || die "cannot read --jwks-file $jwks_file"
  jwks=$(jq -ce . "$jwks_file" 2>/dev/null) || die "--jwks-file $jwks_file is not JSON"
  jq -e '(.keys | type == "array" and length > 0) and all(.keys[]; type == "object" and has("kty"))' \
    <<<"$jwks" >/dev/null || die "--jwks-file $jwks_file: not a JWKS (an object with a non-empty \"keys\" array)"
  if jq -e 'any(.keys[]; has("d") or has("p") or has("q") or has("k"))' <<<"$jwks" >/dev/null; then
    die "--jwks-file $jwks_file holds private or symmetric key material: give the public JWKS only"
  fi
fi

# The agent's audiences: itself first, then the destinations, without repeats.
all_audiences=$(jq -cn --arg agent "$agent" '[$agent] + $ARGS.positional | reduce .[] as $a ([]; if index([$a]) then . else . + [$a] end)' \
  --args ${audiences[@]+"${audiences[@]}"})
scopes_json=$(jq -cn '$ARGS.positional | unique' --args ${scopes[@]+"${scopes[@]}"})

# --- the representations -------------------------------------------------------------

# The client's settings this script owns; everything else of an existing client is kept.
client_settings() { # $1: name, or "" to keep the existing one
  jq -cn --arg agent "$agent" --arg name "$1" --arg jwks "$jwks" --arg alg "$signing_alg" '
    {
      clientId: $agent,
      enabled: true,
      protocol: "openid-connect",
      publicClient: false,
      bearerOnly: false,
      consentRequired: false,
      serviceAccountsEnabled: true,
      standardFlowEnabled: false,
      directAccessGrantsEnabled: false,
      implicitFlowEnabled: false,
      frontchannelLogout: false,
      clientAuthenticatorType: (if $jwks == "" then "client-secret" else "client-jwt" end),
      attributes: ({
        "standard.token.exchange.enabled": "true",
        "oauth2.device.authorization.grant.enabled": "false",
        "oidc.ciba.grant.enabled": "false"
      } + (if $jwks == "" then {} else {
        "use.jwks.string": "true",
        "use.jwks.url": "false",
        "jwks.string": $jwks,
        "token.endpoint.auth.signing.alg": $alg
      } end))
    } + (if $name == "" then {} else {name: $name} end)'
}

audience_mapper() { # $1: the audience's client id
  jq -cn --arg aud "$1" '{
    name: ("audience " + $aud),
    protocol: "openid-connect",
    protocolMapper: "oidc-audience-mapper",
    config: {
      "included.client.audience": $aud,
      "access.token.claim": "true",
      "introspection.token.claim": "true",
      "id.token.claim": "false",
      "lightweight.claim": "false"
    }
  }'
}

GROUPS_MAPPER='{
  "name": "groups",
  "protocol": "openid-connect",
  "protocolMapper": "oidc-group-membership-mapper",
  "config": {
    "claim.name": "groups",
    "full.path": "false",
    "multivalued": "true",
    "access.token.claim": "true",
    "introspection.token.claim": "true",
    "id.token.claim": "true",
    "userinfo.token.claim": "true"
  }
}'

scope_representation() { # $1: the scope's name
  jq -cn --arg s "$1" '{
    name: $s,
    protocol: "openid-connect",
    attributes: {"include.in.token.scope": "true", "display.on.consent.screen": "false"}
  }'
}

if $dry_run; then
  default_name="${agent%/}"
  agent_mappers=$(
    while IFS= read -r aud; do audience_mapper "$aud"; done < <(jq -r '.[]' <<<"$all_audiences")
    printf '%s\n' "$GROUPS_MAPPER"
  )
  scope_reps=$(while IFS= read -r s; do scope_representation "$s"; done < <(jq -r '.[]' <<<"$scopes_json"))
  jq -n --arg realm "$realm" --arg secret_file "$secret_file" \
    --argjson client "$(client_settings "${name:-${default_name##*/}}")" \
    --argjson mappers "$(jq -cs . <<<"$agent_mappers")" \
    --argjson scopes "$(jq -cs . <<<"$scope_reps")" \
    --argjson front "$(jq -cn '$ARGS.positional' --args ${front_ends[@]+"${front_ends[@]}"})" \
    --argjson front_mapper "$(audience_mapper "$agent")" '{
      realm: $realm,
      client: $client,
      "client protocol mappers": $mappers,
      "optional client scopes (created if missing)": $scopes,
      "front ends, each given this mapper": {clients: $front, mapper: $front_mapper}
    } + (if $secret_file == "" then {} else {"secret written to": $secret_file} end)'
  exit 0
fi

# --- the admin REST API --------------------------------------------------------------

if [[ -n "$admin_password_file" ]]; then
  [[ -r "$admin_password_file" ]] || die "cannot read --admin-password-file $admin_password_file"
  IFS= read -r admin_password <"$admin_password_file" || [[ -n "${admin_password:-}" ]] ||
    die "--admin-password-file $admin_password_file is empty"
elif [[ -n "${KEYCLOAK_ADMIN_PASSWORD:-}" ]]; then
  admin_password="$KEYCLOAK_ADMIN_PASSWORD"
else
  usage_error "set KEYCLOAK_ADMIN_PASSWORD or --admin-password-file"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status="" body="" location=""

uri() { printf '%s' "$1" | jq -sRr @uri; }

# http METHOD URL [JSON]: sets $status, $body (the response) and $location. Secrets travel
# on curl's stdin or in a config file in a private directory, never in its arguments.
http() {
  local method=$1 target=$2 data=${3-}
  local args=(-sS -X "$method" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}'
    --connect-timeout 10 --max-time 60)
  [[ ! -f "$tmp/auth" ]] || args+=(-K "$tmp/auth")
  [[ -z "$data" ]] || args+=(-H 'Content-Type: application/json' --data-binary @-)
  status=$(printf '%s' "$data" | curl "${args[@]}" "$target") ||
    die "$method $target: no answer from Keycloak (curl failed)"
  body=$(cat "$tmp/body")
  location=$(sed -n 's/^[Ll]ocation: *\(.*[^[:space:]]\)[[:space:]]*$/\1/p' "$tmp/headers" | tail -n 1)
}

# api METHOD PATH [JSON]: a call under /admin/realms/REALM that must succeed (2xx).
api() {
  local method=$1 path=$2
  http "$method" "$url/admin/realms/$(uri "$realm")$path" "${3-}"
  if [[ "$status" != 2?? ]]; then
    die "$method /admin/realms/$realm$path: HTTP $status: ${body:-(no body)}"
  fi
}

# The admin token: the master realm's admin-cli, password grant. The form goes on stdin.
status=$(printf 'grant_type=password&client_id=admin-cli&username=%s&password=%s' \
  "$(uri "$admin_user")" "$(uri "$admin_password")" |
  curl -sS -o "$tmp/body" -w '%{http_code}' --connect-timeout 10 --max-time 60 \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- \
    "$url/realms/master/protocol/openid-connect/token") ||
  die "$url: no answer from Keycloak (curl failed)"
unset admin_password
if [[ "$status" != 200 ]]; then
  die "admin login as '$admin_user' (master realm, admin-cli): HTTP $status: $(jq -r '[.error, .error_description] | map(select(.)) | join(": ")' "$tmp/body" 2>/dev/null || cat "$tmp/body")"
fi
# The token goes into curl's config file (mode 0600 in the private directory), not argv.
jq -r '"header = \"Authorization: Bearer \(.access_token // "")\""' "$tmp/body" >"$tmp/auth"
rm -f "$tmp/body"
grep -q 'Bearer [^"]' "$tmp/auth" || die "admin login: no access_token in Keycloak's answer"

http GET "$url/admin/realms/$(uri "$realm")"
[[ "$status" != 404 ]] || die "realm '$realm' does not exist (import manifests/overlays/keycloak/realm.json first)"
[[ "$status" == 200 ]] || die "GET /admin/realms/$realm: HTTP $status: ${body:-(no body)}"

# client_uuid CLIENT_ID: prints the client's internal id, or nothing.
client_uuid() {
  api GET "/clients?clientId=$(uri "$1")&search=false"
  jq -r --arg c "$1" '.[] | select(.clientId == $c) | .id' <<<"$body" | head -n 1
}

for a in ${audiences[@]+"${audiences[@]}"}; do
  [[ "$a" == "$agent" ]] && continue
  [[ -n "$(client_uuid "$a")" ]] || die "--audience '$a': no such client in realm '$realm' (an audience must be an existing client)"
done
declare -A front_uuid=()
for f in ${front_ends[@]+"${front_ends[@]}"}; do
  [[ "$f" != "$agent" ]] || die "--front-end '$f' is the agent itself: users never log in through an agent's client"
  front_uuid[$f]=$(client_uuid "$f")
  [[ -n "${front_uuid[$f]}" ]] || die "--front-end '$f': no such client in realm '$realm'"
done

# --- the agent's client --------------------------------------------------------------

id=$(client_uuid "$agent")
if [[ -z "$id" ]]; then
  default_name="${agent%/}"
  api POST /clients "$(client_settings "${name:-${default_name##*/}}")"
  id="${location##*/}"
  [[ -n "$id" ]] || id=$(client_uuid "$agent")
  [[ -n "$id" ]] || die "created client '$agent' but cannot find it"
  note "created client $agent"
else
  api GET "/clients/$id"
  existing="$body"
  for flag in directAccessGrantsEnabled standardFlowEnabled implicitFlowEnabled; do
    if [[ "$(jq -r ".$flag" <<<"$existing")" == true ]]; then
      note "client $agent had $flag on: turned off (actbridge takes the actor from azp; an agent's token must come from an exchange)"
    fi
  done
  for attr in oauth2.device.authorization.grant.enabled oidc.ciba.grant.enabled; do
    if [[ "$(jq -r --arg a "$attr" '.attributes[$a] // "false"' <<<"$existing")" == true ]]; then
      note "client $agent had $attr on: turned off"
    fi
  done
  api PUT "/clients/$id" "$(jq -c --argjson s "$(client_settings "$name")" \
    'del(.protocolMappers, .defaultClientScopes, .optionalClientScopes)
     | . + ($s | del(.attributes)) | .attributes = ((.attributes // {}) + $s.attributes)' <<<"$existing")"
  note "updated client $agent"
fi

# Protocol mappers: the audiences (exactly these) and the groups.
api GET "/clients/$id/protocol-mappers/models"
mappers="$body"
# sync_mapper URL_PREFIX MAPPERS_JSON WANTED_JSON WHERE: adds WANTED by name, or updates it.
sync_mapper() {
  local prefix=$1 have=$2 want=$3 where=$4 current mid
  current=$(jq -c --arg n "$(jq -r .name <<<"$want")" 'map(select(.name == $n)) | first // empty' <<<"$have")
  if [[ -z "$current" ]]; then
    api POST "$prefix/protocol-mappers/models" "$want"
    note "$where: added mapper '$(jq -r .name <<<"$want")'"
  elif ! jq -e --argjson w "$want" '.protocolMapper == $w.protocolMapper
      and (.config as $c | all($w.config | to_entries[]; $c[.key] == .value))' <<<"$current" >/dev/null; then
    mid=$(jq -r .id <<<"$current")
    api PUT "$prefix/protocol-mappers/models/$mid" "$(jq -c --arg id "$mid" '. + {id: $id}' <<<"$want")"
    note "$where: updated mapper '$(jq -r .name <<<"$want")'"
  fi
}
while IFS= read -r aud; do
  sync_mapper "/clients/$id" "$mappers" "$(audience_mapper "$aud")" "client $agent"
done < <(jq -r '.[]' <<<"$all_audiences")
sync_mapper "/clients/$id" "$mappers" "$GROUPS_MAPPER" "client $agent"
api GET "/clients/$id/protocol-mappers/models"
while IFS=$'\t' read -r mid mname; do
  api DELETE "/clients/$id/protocol-mappers/models/$mid"
  note "client $agent: removed mapper '$mname' (an audience not asked for)"
done < <(jq -r --argjson want "$all_audiences" '.[]
  | select(.protocolMapper == "oidc-audience-mapper")
  | select(.name as $n | $want | map("audience " + .) | index([$n]) | not)
  | [.id, .name] | @tsv' <<<"$body")

# Scopes: created if missing, attached as optional; other non-default optional ones detached.
api GET /client-scopes
realm_scopes="$body"
api GET /default-optional-client-scopes
realm_optional="$body"
api GET "/clients/$id/default-client-scopes"
client_default="$body"
api GET "/clients/$id/optional-client-scopes"
client_optional="$body"
while IFS= read -r s; do
  sid=$(jq -r --arg s "$s" '.[] | select(.name == $s) | .id' <<<"$realm_scopes" | head -n 1)
  if [[ -z "$sid" ]]; then
    api POST /client-scopes "$(scope_representation "$s")"
    sid="${location##*/}"
    [[ -n "$sid" ]] || die "created client scope '$s' but Keycloak gave no id"
    note "created client scope $s"
  fi
  if jq -e --arg s "$sid" 'any(.[]; .id == $s)' <<<"$client_default" >/dev/null; then
    note "client $agent: scope $s is one of its default scopes: left as it is"
  elif ! jq -e --arg s "$sid" 'any(.[]; .id == $s)' <<<"$client_optional" >/dev/null; then
    api PUT "/clients/$id/optional-client-scopes/$sid"
    note "client $agent: attached optional scope $s"
  fi
done < <(jq -r '.[]' <<<"$scopes_json")
while IFS=$'\t' read -r sid sname; do
  api DELETE "/clients/$id/optional-client-scopes/$sid"
  note "client $agent: detached optional scope $sname (not asked for)"
done < <(jq -r --argjson want "$scopes_json" --argjson realm_default "$realm_optional" '.[]
  | select((.name as $n | $want | index([$n])) == null)
  | select((.id as $i | $realm_default | map(.id) | index($i)) == null)
  | [.id, .name] | @tsv' <<<"$client_optional")

# Front ends: an audience mapper naming the agent.
for f in ${front_ends[@]+"${front_ends[@]}"}; do
  api GET "/clients/${front_uuid[$f]}/protocol-mappers/models"
  sync_mapper "/clients/${front_uuid[$f]}" "$body" "$(audience_mapper "$agent")" "front end $f"
done

# Credentials.
if [[ -n "$secret_file" ]]; then
  api GET "/clients/$id/client-secret"
  secret=$(jq -r '.value // empty' <<<"$body")
  if [[ -z "$secret" ]]; then
    api POST "/clients/$id/client-secret"
    secret=$(jq -r '.value // empty' <<<"$body")
    [[ -n "$secret" ]] || die "Keycloak made no secret for $agent"
  fi
  dir=$(dirname -- "$secret_file")
  out=$(mktemp "$dir/.register-agent.XXXXXX") || die "cannot write in $dir"
  printf '%s' "$secret" >"$out"
  chmod 600 "$out"
  mv -f -- "$out" "$secret_file"
  unset secret
  note "client $agent: secret written to $secret_file (0600)"
else
  note "client $agent: authenticates with private_key_jwt ($signing_alg, the JWKS of $jwks_file)"
fi
note "done: client $agent in realm $realm, audiences $(jq -r 'join(", ")' <<<"$all_audiences")"

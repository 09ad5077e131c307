#!/usr/bin/env bash
# actbridge traffic capture: the pod's init container. Sends every TCP connection the
# app opens to Envoy's outbound listener, and every TCP connection arriving at the pod
# to Envoy's inbound listener, with iptables REDIRECT in the pod's network namespace.
#
#   traffic-capture.sh apply     install the rules (idempotent: re-running replaces them)
#   traffic-capture.sh remove    remove them
#   traffic-capture.sh show      print them
#
# Who is NOT captured, and why:
#   - Envoy's own UID (ENVOY_UID): its upstream connections would otherwise come back
#     to its outbound listener, a loop.
#   - actbridge's own UID (ACTBRIDGE_UID): actbridge reaches the token service (JWKS,
#     token endpoint) and the credential backends (STS, GitHub, PostgreSQL) directly;
#     it decides, it is not judged. The SPIFFE Workload API is a Unix socket, which
#     iptables does not see.
#   - The inbound ports in INBOUND_EXCLUDE_PORTS (default: actbridge's admin port 9902,
#     for the kubelet's probes). They reach actbridge itself, never the app.
# Nothing else is exempt by default: loopback destinations are captured too (so the app
# cannot reach actbridge's ext_proc port or Envoy's admin around the filters), and so is
# every destination port. OUTBOUND_EXCLUDE_CIDRS / OUTBOUND_EXCLUDE_PORTS are the
# operator's explicit, documented holes (for example a PostgreSQL reached with a
# credential actbridge vended); each one is traffic actbridge never sees.
#
# Envoy's own TCP connections to the pod's own addresses (loopback aside) are rejected:
# its forward proxy resolves names the agent chooses, and the app listens on the pod IP
# too, where actbridge's inbound checks would be skipped.
#
# UDP is not proxied: DNS (port 53) is allowed, every other UDP packet from the app is
# rejected, so HTTP/3 or any UDP tunnel cannot go around Envoy. IPv6 gets the same rules
# with ip6tables; a pod with a global IPv6 address and no ip6tables is an error.
#
# Settings (environment):
#   ENVOY_UID               Envoy's UID                          (default 1337)
#   ACTBRIDGE_UID           actbridge's UID                      (default 1338)
#   INBOUND_PORT            Envoy's inbound listener             (default 15006)
#   OUTBOUND_PORT           Envoy's outbound listener            (default 15001)
#   INBOUND_EXCLUDE_PORTS   comma-separated inbound ports left alone (default 9902)
#   OUTBOUND_EXCLUDE_CIDRS  comma-separated destinations left alone (default none)
#   OUTBOUND_EXCLUDE_PORTS  comma-separated destination ports left alone (default none)
#   IPTABLES, IP6TABLES     the commands                         (default iptables, ip6tables)
#
# Any error exits non-zero before the rules are complete: the init container fails and
# the pod never starts half-captured.
set -euo pipefail

ENVOY_UID="${ENVOY_UID:-1337}"
ACTBRIDGE_UID="${ACTBRIDGE_UID:-1338}"
INBOUND_PORT="${INBOUND_PORT:-15006}"
OUTBOUND_PORT="${OUTBOUND_PORT:-15001}"
INBOUND_EXCLUDE_PORTS="${INBOUND_EXCLUDE_PORTS-9902}"
OUTBOUND_EXCLUDE_CIDRS="${OUTBOUND_EXCLUDE_CIDRS:-}"
OUTBOUND_EXCLUDE_PORTS="${OUTBOUND_EXCLUDE_PORTS:-}"
IPTABLES="${IPTABLES:-iptables}"
IP6TABLES="${IP6TABLES:-ip6tables}"

# The chains this script owns. Everything it adds lives in them, plus one jump each
# from the built-in chains.
NAT_IN=ACTBRIDGE_INBOUND
NAT_OUT=ACTBRIDGE_OUTPUT
FILTER_UDP=ACTBRIDGE_UDP
FILTER_SELF=ACTBRIDGE_ENVOY_SELF

die() {
  echo "traffic-capture: $*" >&2
  exit 1
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

check_port() { # key value
  if ! is_uint "$2" || ((10#$2 < 1 || 10#$2 > 65535)); then
    die "$1: \`$2\` is not a port (1-65535)"
  fi
}

# Splits a comma-separated list into words, skipping empty items.
split_list() { tr ',' ' ' <<<"$1"; }

validate() {
  is_uint "$ENVOY_UID" || die "ENVOY_UID: \`$ENVOY_UID\` is not a numeric UID"
  is_uint "$ACTBRIDGE_UID" || die "ACTBRIDGE_UID: \`$ACTBRIDGE_UID\` is not a numeric UID"
  [[ "$ENVOY_UID" != 0 && "$ACTBRIDGE_UID" != 0 ]] ||
    die "ENVOY_UID/ACTBRIDGE_UID: 0 would exempt every root process from capture"
  check_port INBOUND_PORT "$INBOUND_PORT"
  check_port OUTBOUND_PORT "$OUTBOUND_PORT"
  local p
  for p in $(split_list "$INBOUND_EXCLUDE_PORTS"); do check_port INBOUND_EXCLUDE_PORTS "$p"; done
  for p in $(split_list "$OUTBOUND_EXCLUDE_PORTS"); do check_port OUTBOUND_EXCLUDE_PORTS "$p"; done
  for p in $(split_list "$INBOUND_EXCLUDE_PORTS"); do
    [[ "$p" != "$INBOUND_PORT" ]] || die "INBOUND_EXCLUDE_PORTS: must not hold the inbound port $INBOUND_PORT"
  done
}

# The CIDRs of OUTBOUND_EXCLUDE_CIDRS for one family (4 or 6).
cidrs_of_family() {
  local c
  for c in $(split_list "$OUTBOUND_EXCLUDE_CIDRS"); do
    if [[ "$1" == 6 && "$c" == *:* ]] || [[ "$1" == 4 && "$c" != *:* ]]; then
      echo "$c"
    fi
  done
}

# Removes this script's jumps and chains for one iptables command; quiet when absent.
remove_with() {
  local ipt="$1"
  "$ipt" -t nat -D PREROUTING -p tcp -j "$NAT_IN" 2>/dev/null || true
  "$ipt" -t nat -D OUTPUT -p tcp -j "$NAT_OUT" 2>/dev/null || true
  "$ipt" -t filter -D OUTPUT -p udp -j "$FILTER_UDP" 2>/dev/null || true
  "$ipt" -t filter -D OUTPUT -p tcp -j "$FILTER_SELF" 2>/dev/null || true
  local table chain table_chain
  for table_chain in "nat:$NAT_IN" "nat:$NAT_OUT" "filter:$FILTER_UDP" "filter:$FILTER_SELF"; do
    table="${table_chain%%:*}"
    chain="${table_chain#*:}"
    "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
    "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
  done
}

# Installs the rules for one family (4 or 6) with its iptables command.
apply_with() {
  local ipt="$1" family="$2" p c
  remove_with "$ipt"
  "$ipt" -t nat -N "$NAT_IN"
  "$ipt" -t nat -N "$NAT_OUT"
  "$ipt" -t filter -N "$FILTER_UDP"
  "$ipt" -t filter -N "$FILTER_SELF"

  # Inbound: everything arriving at the pod goes to Envoy's inbound listener, but for
  # actbridge's own admin port(s).
  for p in $(split_list "$INBOUND_EXCLUDE_PORTS"); do
    "$ipt" -t nat -A "$NAT_IN" -p tcp --dport "$p" -j RETURN
  done
  "$ipt" -t nat -A "$NAT_IN" -p tcp -j REDIRECT --to-ports "$INBOUND_PORT"

  # Outbound: the proxies' own connections leave as they are (no loop) ...
  "$ipt" -t nat -A "$NAT_OUT" -m owner --uid-owner "$ENVOY_UID" -j RETURN
  "$ipt" -t nat -A "$NAT_OUT" -m owner --uid-owner "$ACTBRIDGE_UID" -j RETURN
  # ... as do the operator's explicit holes ...
  for c in $(cidrs_of_family "$family"); do
    "$ipt" -t nat -A "$NAT_OUT" -d "$c" -j RETURN
  done
  for p in $(split_list "$OUTBOUND_EXCLUDE_PORTS"); do
    "$ipt" -t nat -A "$NAT_OUT" -p tcp --dport "$p" -j RETURN
  done
  # ... and everything else the app opens, loopback included, goes to Envoy.
  "$ipt" -t nat -A "$NAT_OUT" -p tcp -j REDIRECT --to-ports "$OUTBOUND_PORT"

  # UDP is not proxied: DNS passes, the rest from the app is refused.
  "$ipt" -t filter -A "$FILTER_UDP" -m owner --uid-owner "$ENVOY_UID" -j RETURN
  "$ipt" -t filter -A "$FILTER_UDP" -m owner --uid-owner "$ACTBRIDGE_UID" -j RETURN
  "$ipt" -t filter -A "$FILTER_UDP" -p udp --dport 53 -j RETURN
  for c in $(cidrs_of_family "$family"); do
    "$ipt" -t filter -A "$FILTER_UDP" -d "$c" -j RETURN
  done
  "$ipt" -t filter -A "$FILTER_UDP" -j REJECT

  # Envoy never dials the pod's own addresses (the app listens there too, where
  # actbridge's inbound checks would be skipped): its forward proxy resolves names the
  # agent chose. Loopback it needs (the app's cluster) and its RBAC rule keeps the
  # forward proxy off it. New connections only: Envoy's answers to the app's captured
  # connections go to the pod's address too.
  local loopback=127.0.0.0/8
  [[ "$family" == 6 ]] && loopback=::1/128
  "$ipt" -t filter -A "$FILTER_SELF" -p tcp -m owner --uid-owner "$ENVOY_UID" \
    -m conntrack --ctstate NEW -m addrtype --dst-type LOCAL ! -d "$loopback" \
    -j REJECT --reject-with tcp-reset

  "$ipt" -t nat -A PREROUTING -p tcp -j "$NAT_IN"
  "$ipt" -t nat -A OUTPUT -p tcp -j "$NAT_OUT"
  "$ipt" -t filter -A OUTPUT -p udp -j "$FILTER_UDP"
  "$ipt" -t filter -A OUTPUT -p tcp -j "$FILTER_SELF"
}

has_global_ipv6() {
  command -v ip >/dev/null && [[ -n "$(ip -6 addr show scope global 2>/dev/null)" ]]
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
  apply)
    validate
    command -v "$IPTABLES" >/dev/null || die "\`$IPTABLES\` not found"
    apply_with "$IPTABLES" 4
    if command -v "$IP6TABLES" >/dev/null && "$IP6TABLES" -t nat -L -n >/dev/null 2>&1; then
      apply_with "$IP6TABLES" 6
    elif has_global_ipv6; then
      die "the pod has a global IPv6 address but \`$IP6TABLES\` cannot be used: IPv6 traffic would not be captured"
    fi
    echo "traffic-capture: inbound -> :$INBOUND_PORT, outbound -> :$OUTBOUND_PORT (exempt: uid $ENVOY_UID, uid $ACTBRIDGE_UID${INBOUND_EXCLUDE_PORTS:+, inbound ports $INBOUND_EXCLUDE_PORTS}${OUTBOUND_EXCLUDE_CIDRS:+, destinations $OUTBOUND_EXCLUDE_CIDRS}${OUTBOUND_EXCLUDE_PORTS:+, destination ports $OUTBOUND_EXCLUDE_PORTS})"
    ;;
  remove)
    remove_with "$IPTABLES"
    if command -v "$IP6TABLES" >/dev/null; then remove_with "$IP6TABLES"; fi
    ;;
  show)
    "$IPTABLES" -t nat -S
    "$IPTABLES" -t filter -S
    ;;
  *)
    echo "usage: $0 apply|remove|show   (settings in the environment; see the header of this file)" >&2
    exit 2
    ;;
  esac
}

main "$@"

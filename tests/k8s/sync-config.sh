#!/usr/bin/env bash
# The files manifests/ carries as copies, brought up to date from their sources.
# kustomize reads nothing outside a kustomization's root (without a load-restrictor flag
# that `kubectl apply -k` lacks), so the ConfigMaps are generated from copies inside
# manifests/; this script is the only way they are written, and `make k8s-check` fails
# when one differs from its source.
#
#   tests/k8s/sync-config.sh           copy every source over its copy   (make k8s-sync)
#   tests/k8s/sync-config.sh --check   exit 1 naming every copy that differs
#
# Sources -> copies:
#   deploy/actbridge.yaml        -> manifests/base/config/actbridge.yaml   (actbridge-config)
#   envoy/sidecar.yaml           -> manifests/base/config/sidecar.yaml     (actbridge-envoy)
#   policies/**/*.{rego,yaml,yml,json}
#                                -> manifests/base/config/policies/NAME    (actbridge-policies,
#                                   flat: ConfigMap keys cannot hold `/`; the policy loader
#                                   reads a directory recursively, so flat works the same)
#   demo/realm.yaml              -> manifests/overlays/demo/config/realm.yaml (actbridge-sts-realm)
# Generated (not a copy):
#   envoy/sidecar.yaml without its SPIFFE mTLS (tests/k8s/plain_sidecar.py)
#                                -> manifests/overlays/demo/config/sidecar.yaml (the demo
#                                   overlay's actbridge-envoy: its cluster runs no SPIRE)
set -euo pipefail
cd "$(dirname "$0")/../.."

check=false
[ "${1:-}" = "--check" ] && check=true

pairs=(
  "deploy/actbridge.yaml manifests/base/config/actbridge.yaml"
  "envoy/sidecar.yaml manifests/base/config/sidecar.yaml"
  "demo/realm.yaml manifests/overlays/demo/config/realm.yaml"
)
policy_dir=manifests/base/config/policies
while IFS= read -r f; do
  pairs+=("$f $policy_dir/$(basename "$f")")
done < <(find policies -type f \( -name '*.rego' -o -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort)

# Two policy files with one name would collide in the flat copy.
dups=$(find policies -type f \( -name '*.rego' -o -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -exec basename {} \; | sort | uniq -d)
if [ -n "$dups" ]; then
  echo "sync-config: policy files share a name (the ConfigMap is flat): $dups" >&2
  exit 1
fi

stale=0
for pair in "${pairs[@]}"; do
  src="${pair%% *}" dst="${pair#* }"
  if $check; then
    if ! cmp -s "$src" "$dst"; then
      echo "k8s-check: $dst differs from $src (run: make k8s-sync)" >&2
      stale=1
    fi
  else
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst"
  fi
done
# The demo overlay's plain Envoy config, generated.
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
plain=manifests/overlays/demo/config/sidecar.yaml
generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
"$python" tests/k8s/plain_sidecar.py envoy/sidecar.yaml >"$generated"
if $check; then
  if ! cmp -s "$generated" "$plain"; then
    echo "k8s-check: $plain differs from tests/k8s/plain_sidecar.py envoy/sidecar.yaml (run: make k8s-sync)" >&2
    stale=1
  fi
else
  cp "$generated" "$plain"
fi
# A copy whose source is gone.
for dst in "$policy_dir"/*; do
  [ -e "$dst" ] || continue
  name=$(basename "$dst")
  if [ -z "$(find policies -type f -name "$name" -print -quit)" ]; then
    if $check; then
      echo "k8s-check: $dst has no source under policies/ (run: make k8s-sync)" >&2
      stale=1
    else
      rm "$dst"
    fi
  fi
done
exit "$stale"

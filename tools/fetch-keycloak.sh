#!/usr/bin/env bash
# Fetches Keycloak's server distribution from Maven Central and unpacks it into the cache,
# once per version: ${XDG_CACHE_HOME:-~/.cache}/actbridge/keycloak-VERSION/keycloak-VERSION.
# The version is tools/keycloak-version's unless given as the first argument.
# Prints the unpacked directory. The tests run Keycloak from a copy of it (tests/support/
# keycloak.rs), so the cached tree stays pristine. Needs Maven and a JDK (Temurin 25 is
# preferred; Keycloak 26.7 also runs on Java 17).
set -euo pipefail
version="${1:-$(cat "$(dirname "$0")/keycloak-version")}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/actbridge/keycloak-$version"
dir="$cache/keycloak-$version"
if [ -x "$dir/bin/kc.sh" ] && [ -f "$cache/.complete" ]; then
  echo "$dir"
  exit 0
fi
command -v mvn >/dev/null || { echo "fetch-keycloak: Maven (mvn) is required" >&2; exit 1; }
command -v unzip >/dev/null || { echo "fetch-keycloak: unzip is required" >&2; exit 1; }
rm -rf "$cache"
mkdir -p "$cache/download"
mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
  "-Dartifact=org.keycloak:keycloak-quarkus-dist:$version:zip" \
  "-DoutputDirectory=$cache/download" >&2
unzip -q "$cache/download/keycloak-quarkus-dist-$version.zip" -d "$cache"
rm -rf "$cache/download"
touch "$cache/.complete"
echo "$dir"

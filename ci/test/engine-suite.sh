#!/usr/bin/env bash
# The real-engine suite (`npm run test:engine`): runs the module's functions with the dagger CLI on a container engine
# and checks what the offline tests can only infer from the GraphQL: that the image builds, the tests pass inside the
# builder, the image serves its probes, and its user, labels and platforms come out as asked.
# Where there is no dagger CLI or no container engine it says so loudly, runs nothing and counts nothing as passed.
set -euo pipefail
cd "$(dirname "$0")/../.."

pinned=$(sed -n 's/.*"engineVersion": *"v\{0,1\}\([^"]*\)".*/\1/p' dagger.json)

skip() {
  printf '\n################################################################\n' >&2
  printf '# ENGINE SUITE SKIPPED: %s\n' "$1" >&2
  printf '# Nothing was run against a Dagger engine; nothing passed.\n' >&2
  printf '################################################################\n\n' >&2
  exit 0
}

command -v dagger >/dev/null 2>&1 ||
  skip "no dagger CLI on PATH (install v$pinned: curl -fsSL https://dl.dagger.io/dagger/install.sh | DAGGER_VERSION=$pinned sh)"
if [ -z "${_EXPERIMENTAL_DAGGER_RUNNER_HOST:-}" ]; then
  { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; } ||
    { command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; } ||
    skip "no container engine for Dagger to start its engine in (docker info and podman info failed)"
fi
have=$(dagger version 2>/dev/null | sed -n 's/^dagger v\{0,1\}\([^ ]*\).*/\1/p')
[ "$have" = "$pinned" ] || echo "engine suite: warning: dagger CLI is v$have, dagger.json pins v$pinned" >&2

passed=0
step() {
  echo "+ $*" >&2
  "$@"
  passed=$((passed + 1))
}
# `expect WANT command…`: the command's output, trimmed, must be WANT.
expect() {
  local want=$1 got
  shift
  echo "+ $* (expecting: $want)" >&2
  got=$("$@" | tail -n 1 | tr -d '[:space:]')
  if [ "$got" != "$want" ]; then
    echo "engine suite: FAILED: $* printed '$got', expected '$want'" >&2
    exit 1
  fi
  passed=$((passed + 1))
}

version=$(node -p 'require("./service/package.json").version')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step dagger call build export --path "$tmp/dummyapp.tar"
# Reproducible on one engine: the same commit builds the same image, whatever the wall clock says.
step dagger call build export --path "$tmp/again.tar"
step cmp "$tmp/dummyapp.tar" "$tmp/again.tar"
revision=$(git rev-parse HEAD)$([ -z "$(git status --porcelain)" ] || echo -dirty)
expect "$revision" dagger call build label --name org.opencontainers.image.revision
expect "$(date -u -d "@$(git log -1 --format=%ct)" +%Y-%m-%dT%H:%M:%SZ)" dagger call build label --name org.opencontainers.image.created
expect 65532:65532 dagger call build user
expect "$version" dagger call build label --name org.opencontainers.image.version
expect heroku dagger call build --tags heroku label --name com.pennock-tech.dummyapp.build-tags
expect linux/arm64 dagger call build --platform linux/arm64 platform
step dagger call poetry entries
step dagger call test
step dagger call smoke
step dagger call smoke --tags heroku
# Both variants pushed to a registry run inside the engine and read back: the publish path with no credentials.
step dagger call rehearse-publish
step dagger check

echo "engine suite: $passed steps passed against dagger v$have"

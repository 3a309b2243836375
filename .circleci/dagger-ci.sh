#!/bin/sh
# Runs the module's `ci` for this push. Secrets are env:// references, read by the dagger CLI from the context's
# variables: their values never appear on a command line or in the log. A pull request from a fork gets no secrets
# from CircleCI (CIRCLE_PR_REPONAME is set only then), so it runs test, build and smoke, and `ci` says publish and
# deploy were skipped; anywhere else a missing secret fails `ci` before any work.
set -eu
if [ -n "${CIRCLE_PR_REPONAME:-}" ]; then
  exec dagger call ci --branch "$CIRCLE_BRANCH" --commit "$CIRCLE_SHA1" --ci-run-url "$CIRCLE_BUILD_URL" \
    --fork-pull-request
fi
exec dagger call ci --branch "$CIRCLE_BRANCH" --commit "$CIRCLE_SHA1" \
  --dockerhub-username env://DOCKERHUB_USER --dockerhub-password env://DOCKERHUB_PASS \
  --heroku-token env://HEROKU_TOKEN --signing-key env://COSIGN_KEY --ci-run-url "$CIRCLE_BUILD_URL"

#!/bin/sh
# Logs the Docker CLI in to Docker Hub, so the dagger CLI forwards the credentials to its engine and the runtime's own
# pulls (node:24.13.1-alpine for the module, oven/bun for introspection), made before any module code runs, are not
# anonymous (rate-limited per IP). The password goes on stdin, never on a command line.
set -eu
if [ -n "${CIRCLE_PR_REPONAME:-}" ]; then
  echo "pull request from the fork ${CIRCLE_PR_USERNAME:-?}/$CIRCLE_PR_REPONAME: CircleCI gives it no secrets; pulls stay anonymous"
  exit 0
fi
: "${DOCKERHUB_USER:?is not set: add it to the heroku-and-dockerhub context}"
: "${DOCKERHUB_PASS:?is not set: add it to the heroku-and-dockerhub context}"
printf '%s' "$DOCKERHUB_PASS" | docker login --username "$DOCKERHUB_USER" --password-stdin

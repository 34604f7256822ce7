#!/usr/bin/env bash
# podman on the container test's private store (see tests/test_container.py),
# for looking around after a run, e.g.:
#   tests/container/podman.sh images
#   tests/container/podman.sh ps -a
#   tests/container/podman.sh system reset --force   # drop the whole cache
# The store lives in $BLOBSVC_TEST_CONTAINER_DIR, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/blobsvc-container-test; the test writes the
# configuration files there on its first run.
set -euo pipefail
work=${BLOBSVC_TEST_CONTAINER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/blobsvc-container-test}
for conf in storage.conf containers.conf; do
    [ -f "$work/$conf" ] || { echo "no $work/$conf: run the container test once first" >&2; exit 1; }
done
export CONTAINERS_STORAGE_CONF=$work/storage.conf CONTAINERS_CONF=$work/containers.conf
exec podman "$@"

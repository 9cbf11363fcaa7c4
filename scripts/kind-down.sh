#!/usr/bin/env bash
# `make kind-down`: delete the kind cluster `make kind-up` created (and everything in it).
set -euo pipefail
CLUSTER=${KIND_CLUSTER:-betting}
command -v kind >/dev/null || { echo "kind-down needs kind on the PATH" >&2; exit 1; }
kind delete cluster --name "$CLUSTER"

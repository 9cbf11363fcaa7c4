#!/usr/bin/env bash
# `make kind-up`: the whole platform on a local kind cluster, checked end to end.
#
# Creates the cluster (unless it exists), builds the image and loads it into kind, installs a
# dev Redpanda and Postgres (k8s/dev-services), installs the Helm chart (its hooks run the
# migrations and create the topics), waits until everything is ready, then plays a whole match
# through a port-forward to each server (launcher/smoke.py). Needs Docker, kind, kubectl and helm.
#   WITH_KEDA=1 make kind-up   lets KEDA (installed in the cluster beforehand) scale the functions on lag.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-betting}
NAMESPACE=betting
RELEASE=betting
# The image the chart, k8s/ and Compose all name: betting:<the chart's appVersion>.
IMAGE=betting:$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' helm/betting/Chart.yaml)
# Local ports of the port-forwards to the line provider and the bet maker.
PORT=${KIND_PORT:-18001}
BETS_PORT=${KIND_BETS_PORT:-18002}
WITH_KEDA=${WITH_KEDA:-0}

step() { printf '\n==> %s\n' "$*"; }
for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null || { echo "kind-up needs $tool on the PATH" >&2; exit 1; }
done

step "kind cluster '$CLUSTER'"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 180s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

step "image $IMAGE"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "Redpanda and Postgres for development (k8s/dev-services)"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted --overwrite
kubectl apply -k k8s/dev-services
kubectl -n "$NAMESPACE" rollout status statefulset/postgres --timeout=300s
kubectl -n "$NAMESPACE" rollout status statefulset/redpanda --timeout=300s

values=(-f helm/ci/kind.yaml)
if [[ "$WITH_KEDA" == 1 ]]; then
  step "KEDA"
  # KEDA comes from its own Helm chart repository; install it first as its documentation says.
  kubectl get crd scaledobjects.keda.sh >/dev/null 2>&1 || {
    echo "WITH_KEDA=1 needs KEDA in the cluster: install its Helm chart (namespace keda), then rerun" >&2
    exit 1
  }
  values+=(-f helm/ci/autoscaling-keda.yaml)
fi

step "chart helm/betting (release $RELEASE)"
helm upgrade --install "$RELEASE" helm/betting --namespace "$NAMESPACE" "${values[@]}" \
  --wait --timeout 10m
for deployment in line-provider bet-maker event-writer bet-scorer bet-writer; do
  kubectl -n "$NAMESPACE" rollout status "deployment/$RELEASE-$deployment" --timeout=300s
done

step "smoke test through port-forwards: line provider on 127.0.0.1:$PORT, bet maker on :$BETS_PORT"
kubectl -n "$NAMESPACE" port-forward "svc/$RELEASE-line-provider" "$PORT:8000" >/dev/null &
forwards=($!)
kubectl -n "$NAMESPACE" port-forward "svc/$RELEASE-bet-maker" "$BETS_PORT:8000" >/dev/null &
forwards+=($!)
trap 'kill "${forwards[@]}" 2>/dev/null || true' EXIT
for port in "$PORT" "$BETS_PORT"; do
  for _ in $(seq 60); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=2)" \
      2>/dev/null && break
    sleep 1
  done
done
token() { kubectl -n "$NAMESPACE" exec "deploy/$RELEASE-line-provider" -- betting token --role "$1" --user "kind-$1"; }
python3 launcher/smoke.py --api "http://127.0.0.1:$PORT" --bets-api "http://127.0.0.1:$BETS_PORT" \
  --operator-token "$(token operator)" --player-token "$(token player)"

step "helm test: the same match from inside the cluster (betting smoke in a test pod)"
helm test "$RELEASE" --namespace "$NAMESPACE" --timeout 10m --logs

step "up"
echo "  kubectl -n $NAMESPACE port-forward svc/$RELEASE-line-provider 8001:8000   then http://127.0.0.1:8001/docs"
echo "  kubectl -n $NAMESPACE port-forward svc/$RELEASE-bet-maker 8002:8000       then http://127.0.0.1:8002/docs"
echo "  make kind-down                                                           removes the cluster"

#!/usr/bin/env bash
# End-to-end on a real cluster: kind + Istio's control plane + our injector from deploy/.
#
# Creates a kind cluster, builds and loads both images, installs a pinned istiod (istioctl),
# removes istiod's own injection webhooks so ours is the only injector, installs deploy/ with
# a fresh certificate, then checks what a user would: a labelled namespace's pods come up with
# istio-init and istio-proxy and become Ready, front-end -> back-end traffic flows through the
# sidecars (Envoy's request counters move), and pods in an unlabelled namespace or labelled
# sidecar.istio.io/inject=false are untouched.
#
# Needs: docker, kind, kubectl, cargo (for `make certs`), curl; istioctl is downloaded (pinned).
# Settings: ISTIO_VERSION, KIND_NODE_IMAGE, CLUSTER, KEEP_CLUSTER=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

ISTIO_VERSION=${ISTIO_VERSION:-1.30.3}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.34.0}
CLUSTER=${CLUSTER:-sidecar-injector-e2e}
NS=e2e-mesh
PLAIN_NS=e2e-plain
WORK=$(mktemp -d)

log() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
  rc=$?
  if [ "$rc" != 0 ]; then
    log "diagnostics (exit $rc)"
    kubectl get pods -A -o wide || true
    kubectl get events -A --sort-by=.lastTimestamp | tail -40 || true
    kubectl -n sidecar-injector logs -l app.kubernetes.io/name=sidecar-injector --tail=100 || true
  fi
  [ "${KEEP_CLUSTER:-}" = 1 ] || kind delete cluster --name "$CLUSTER" || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# Names of a pod's containers, init containers included, one per line.
containers_of() { # NAMESPACE POD
  kubectl -n "$1" get pod "$2" -o jsonpath='{range .spec.initContainers[*]}{.name}{"\n"}{end}{range .spec.containers[*]}{.name}{"\n"}{end}'
}

assert_injected() { # NAMESPACE POD
  local names
  names=$(containers_of "$1" "$2")
  grep -qx istio-init <<<"$names" || fail "$1/$2 has no istio-init: $names"
  grep -qx istio-proxy <<<"$names" || fail "$1/$2 has no istio-proxy: $names"
  [ -n "$(kubectl -n "$1" get pod "$2" -o jsonpath='{.metadata.annotations.sidecar\.istio\.io/status}')" ] \
    || fail "$1/$2 has no sidecar.istio.io/status annotation"
  echo "injected: $1/$2 ($(tr '\n' ' ' <<<"$names"))"
}

assert_untouched() { # NAMESPACE POD
  local names
  names=$(containers_of "$1" "$2")
  [ "$names" = app ] || fail "$1/$2 was modified: containers $names"
  [ -z "$(kubectl -n "$1" get pod "$2" -o jsonpath='{.metadata.annotations.sidecar\.istio\.io/status}')" ] \
    || fail "$1/$2 carries sidecar.istio.io/status"
  echo "untouched: $1/$2"
}

log "kind cluster $CLUSTER ($KIND_NODE_IMAGE)"
kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --wait 120s

log "images"
make images
kind load docker-image --name "$CLUSTER" localhost/sidecar-injector:0.1.0 localhost/mesh-init:0.1.0

log "Istio $ISTIO_VERSION control plane"
# Always the pinned istioctl, whatever is on the PATH: it decides the control plane's version.
curl -fsSL "https://github.com/istio/istio/releases/download/$ISTIO_VERSION/istioctl-$ISTIO_VERSION-linux-amd64.tar.gz" \
  | tar -xz -C "$WORK"
"$WORK/istioctl" install -y --set profile=minimal
# Ours must be the only injector: remove istiod's injection webhooks (istiod patches their
# caBundle but never recreates them).
kubectl delete mutatingwebhookconfiguration -l app=sidecar-injector --ignore-not-found

log "sidecar-injector from deploy/"
make certs deploy

log "workloads"
kubectl create namespace "$NS"
kubectl label namespace "$NS" istio-injection=enabled
kubectl create namespace "$PLAIN_NS"
kubectl apply -n "$NS" -f - <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: back-end}
spec:
  selector: {matchLabels: {app: back-end}}
  template:
    metadata: {labels: {app: back-end, version: v1}}
    spec:
      containers:
      - name: back-end
        image: docker.io/hashicorp/http-echo:1.0
        args: ["-listen=:5678", "-text=hello from back-end"]
        ports: [{containerPort: 5678, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: back-end}
spec:
  selector: {app: back-end}
  ports: [{name: http, port: 5678, targetPort: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: front-end}
spec:
  selector: {matchLabels: {app: front-end}}
  template:
    metadata: {labels: {app: front-end, version: v1}}
    spec:
      containers:
      - name: front-end
        image: docker.io/curlimages/curl:8.11.1
        command: ["sleep", "infinity"]
---
apiVersion: v1
kind: Service
metadata: {name: front-end}
spec:
  selector: {app: front-end}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
# Opted out by label, in the injected namespace; and a pod in a namespace without the label.
kubectl -n "$NS" run opted-out --image=docker.io/library/busybox:1.36 --restart=Never \
  --labels=sidecar.istio.io/inject=false --overrides='{"spec":{"containers":[{"name":"app","image":"docker.io/library/busybox:1.36","command":["sleep","3600"]}]}}'
kubectl -n "$PLAIN_NS" run plain --image=docker.io/library/busybox:1.36 --restart=Never \
  --overrides='{"spec":{"containers":[{"name":"app","image":"docker.io/library/busybox:1.36","command":["sleep","3600"]}]}}'

log "both services Ready with their sidecars"
kubectl -n "$NS" rollout status deployment/back-end --timeout=300s
kubectl -n "$NS" rollout status deployment/front-end --timeout=300s
for app in back-end front-end; do
  assert_injected "$NS" "$(kubectl -n "$NS" get pod -l app=$app -o jsonpath='{.items[0].metadata.name}')"
done
assert_untouched "$NS" opted-out
assert_untouched "$PLAIN_NS" plain

log "front-end -> back-end through the sidecars"
reply=""
for _ in $(seq 1 30); do
  reply=$(kubectl -n "$NS" exec deploy/front-end -c front-end -- curl -s --max-time 5 http://back-end:5678/ || true)
  [ "$reply" = "hello from back-end" ] && break
  sleep 2
done
[ "$reply" = "hello from back-end" ] || fail "front-end got ${reply:-nothing} from back-end"
echo "reply: $reply"
# Both Envoys counted the request: the client side as reporter=source, the server side as
# reporter=destination. A capture that did not happen would leave these at zero.
for side in "front-end source" "back-end destination"; do
  read -r app reporter <<<"$side"
  stats=$(kubectl -n "$NS" exec "deploy/$app" -c istio-proxy -- pilot-agent request GET stats/prometheus)
  grep -E "^istio_requests_total\{.*reporter=\"$reporter\".*destination_workload=\"back-end\"" <<<"$stats" \
    | grep -qvE ' 0$' || fail "$app's sidecar counted no request to back-end (reporter=$reporter)"
  echo "$app's sidecar counted the request (reporter=$reporter)"
done

log "our injector did it"
injected=0
for pod in $(kubectl -n sidecar-injector get pods -l app.kubernetes.io/name=sidecar-injector -o name); do
  n=$(kubectl get --raw "/api/v1/namespaces/sidecar-injector/pods/${pod#pod/}:15014/proxy/metrics" \
    | awk '/^sidecar_injection_success_total/ {s += $NF} END {print s + 0}')
  injected=$((injected + ${n%.*}))
done
[ "$injected" -ge 2 ] || fail "sidecar_injection_success_total is $injected over our replicas, expected >= 2"
echo "sidecar_injection_success_total over our replicas: $injected"

log "PASSED"

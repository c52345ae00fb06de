#!/usr/bin/env bash
# The injector end to end on one machine, no cluster: build, make a development certificate,
# serve on loopback, send the AdmissionReview the API server would send for a Deployment's pod,
# print the JSON patch and the pod it gives, then show the iptables rules mesh-init would
# install for that pod's istio-init arguments (--dry-run: no root needed).
#
# Needs: cargo, curl, jq. Run from anywhere: `make demo`.
set -euo pipefail
cd "$(dirname "$0")/../.."

REVIEW=${REVIEW:-webhook/examples/admission-review.json}
HOST=sidecar-injector.sidecar-injector.svc
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A free loopback port, from the kernel.
free_port() {
  local port
  for port in $(shuf -i 20000-60000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "no free port found" >&2; return 1
}

# Applies an RFC 6902 JSON patch (the webhook's answer) to a document, in jq.
apply_patch() { # DOC_FILE PATCH_FILE
  jq --slurpfile ops "$2" '
    def ptr: ltrimstr("/") | split("/") | map(gsub("~1"; "/") | gsub("~0"; "~"))
      | map(if test("^[0-9]+$") then tonumber else . end);
    def add_at($p; $v):
      ($p[:-1]) as $parent | $p[-1] as $last |
      if (getpath($parent) | type) == "array" then
        if $last == "-" then setpath($parent; getpath($parent) + [$v])
        else setpath($parent; getpath($parent)[:$last] + [$v] + getpath($parent)[$last:]) end
      else setpath($p; $v) end;
    reduce $ops[0][] as $op (.;
      ($op.path | ptr) as $p |
      if $op.op == "add" then add_at($p; $op.value)
      elif $op.op == "replace" then setpath($p; $op.value)
      elif $op.op == "remove" then delpaths([$p])
      else error("unsupported op \($op.op)") end)' "$1"
}

CARGO=${CARGO:-cargo}
for tool in "$CARGO" curl jq; do
  command -v "$tool" >/dev/null || { echo "demo needs $tool on the PATH" >&2; exit 1; }
done

step "build"
"$CARGO" build -q --workspace --bins
BIN=$("$CARGO" metadata --format-version 1 --no-deps | jq -r .target_directory)/debug

step "development certificate (sidecar-injector certs)"
"$BIN/sidecar-injector" certs --service sidecar-injector --namespace sidecar-injector --out-dir "$WORK/certs"
ls "$WORK/certs"

step "serve on loopback"
PORT=$(free_port)
HEALTH_PORT=$(free_port)
"$BIN/sidecar-injector" serve --port "$PORT" --address 127.0.0.1 --monitoring-port "$HEALTH_PORT" --tls-dir "$WORK/certs" \
  >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log"; echo "serve exited" >&2; exit 1; }
  sleep 0.1
done
echo "listening on https://127.0.0.1:$PORT (pid $SERVER_PID)"

step "POST $REVIEW"
# The certificate names the Service, as in a cluster; --resolve points that name at loopback.
curl -sS --fail-with-body --cacert "$WORK/certs/ca.crt" --resolve "$HOST:$PORT:127.0.0.1" \
  -H 'Content-Type: application/json' --data-binary "@$REVIEW" \
  "https://$HOST:$PORT/inject" >"$WORK/response.json"
jq '.response | {uid, allowed, patchType, status}' "$WORK/response.json"
[ "$(jq -r .response.allowed "$WORK/response.json")" = true ] || { echo "review denied" >&2; exit 1; }

step "the JSON patch (decoded)"
jq -r '.response.patch // empty' "$WORK/response.json" | base64 -d >"$WORK/patch.json"
[ -s "$WORK/patch.json" ] || { echo "no patch: the pod was not injected" >&2; exit 1; }
jq -c '.[]' "$WORK/patch.json"

step "the resulting pod"
jq '.request.object' "$REVIEW" >"$WORK/pod.json"
apply_patch "$WORK/pod.json" "$WORK/patch.json" >"$WORK/injected.json"
jq '{metadata: {annotations: .metadata.annotations},
     initContainers: [.spec.initContainers[]? | {name, image, args}],
     containers: [.spec.containers[] | {name, image}],
     volumes: [.spec.volumes[]? | .name]}' "$WORK/injected.json"

step "mesh-init --dry-run with that pod's istio-init arguments"
mapfile -t ARGS < <(jq -r '.spec.initContainers[] | select(.name == "istio-init") | .args[1:][]' "$WORK/injected.json")
[ "${#ARGS[@]}" -gt 0 ] || { echo "the pod has no istio-init container" >&2; exit 1; }
echo "+ mesh-init --dry-run ${ARGS[*]}"
"$BIN/mesh-init" --dry-run "${ARGS[@]}"

step "done: server stopped"

#!/usr/bin/env bash
# Deploys every variant to a local kind cluster: builds the images, creates
# the cluster (k8s/kind-config.yaml) if it is not there, loads the images
# into it, applies the kind overlay and waits for every rollout. Needs
# docker, kind, kubectl and cargo on a machine that can run kind (the
# project's CI cannot: there it only renders and validates the manifests).
#   k8s/deploy-kind.sh            deploy (again) to the cluster "mvm"
#   CLUSTER=other k8s/deploy-kind.sh
#   kind delete cluster --name mvm   remove it all
set -euo pipefail
cd "$(dirname "$0")/.."
cluster="${CLUSTER:-mvm}"
context="kind-${cluster}"

for tool in docker kind kubectl cargo; do
    command -v "$tool" >/dev/null || { echo "deploy-kind: $tool is needed and not on PATH" >&2; exit 1; }
done

echo "==> building the images (static musl binaries, FROM scratch)"
cargo run --release --bin bench -- images

# The private CA, the services' certificates and the token key: made here,
# by the project's own command, never committed. Delete the directory to
# rotate them (the next apply rolls every pod onto the new Secrets).
pki=k8s/components/mtls/pki
if [ ! -f "$pki/ca.pem" ]; then
    echo "==> generating a private CA and service certificates into $pki"
    cargo run --quiet --release -p microservices -- certs --out "$pki"
fi

if ! kind get clusters | grep -qx "$cluster"; then
    echo "==> creating the kind cluster $cluster"
    kind create cluster --name "$cluster" --config k8s/kind-config.yaml --wait 120s
fi

echo "==> loading the images into $cluster"
for image in $(cargo run --quiet --release --bin bench -- images --list); do
    kind load docker-image --name "$cluster" "$image"
done

echo "==> applying k8s/overlays/kind"
kubectl --context "$context" apply -k k8s/overlays/kind
# A new image under the same tag needs new pods.
kubectl --context "$context" -n mvm rollout restart deployment
for deployment in $(kubectl --context "$context" -n mvm get deployments -o name); do
    kubectl --context "$context" -n mvm rollout status "$deployment" --timeout=180s
done

cat <<DONE
==> deployed. The edges are on the host's loopback:
    monolith       http://127.0.0.1:8082
    microlith      http://127.0.0.1:8080
    microservices  http://127.0.0.1:8081
Measure them with:
    cargo run --release --bin bench -- compare --target monolith=http://127.0.0.1:8082 --target microlith=http://127.0.0.1:8080 --target microservices=http://127.0.0.1:8081
DONE

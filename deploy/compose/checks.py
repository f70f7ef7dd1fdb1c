#!/usr/bin/env python3
"""Checks on the deployment files that a schema cannot make; run by validate.sh.

  checks.py compose FILE.yaml CONFIG.json   CONFIG.json: `docker compose -f FILE.yaml config --format json`
  checks.py dockerfile Dockerfile           (needs dockerfile-parse on PYTHONPATH)
  checks.py self-test FILE.yaml CONFIG.json each deliberate breakage must be caught

Compose checks, for every container of the corridor image:
  - no root (user set, uid not 0), read_only root filesystem, /tmp a tmpfs;
  - a long-running one (`corridor serve`) has the `corridor health` healthcheck, and
    a one-shot (any other command) has restart "no" and no healthcheck;
  - for every service it calls (gateway -> identity, encounters, referrals;
    identity -> encounters, referrals; encounters -> identity, referrals;
    referrals -> identity, encounters) that does not run in the same container:
    CORRIDOR_<SERVICE>_URL names the compose service that runs it, and depends_on
    it with service_healthy (for two services that call each other, one of the two
    directions is enough: the other is lazy), unless the call is retried in the
    background (identity -> encounters, referrals: see RETRIED);
  - a database it uses (postgres://host...) is a compose service it depends on with
    service_healthy; a store or development signing key without one lives on a volume;
  - a file it reads (TLS, peers) from a volume that a one-shot writes makes it depend
    on that one-shot with service_completed_successfully; bind-mounted files exist;
  - federation: node id, real jurisdiction, TLS and a peers file together; each peer
    entry names a compose node by its id, jurisdiction, federation port, and the CA
    that node's certificate comes from, and that certificate names the host.
For every service: depends_on service_healthy only on services with a healthcheck;
images pinned by tag (not latest) or digest. Prometheus targets and the collector's
exporter name real services.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

CORRIDOR_DOCKERFILE = "deploy/docker/Dockerfile"
HEALTHCHECK = ["CMD", "corridor", "health", "--addr", "127.0.0.1:9464"]
SERVICES = ("identity", "encounters", "referrals", "gateway")
CALLS = {
    "identity": ("encounters", "referrals"),
    "encounters": ("identity", "referrals"),
    "referrals": ("identity", "encounters"),
    "gateway": ("identity", "encounters", "referrals"),
}
# Calls made from a background task that retries with back-off until the callee
# answers, so the caller starts without it and needs no start order: identity's
# transaction coordinator settling encounters' and referrals' parts of
# transactions that span services. Those two depend on identity, so identity
# waiting for them would be a cycle. Their URLs are still checked.
RETRIED = {("identity", "encounters"), ("identity", "referrals")}
STORES = ("identity", "encounters", "referrals")
DEFAULT_PORTS = {"identity": 50051, "encounters": 50052, "referrals": 50053, "gateway": 8080}


class Checker:
    def __init__(self, compose_file: Path, config: dict):
        self.file = compose_file
        self.dir = compose_file.parent
        self.config = config
        self.services: dict = config.get("services", {})
        self.errors: list[str] = []

    def fail(self, service: str, message: str) -> None:
        self.errors.append(f"{self.file.name}: {service}: {message}")

    # -- helpers ---------------------------------------------------------------

    def is_corridor(self, svc: dict) -> bool:
        build = svc.get("build") or {}
        return str(build.get("dockerfile", "")).endswith(CORRIDOR_DOCKERFILE) or str(
            svc.get("image", "")
        ).startswith("corridor:")

    @staticmethod
    def env(svc: dict) -> dict:
        return {k: ("" if v is None else str(v)) for k, v in (svc.get("environment") or {}).items()}

    @staticmethod
    def argv(svc: dict) -> list[str]:
        entry = svc.get("entrypoint")
        command = svc.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if entry is not None:
            return ["<entrypoint>"] + list(entry) + list(command or [])
        return list(command or ["serve"])  # the image's CMD

    def is_server(self, svc: dict) -> bool:
        argv = self.argv(svc)
        return bool(argv) and argv[0] == "serve"

    def runs(self, svc: dict) -> list[str]:
        """The corridor services a `corridor serve` container runs."""
        argv = self.argv(svc)
        chosen: list[str] = []
        for i, arg in enumerate(argv):
            if arg == "--service" and i + 1 < len(argv):
                chosen += argv[i + 1].split(",")
            elif arg.startswith("--service="):
                chosen += arg.split("=", 1)[1].split(",")
        if not chosen and self.env(svc).get("CORRIDOR_SERVICES"):
            chosen = self.env(svc)["CORRIDOR_SERVICES"].split(",")
        return [c.strip() for c in chosen] or list(SERVICES)

    @staticmethod
    def host_port(url: str) -> tuple[str, int | None]:
        m = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^:/]+)(?::(\d+))?", url)
        if not m:
            return "", None
        return m.group(1), int(m.group(2)) if m.group(2) else None

    def depends(self, svc: dict) -> dict:
        return svc.get("depends_on") or {}

    def condition(self, svc: dict, other: str) -> str | None:
        dep = self.depends(svc).get(other)
        return None if dep is None else dep.get("condition", "service_started")

    def mounts(self, svc: dict) -> list[dict]:
        return [v for v in svc.get("volumes") or [] if isinstance(v, dict)]

    def mount_for(self, svc: dict, path: str) -> dict | None:
        best = None
        for m in self.mounts(svc):
            target = m.get("target", "").rstrip("/")
            if path == target or path.startswith(target + "/"):
                if best is None or len(target) > len(best["target"].rstrip("/")):
                    best = m
        return best

    def has_healthcheck(self, svc: dict) -> bool:
        hc = svc.get("healthcheck")
        return bool(hc) and not hc.get("disable") and hc.get("test") not in (None, [], ["NONE"])

    def one_shot_writers(self, volume: str) -> list[str]:
        writers = []
        for name, svc in self.services.items():
            if self.is_corridor(svc) and not self.is_server(svc):
                for m in self.mounts(svc):
                    if m.get("type") == "volume" and m.get("source") == volume and not m.get("read_only"):
                        writers.append(name)
        return writers

    # -- checks ----------------------------------------------------------------

    def run(self) -> list[str]:
        for name, svc in self.services.items():
            self.check_common(name, svc)
            if self.is_corridor(svc):
                self.check_corridor(name, svc)
        self.check_prometheus()
        self.check_collector()
        return self.errors

    def check_common(self, name: str, svc: dict) -> None:
        image = str(svc.get("image", ""))
        if not self.is_corridor(svc):
            tag = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in tag or tag.endswith(":latest")):
                self.fail(name, f"image '{image}' is not pinned (give a version tag or a digest)")
        for other, dep in self.depends(svc).items():
            if other not in self.services:
                self.fail(name, f"depends_on unknown service '{other}'")
                continue
            cond = dep.get("condition")
            if cond == "service_healthy" and not self.has_healthcheck(self.services[other]):
                self.fail(name, f"waits for '{other}' to be healthy, but '{other}' has no healthcheck")
            if cond == "service_completed_successfully" and self.is_server(self.services[other]):
                self.fail(name, f"waits for '{other}' to complete, but '{other}' is a server")
        for m in self.mounts(svc):
            if m.get("type") == "bind" and not Path(m.get("source", "")).exists():
                self.fail(name, f"bind mount source {m.get('source')} does not exist")

    def check_corridor(self, name: str, svc: dict) -> None:
        env = self.env(svc)
        user = str(svc.get("user") or "")
        uid = user.split(":", 1)[0]
        if not user or uid in ("0", "root"):
            self.fail(name, f"must run as a non-root user (user: '{user}')")
        if svc.get("read_only") is not True:
            self.fail(name, "must have read_only: true")
        tmpfs = svc.get("tmpfs") or []
        tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
        if not any(t.split(":", 1)[0] == "/tmp" for t in tmpfs):
            self.fail(name, "must mount /tmp as tmpfs (the root filesystem is read-only)")

        if not self.is_server(svc):
            if self.has_healthcheck(svc):
                self.fail(name, "a one-shot job has no healthcheck to pass")
            if svc.get("restart") not in (None, "no"):
                self.fail(name, "a one-shot job must not restart (restart: \"no\")")
            return

        hc = svc.get("healthcheck") or {}
        if hc.get("disable") or hc.get("test") != HEALTHCHECK:
            self.fail(name, f"healthcheck must be {HEALTHCHECK}, not {hc.get('test')}")
        if not env.get("CORRIDOR_OPS_ADDR", "").endswith(":9464"):
            self.fail(name, "CORRIDOR_OPS_ADDR must serve the ops port 9464 the healthcheck asks")

        runs = self.runs(svc)
        unknown = [r for r in runs if r not in SERVICES]
        if unknown:
            self.fail(name, f"runs unknown service(s) {unknown}")
        self.check_calls(name, svc, env, runs)
        self.check_stores(name, svc, env, runs)
        self.check_files(name, svc, env)
        self.check_federation(name, svc, env)
        otlp = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if otlp:
            host, _ = self.host_port(otlp)
            if host in self.services and host not in self.depends(svc):
                self.fail(name, f"sends spans to '{host}' but does not depend on it")
            elif host not in self.services and host not in ("localhost", "127.0.0.1"):
                self.fail(name, f"OTEL_EXPORTER_OTLP_ENDPOINT names '{host}', no service of this file")

    def check_calls(self, name: str, svc: dict, env: dict, runs: list[str]) -> None:
        tls = bool(env.get("CORRIDOR_TLS_CERT_FILE"))
        for service in runs:
            for callee in CALLS.get(service, ()):
                if callee in runs:
                    continue
                var = f"CORRIDOR_{callee.upper()}_URL"
                url = env.get(var)
                if not url:
                    self.fail(name, f"{service} calls {callee}, which runs elsewhere: set {var}")
                    continue
                scheme = "https://" if tls else "http://"
                if not url.startswith(scheme):
                    self.fail(name, f"{var}={url} must start with {scheme}")
                host, port = self.host_port(url)
                target = self.services.get(host)
                if target is None or not self.is_corridor(target) or callee not in self.runs(target):
                    self.fail(name, f"{var}={url}: '{host}' is no service of this file that runs {callee}")
                    continue
                addr = self.env(target).get(f"CORRIDOR_{callee.upper()}_ADDR", f"0.0.0.0:{DEFAULT_PORTS[callee]}")
                if port is not None and not addr.endswith(f":{port}"):
                    self.fail(name, f"{var}={url}: {host} listens for {callee} on {addr}")
                if (service, callee) in RETRIED:
                    continue
                # The callee's container waiting for this one stands in only when
                # it calls back with a call that needs a start order (the lazy
                # direction of a pair); a retried call back does not.
                calls_back = any(s in CALLS.get(t, ()) and (t, s) not in RETRIED
                                 for t in self.runs(target) for s in runs)
                if self.condition(svc, host) != "service_healthy" and not (
                        calls_back and self.condition(target, name) == "service_healthy"):
                    self.fail(name, f"{service} calls {callee} on '{host}': depends_on {host} with condition service_healthy")

    def check_stores(self, name: str, svc: dict, env: dict, runs: list[str]) -> None:
        data_dir = env.get("CORRIDOR_DATA_DIR", "/data")
        data_on_volume = self.mount_for(svc, data_dir) is not None
        for store in (s for s in runs if s in STORES):
            url = env.get(f"CORRIDOR_{store.upper()}_DATABASE_URL") or env.get("CORRIDOR_DATABASE_URL")
            if not url or url.startswith("sqlite:"):
                if not data_on_volume:
                    self.fail(name, f"{store} stores SQLite under {data_dir}: mount a volume there (read-only root)")
                continue
            host, _ = self.host_port(url)
            if host in self.services and self.condition(svc, host) != "service_healthy":
                self.fail(name, f"{store}'s database is on '{host}': depends_on {host} with condition service_healthy")
        if "identity" in runs and not env.get("CORRIDOR_SIGNING_KEY_FILE") and not data_on_volume:
            self.fail(name, f"identity writes its development signing key under {data_dir}: mount a volume there")

    def check_files(self, name: str, svc: dict, env: dict) -> None:
        for var in ("CORRIDOR_TLS_CERT_FILE", "CORRIDOR_TLS_KEY_FILE", "CORRIDOR_TLS_CA_FILE",
                    "CORRIDOR_TLS_CLIENT_CA_FILE", "CORRIDOR_PEERS_FILE", "CORRIDOR_SIGNING_KEY_FILE"):
            path = env.get(var)
            if not path:
                continue
            mount = self.mount_for(svc, path)
            if mount is None:
                self.fail(name, f"{var}={path} is on no mounted volume or file")
                continue
            if mount.get("type") == "volume":
                for writer in self.one_shot_writers(mount.get("source")):
                    if self.condition(svc, writer) != "service_completed_successfully":
                        self.fail(name, f"{var} comes from '{writer}': depends_on {writer} with condition service_completed_successfully")

    def host_file(self, svc: dict, path: str) -> Path | None:
        mount = self.mount_for(svc, path)
        if mount and mount.get("type") == "bind":
            rest = path[len(mount["target"].rstrip("/")):].lstrip("/")
            return Path(mount["source"]) / rest if rest else Path(mount["source"])
        return None

    def certs_made(self) -> dict[str, tuple[str, list[str]]]:
        """out dir -> (node id, hosts) of each `corridor certs` a one-shot runs."""
        made = {}
        for svc in self.services.values():
            if not self.is_corridor(svc) or self.is_server(svc):
                continue
            text = " ".join(self.argv(svc)[1:])
            for part in re.split(r"[;&|\n]+", text):
                words = shlex.split(part)
                if "certs" not in words:
                    continue
                words = words[words.index("certs") + 1:]
                opts: dict[str, list[str]] = {}
                for i, w in enumerate(words):
                    if w.startswith("--") and i + 1 < len(words):
                        opts.setdefault(w, []).append(words[i + 1])
                if "--out" in opts:
                    made[opts["--out"][0].rstrip("/")] = ((opts.get("--node") or [""])[0], opts.get("--host", []))
        return made

    def check_federation(self, name: str, svc: dict, env: dict) -> None:
        peers_file = env.get("CORRIDOR_PEERS_FILE")
        node_id = env.get("CORRIDOR_NODE_ID")
        if not peers_file:
            if node_id:
                self.fail(name, "CORRIDOR_NODE_ID without CORRIDOR_PEERS_FILE")
            return
        if not node_id:
            self.fail(name, "a federating node needs CORRIDOR_NODE_ID")
        if env.get("CORRIDOR_JURISDICTION", "XX") in ("", "XX"):
            self.fail(name, "a federating node needs its real CORRIDOR_JURISDICTION")
        tls = [env.get(v) for v in ("CORRIDOR_TLS_CERT_FILE", "CORRIDOR_TLS_KEY_FILE", "CORRIDOR_TLS_CA_FILE")]
        if not all(tls):
            self.fail(name, "a federating node needs CORRIDOR_TLS_CERT_FILE, _KEY_FILE and _CA_FILE")
            return
        made = self.certs_made()
        cert_dir = tls[0].rsplit("/", 1)[0]
        if cert_dir in made and made[cert_dir][0] != node_id:
            self.fail(name, f"its certificate in {cert_dir} is made for node '{made[cert_dir][0]}', not '{node_id}'")
        path = self.host_file(svc, peers_file)
        if path is None:
            self.fail(name, f"CORRIDOR_PEERS_FILE={peers_file} is not a bind-mounted file of the repository")
            return
        try:
            peers = tomllib.loads(path.read_text()).get("peer", [])
        except (OSError, tomllib.TOMLDecodeError) as err:
            self.fail(name, f"peers file {path}: {err}")
            return
        if not peers:
            self.fail(name, f"peers file {path} lists no [[peer]]")
        by_node = {self.env(s).get("CORRIDOR_NODE_ID"): (n, s) for n, s in self.services.items() if self.is_corridor(s)}
        for peer in peers:
            pid = peer.get("node")
            if pid == node_id:
                self.fail(name, f"peers file {path.name} lists the node itself")
            if pid not in by_node:
                self.fail(name, f"peers file {path.name}: peer '{pid}' is no node of this file")
                continue
            pname, psvc = by_node[pid]
            penv = self.env(psvc)
            if peer.get("jurisdiction") != penv.get("CORRIDOR_JURISDICTION"):
                self.fail(name, f"peer {pid}: jurisdiction {peer.get('jurisdiction')} but {pname} has {penv.get('CORRIDOR_JURISDICTION')}")
            endpoint = str(peer.get("endpoint", ""))
            host, port = self.host_port(endpoint)
            fed_port = penv.get("CORRIDOR_FEDERATION_ADDR", "0.0.0.0:50054").rsplit(":", 1)[-1]
            if not endpoint.startswith("https://") or host != pname or str(port) != fed_port:
                self.fail(name, f"peer {pid}: endpoint {endpoint} must be https://{pname}:{fed_port}")
            ca = str(peer.get("ca_file", ""))
            peer_ca = penv.get("CORRIDOR_TLS_CA_FILE", "")
            if not ca.startswith("/"):
                self.fail(name, f"peer {pid}: give ca_file as an absolute path in the container, not '{ca}'")
            elif ca != peer_ca:
                self.fail(name, f"peer {pid}: ca_file {ca} is not the CA {pname} uses ({peer_ca})")
            elif self.mount_for(svc, ca) is None:
                self.fail(name, f"peer {pid}: ca_file {ca} is on no volume of {name}")
            peer_dir = penv.get("CORRIDOR_TLS_CERT_FILE", "").rsplit("/", 1)[0]
            if peer_dir in made and pname not in made[peer_dir][1]:
                self.fail(name, f"peer {pid}: its certificate ({peer_dir}) does not name the host '{pname}' (--host)")

    def yaml_file(self, service: str, target: str) -> tuple[Path | None, dict]:
        import yaml  # PyYAML, installed by validate.sh

        svc = self.services.get(service)
        if svc is None:
            return None, {}
        path = self.host_file(svc, target)
        if path is None:
            self.fail(service, f"{target} is not a bind-mounted file")
            return None, {}
        return path, yaml.safe_load(path.read_text()) or {}

    def check_prometheus(self) -> None:
        if "prometheus" not in self.services:
            return
        path, conf = self.yaml_file("prometheus", "/etc/prometheus/prometheus.yml")
        if path is None:
            return
        targets = [t for job in conf.get("scrape_configs", []) for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
        servers = {n for n, s in self.services.items() if self.is_corridor(s) and self.is_server(s)}
        for target in targets:
            host, _, port = target.partition(":")
            if host not in servers or port != "9464":
                self.fail("prometheus", f"{path.name}: target {target} is no corridor ops port")
        missing = servers - {t.split(":")[0] for t in targets}
        if missing:
            self.fail("prometheus", f"{path.name}: does not scrape {sorted(missing)}")

    def check_collector(self) -> None:
        if "otel-collector" not in self.services:
            return
        path, conf = self.yaml_file("otel-collector", "/etc/otelcol/config.yaml")
        if path is None:
            return
        grpc = conf.get("receivers", {}).get("otlp", {}).get("protocols", {}).get("grpc") or {}
        if not str(grpc.get("endpoint", "")).endswith(":4317"):
            self.fail("otel-collector", f"{path.name}: no OTLP gRPC receiver on 4317")
        pipeline = conf.get("service", {}).get("pipelines", {}).get("traces", {})
        exporters = conf.get("exporters", {})
        for exp in pipeline.get("exporters", []):
            if exp not in exporters:
                self.fail("otel-collector", f"{path.name}: pipeline exporter {exp} is not defined")
                continue
            host = str((exporters[exp] or {}).get("endpoint", "")).split("://")[-1].split(":")[0]
            if exp.split("/")[0] in ("otlp", "otlphttp") and host not in self.services:
                self.fail("otel-collector", f"{path.name}: exporter {exp} sends to '{host}', no service of this file")
        if "otlp" not in pipeline.get("receivers", []):
            self.fail("otel-collector", f"{path.name}: the traces pipeline does not receive OTLP")


def check_compose(compose_file: str, config_json: str) -> list[str]:
    with open(config_json) as f:
        config = json.load(f)
    return Checker(Path(compose_file).resolve(), config).run()


def self_test(compose_file: str, config_json: str) -> int:
    """Break the configuration in known ways; each must be reported."""
    with open(config_json) as f:
        config = json.load(f)
    checker = Checker(Path(compose_file).resolve(), config)
    servers = [n for n, s in checker.services.items() if checker.is_corridor(s) and checker.is_server(s)]
    callers = [n for n in servers if checker.services[n].get("depends_on")]
    victim, caller = servers[0], (callers or servers)[-1]

    def drop(path):
        def apply(c):
            node = c["services"]
            for key in path[:-1]:
                node = node[key]
            node.pop(path[-1], None)
        return apply

    def setv(path, value):
        def apply(c):
            node = c["services"]
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        return apply

    dep = next(iter(config["services"][caller]["depends_on"]))
    breakages = {
        f"{victim} without read_only": drop([victim, "read_only"]),
        f"{victim} as root": setv([victim, "user"], "0:0"),
        f"{victim} without user": drop([victim, "user"]),
        f"{victim} without healthcheck": drop([victim, "healthcheck"]),
        f"{victim} without /tmp tmpfs": drop([victim, "tmpfs"]),
        f"{caller} waiting only for {dep} to start": setv([caller, "depends_on", dep, "condition"], "service_started"),
        f"{caller} not waiting for {dep}": drop([caller, "depends_on", dep]),
        "an unpinned image": setv([next(n for n, s in config["services"].items() if not checker.is_corridor(s)), "image"], "postgres:latest"),
    }
    # Where identity runs apart from encounters: its own calls are represented
    # (its URL of encounters is required), and its exemption from start order
    # does not let encounters skip waiting for identity.
    def alone(service):
        return next((n for n in servers if checker.runs(checker.services[n]) == [service]), None)

    identity, encounters = alone("identity"), alone("encounters")
    if identity and encounters:
        def swap(c):
            c["services"][encounters]["depends_on"].pop(identity, None)
            c["services"][identity].setdefault("depends_on", {})[encounters] = {"condition": "service_healthy"}
        breakages[f"{identity} without CORRIDOR_ENCOUNTERS_URL"] = drop([identity, "environment", "CORRIDOR_ENCOUNTERS_URL"])
        breakages[f"{identity} waiting for {encounters} instead of {encounters} for {identity}"] = swap
    missed = []
    for label, apply in breakages.items():
        broken = copy.deepcopy(config)
        apply(broken)
        if not Checker(Path(compose_file).resolve(), broken).run():
            missed.append(label)
    for label in missed:
        print(f"self-test: {Path(compose_file).name}: not caught: {label}", file=sys.stderr)
    print(f"self-test: {Path(compose_file).name}: {len(breakages) - len(missed)} of {len(breakages)} breakages caught")
    return 1 if missed else 0


def check_dockerfile(path: str) -> list[str]:
    from dockerfile_parse import DockerfileParser

    with open(path, "rb") as f:
        parser = DockerfileParser(fileobj=f)
        structure = parser.structure
    errors: list[str] = []
    name = os.path.relpath(path)
    stages: list[dict] = []  # {"image", "alias", "instructions"}
    for ins in structure:
        if ins["instruction"] == "FROM":
            words = ins["value"].split()
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"image": words[0], "alias": alias, "ins": []})
        elif stages:
            stages[-1]["ins"].append(ins)
    if len(stages) < 2:
        return [f"{name}: not a multi-stage build ({len(stages)} FROM)"]
    aliases = {s["alias"] for s in stages if s["alias"]}
    for s in stages:
        image = s["image"]
        if image in aliases:
            continue
        tag = image.rsplit("/", 1)[-1]
        if "$" in image or ("@sha256:" not in image and (":" not in tag or tag.endswith(":latest"))):
            errors.append(f"{name}: FROM {image} is not pinned to a version tag or digest")
    build = [s for s in stages[:-1] if any("cargo build" in i["value"] for i in s["ins"] if i["instruction"] == "RUN")]
    if not build or not any(re.search(r"cargo build .*--release.*-p corridor|cargo build .*-p corridor.*--release", i["value"])
                            for s in build for i in s["ins"] if i["instruction"] == "RUN"):
        errors.append(f"{name}: no build stage runs `cargo build --release -p corridor`")
    final = stages[-1]
    if re.search(r"(^|/)rust(:|@|$)", final["image"]) or final["image"] in aliases:
        errors.append(f"{name}: the final stage starts from {final['image']}, which carries the toolchain")
    toolchain = re.compile(r"\b(cargo|rustc|rustup|gcc|cc|clang|build-essential)\b")
    for ins in final["ins"]:
        if ins["instruction"] in ("RUN", "COPY", "ADD") and toolchain.search(ins["value"]):
            errors.append(f"{name}: final stage line {ins['startline'] + 1} brings build tools: {ins['content'].strip()}")
        if ins["instruction"] == "COPY" and "--from=" in ins["value"]:
            src = ins["value"].split()[1:-1]
            if not all(p.startswith("--") or p.endswith("/corridor") for p in src):
                errors.append(f"{name}: final stage copies more than the corridor binary: {ins['value']}")
    users = [i["value"].strip() for i in final["ins"] if i["instruction"] == "USER"]
    if not users:
        errors.append(f"{name}: the final stage sets no USER (it would run as root)")
    elif users[-1].split(":")[0] in ("0", "root"):
        errors.append(f"{name}: the final stage runs as root (USER {users[-1]})")
    def last(kind):
        values = [i["value"] for i in final["ins"] if i["instruction"] == kind]
        try:
            return json.loads(values[-1]) if values else None
        except json.JSONDecodeError:
            return values[-1]
    if last("ENTRYPOINT") != ["corridor"]:
        errors.append(f"{name}: ENTRYPOINT must be [\"corridor\"], not {last('ENTRYPOINT')}")
    if last("CMD") != ["serve"]:
        errors.append(f"{name}: CMD must be [\"serve\"], not {last('CMD')}")
    exposed = {p.split("/")[0] for i in final["ins"] if i["instruction"] == "EXPOSE" for p in i["value"].split()}
    for port in ("8080", "50051", "50052", "50053", "50054", "9464"):
        if port not in exposed:
            errors.append(f"{name}: port {port} is not EXPOSEd")
    return errors


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "compose":
        errors = check_compose(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "self-test":
        return self_test(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "dockerfile":
        errors = check_dockerfile(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

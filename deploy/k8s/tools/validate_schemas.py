#!/usr/bin/env python3
"""Validate rendered manifests against the Kubernetes schemas, offline.

    validate_schemas.py --kubernetes-version 1.32.0 --crs-out CRS.json RENDERED.yaml...

Built-in kinds: kubernetes-validate's schemas of that Kubernetes version, in
strict mode (unknown fields fail). Prometheus Operator kinds
(monitoring.coreos.com) have no schema here: they are written to CRS.json for
validate_crs.mjs. CloudNativePG kinds (postgresql.cnpg.io) have no schema
from any registry this project can reach: they are listed as parsed only,
never as validated. Any other kind without a schema fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import kubernetes_validate
import yaml

HANDED_ON = "monitoring.coreos.com/"
PARSED_ONLY = {"postgresql.cnpg.io/": "no registry reachable here ships CloudNativePG's CRD schemas"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--crs-out", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    failures = 0
    validated: Counter[str] = Counter()
    handed_on: list[dict] = []
    parsed_only: Counter[str] = Counter()
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            what = f"{path}: {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            api = f"{doc.get('apiVersion')}/{doc.get('kind')}"
            try:
                kubernetes_validate.validate(doc, args.kubernetes_version, strict=True)
                validated[api] += 1
            except kubernetes_validate.ValidationError as e:
                path_in_doc = "/".join(str(p) for p in e.path) or "(top)"
                print(f"  FAIL {what}: at {path_in_doc}: {e.message}")
                failures += 1
            except kubernetes_validate.SchemaNotFoundError:
                group = str(doc.get("apiVersion", ""))
                if group.startswith(HANDED_ON):
                    handed_on.append(doc)
                elif any(group.startswith(g) for g in PARSED_ONLY):
                    parsed_only[api] += 1
                else:
                    print(f"  FAIL {what}: no schema for {api} in Kubernetes {args.kubernetes_version}")
                    failures += 1
    with open(args.crs_out, "w", encoding="utf-8") as f:
        json.dump(handed_on, f)

    total = sum(validated.values())
    print(f"  schema-validated (Kubernetes {args.kubernetes_version}, strict, "
          f"kubernetes-validate {kubernetes_validate.__version__}): {total} objects")
    for api, n in sorted(validated.items()):
        print(f"    {n:3d} {api}")
    if handed_on:
        print(f"  handed to the Prometheus Operator schemas: {len(handed_on)} objects")
    for api, n in sorted(parsed_only.items()):
        reason = next(r for g, r in PARSED_ONLY.items() if api.startswith(g))
        print(f"  PARSED ONLY, NOT schema-validated: {n} {api} ({reason}; check_policy.py checks their cross-references)")
    if failures:
        print(f"  {failures} objects failed schema validation")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

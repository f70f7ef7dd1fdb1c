#!/usr/bin/env python3
"""Input for `just bench-import`, made from the Synthea sample
(tests/fixtures/synthea-r4.tar.xz) into OUT:

- sample/: the 60 bundles as they are (6,192 resources);
- larger/: COPIES copies of every patient bundle, each copy a new person: every
  urn:uuid and every identifier value is made new, so nothing is a duplicate
  of another copy (COPIES=10: about 62,000 resources in 580 bundles);
- big/: one transaction of at least BIG entries (default 3,737, the size of the
  Synthea transaction Helios hfs was measured with), made of whole patient
  bundles of a fresh copy;
- patients.ndjson: NDJSON Patients (the sample's, each copied with new
  identifier values) for $import, NDJSON lines of them.

Usage: generate.py OUT [COPIES] [BIG] [NDJSON]
"""
import json
import os
import re
import sys
import tarfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ARCHIVE = os.path.join(HERE, "..", "..", "fixtures", "synthea-r4.tar.xz")
URN = re.compile(r"urn:uuid:[0-9a-fA-F-]{36}")


def sample():
    with tarfile.open(ARCHIVE) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile():
                yield os.path.basename(member.name), tar.extractfile(member).read().decode()


def renewed(text, copy):
    """The bundle as a new person's: new urn:uuids, identifier values marked."""
    fresh = {}
    text = URN.sub(lambda m: fresh.setdefault(m.group(0), f"urn:uuid:{uuid.uuid4()}"), text)
    bundle = json.loads(text)
    for entry in bundle.get("entry", []):
        for identifier in entry.get("resource", {}).get("identifier", []):
            if "value" in identifier:
                identifier["value"] = f"{identifier['value']}-c{copy}"
    return bundle


def main():
    out = sys.argv[1]
    copies = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    big = int(sys.argv[3]) if len(sys.argv) > 3 else 3737
    ndjson = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
    files = list(sample())
    people = [(name, text) for name, text in files if '"Patient"' in text]
    for folder in ("sample", "larger", "big"):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    for name, text in files:
        with open(os.path.join(out, "sample", name), "w") as f:
            f.write(text)
    for copy in range(copies):
        for name, text in people:
            bundle = renewed(text, copy)
            with open(os.path.join(out, "larger", f"c{copy}-{name}"), "w") as f:
                json.dump(bundle, f)
    patients = [e["resource"] for _, text in people for e in json.loads(text)["entry"]
                if e["resource"]["resourceType"] == "Patient"]
    lines = []
    for n in range(ndjson):
        patient = json.loads(json.dumps(patients[n % len(patients)]))
        patient.pop("id", None)
        for identifier in patient.get("identifier", []):
            if "value" in identifier:
                identifier["value"] = f"{identifier['value']}-n{n}"
        lines.append(json.dumps(patient))
    with open(os.path.join(out, "patients.ndjson"), "w") as f:
        f.write("\n".join(lines) + "\n")
    entries = []
    for name, text in people:
        entries.extend(renewed(text, copies)["entry"])
        if len(entries) >= big:
            break
    with open(os.path.join(out, "big", "one-transaction.json"), "w") as f:
        json.dump({"resourceType": "Bundle", "type": "transaction", "entry": entries}, f)
    total = sum(len(json.loads(t)["entry"]) for _, t in files)
    print(f"sample: {total} entries in {len(files)} bundles; "
          f"larger: {copies} copies of {len(people)} patients; big: {len(entries)} entries; "
          f"patients.ndjson: {len(lines)} lines")


if __name__ == "__main__":
    main()

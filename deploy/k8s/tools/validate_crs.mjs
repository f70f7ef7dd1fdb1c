// Validate Prometheus Operator objects (ServiceMonitor, PrometheusRule)
// against the schemas of @kubernetes-models/prometheus-operator (generated
// from the operator's API types): types, required fields and enums. Those
// schemas do not reject unknown fields; check_policy.py and promtool cover
// what matters there.
//
//   node validate_crs.mjs OBJECTS.json     (a JSON array of objects)
//
// Prints one line per object; exits 1 if any fails or is of a kind it has
// no schema for.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const models = {
  "monitoring.coreos.com/v1/ServiceMonitor":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  "monitoring.coreos.com/v1/PrometheusRule":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
  "monitoring.coreos.com/v1/PodMonitor":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
};

const require = createRequire(import.meta.url);
const version = require("@kubernetes-models/prometheus-operator/package.json").version;
const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const object of objects) {
  const key = `${object.apiVersion}/${object.kind}`;
  const what = `${object.kind}/${object.metadata?.name}`;
  const module = models[key];
  if (!module) {
    console.log(`  FAIL ${what}: no schema for ${key}`);
    failed++;
    continue;
  }
  const Model = (await import(module))[object.kind];
  try {
    new Model(object).validate();
    console.log(`  ok   ${what} (@kubernetes-models/prometheus-operator ${version})`);
  } catch (error) {
    console.log(`  FAIL ${what}: ${error.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);

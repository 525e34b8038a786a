// validate.mjs — checks Kubernetes manifests (JSON files, one object each) against the
// Kubernetes OpenAPI models of the npm package kubernetes-models (pinned in
// package.json / package-lock.json beside this file; tests/suites/66-kube.sh installs
// it with `npm ci` into a cache under the build directory).
//
//   node validate.mjs FILE.json...
//
// Each object is built as its kind's model (batch/v1 Job, v1 Pod) and validated: the
// types of every field and the required fields, with ajv under the models' schemas.
// One line per file: "ok FILE" or "invalid FILE: what"; exit 0 when every file is
// valid, 1 otherwise, 2 on usage. An unknown kind is invalid (never passed unchecked).
import { readFileSync } from "node:fs";
import { Job } from "kubernetes-models/batch/v1/Job";
import { Pod } from "kubernetes-models/v1/Pod";

const models = { "batch/v1 Job": Job, "v1 Pod": Pod };
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE.json...");
  process.exit(2);
}
let bad = 0;
for (const f of files) {
  try {
    const obj = JSON.parse(readFileSync(f, "utf8"));
    const M = models[`${obj.apiVersion} ${obj.kind}`];
    if (!M) throw new Error(`no model for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
    new M(obj).validate();
    console.log(`ok ${f}`);
  } catch (e) {
    bad++;
    console.log(`invalid ${f}: ${String(e.message || e).replace(/\s+/g, " ").slice(0, 400)}`);
  }
}
process.exit(bad ? 1 : 0);

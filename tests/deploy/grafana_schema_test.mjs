// Validates deploy/grafana/walrus-dashboard.json against Grafana's own
// dashboard schema types (@grafana/schema, Grafana 11): unknown or misspelt
// fields, wrong types, enum values, missing required fields.
//
// usage: node grafana_schema_test.mjs REPO_DIR
import fs from "node:fs";
import path from "node:path";
import { typecheck } from "./typecheck.mjs";

const file = path.join(process.argv[2], "deploy", "grafana", "walrus-dashboard.json");
const dashboard = JSON.parse(fs.readFileSync(file, "utf8"));
const failures = typecheck([{ label: "walrus-dashboard.json", module: "@grafana/schema", type: "Dashboard", value: dashboard, loose: true }]);
for (const f of failures) console.log("FAIL:", f);
if (failures.length) process.exit(1);
console.log(`${file}: matches @grafana/schema's Dashboard (${dashboard.panels.length} panels)`);

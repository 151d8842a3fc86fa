// Checks JSON values against TypeScript interfaces that a schema package
// ships (kubernetes-models, @grafana/schema), with tsc's excess-property
// check: each value becomes a typed object literal, so a property its type
// does not have, a wrong type or a missing required field is an error.
// JSON schemas generated from OpenAPI do not forbid unknown fields, so a
// misspelt field would pass them; this does not let it. tsc reports the
// first problem of each value: fix it and the next shows.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const nodeModules = path.join(path.dirname(new URL(import.meta.url).pathname), "node_modules");

// String enums are nominal in TypeScript; JSON holds their values. Loose<T>
// turns each string enum into the union of its literal values.
const LOOSE =
  "type Loose<T> = T extends string ? `${T}` : T extends (infer U)[] ? Loose<U>[] : " +
  "T extends object ? { [K in keyof T]: Loose<T[K]> } : T;";

// entries: [{ label, module, type, value, loose }]; loose: the type has
// string enums (see Loose). Returns failure messages.
export function typecheck(entries) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "walrus-tsc-"));
  const owners = []; // [first line, last line, label]
  const lines = [LOOSE];
  entries.forEach(({ label, module, type, value, loose }, i) => {
    lines.push(`import type { ${type} as T${i} } from "${module}";`);
    const annotation = loose ? `Loose<T${i}>` : `T${i}`;
    const body = `export const v${i}: ${annotation} = ${JSON.stringify(value, null, 1)};`.split("\n");
    owners.push([lines.length + 1, lines.length + body.length, label]);
    lines.push(...body);
  });
  fs.writeFileSync(path.join(tmp, "check.ts"), lines.join("\n") + "\n");
  fs.writeFileSync(
    path.join(tmp, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, skipLibCheck: true, target: "es2020", module: "commonjs",
        moduleResolution: "node", baseUrl: nodeModules,
        paths: { "*": [path.join(nodeModules, "*")] }, typeRoots: [], types: [],
      },
      files: ["check.ts"],
    }),
  );
  const r = spawnSync(process.execPath, [path.join(nodeModules, "typescript", "bin", "tsc"), "-p", tmp], {
    encoding: "utf8",
    timeout: 180000,
  });
  fs.rmSync(tmp, { recursive: true, force: true });
  if (r.status === 0) return [];
  const failures = [];
  for (const m of r.stdout.matchAll(/check\.ts\((\d+),\d+\): error (TS\d+: .*)/g)) {
    const line = Number(m[1]);
    const owner = owners.find(([a, b]) => line >= a && line <= b);
    failures.push(`${owner ? owner[2] : "check.ts"}: ${m[2].slice(0, 600)}`);
  }
  if (!failures.length) failures.push(`tsc failed: ${r.stdout}${r.stderr}`);
  return failures;
}

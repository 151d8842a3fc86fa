// Renders deploy/kubernetes/base and every overlay offline, validates each
// object against the Kubernetes API schema of its apiVersion/kind
// (kubernetes-models: the OpenAPI schemas of Kubernetes 1.30 and of the
// Prometheus Operator CRDs; unknown fields rejected via TypeScript, see
// checkUnknownFields), then checks what the sidecar deployment relies
// on. Rendering uses `kubectl kustomize` when kubectl is installed and the
// project's renderer otherwise; with kubectl present both must agree.
//
// Finally the built walrusd is started with each sidecar's arguments
// (tests/deploy/smoke_run.py).
//
// usage: node kustomize_test.mjs REPO_DIR WALRUSD WALRUSCTL
// Exit 0 pass, 1 fail.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { createRequire } from "node:module";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { parseDocuments, render } from "./kustomize_render.mjs";
import { typecheck } from "./typecheck.mjs";

const require = createRequire(import.meta.url);
const [repo, walrusd, walrusctl] = process.argv.slice(2);
const root = path.join(repo, "deploy", "kubernetes");
const HEALTH_SERVICE = "walrus.v1.WAL";
const failures = [];
const check = (ok, message) => {
  if (!ok) failures.push(message);
  return ok;
};

// Flags walrusd documents.
const help = execFileSync(walrusd, ["--help"], { encoding: "utf8" });
const documented = new Set([...help.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]));

function modulePathFor(obj) {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : [null, obj.apiVersion];
  return group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/${group}/${version}/${obj.kind}`
    : `kubernetes-models/${group ? group + "/" : ""}${version}/${obj.kind}`;
}

function modelFor(obj) {
  try {
    return require(modulePathFor(obj))[obj.kind];
  } catch {
    return null;
  }
}

// Unknown fields: the OpenAPI schemas allow them, the API server (strict
// field validation) does not; tests/deploy/typecheck.mjs catches them.
function checkUnknownFields(rendered) {
  const entries = [];
  for (const { name, objects } of rendered) {
    for (const obj of objects) {
      if (modelFor(obj)) {
        entries.push({ label: `${name}: ${key(obj)}`, module: modulePathFor(obj), type: `I${obj.kind}`, value: obj });
      }
    }
  }
  failures.push(...typecheck(entries));
}

function kubectlRender(dir) {
  const which = spawnSync("sh", ["-c", "command -v kubectl"], { encoding: "utf8" });
  if (which.status !== 0) return null;
  const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60000 });
  if (r.status !== 0) {
    failures.push(`kubectl kustomize ${dir} failed: ${r.stderr}`);
    return [];
  }
  return parseDocuments(r.stdout, `kubectl kustomize ${dir}`);
}

const key = (o) => `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;

function flagValues(args) {
  const values = {};
  for (const a of args ?? []) {
    const m = a.match(/^--([a-z0-9-]+)(?:=(.*))?$/);
    if (!check(m, `walrusd argument '${a}' is not --flag=value`)) continue;
    (values[m[1]] ??= []).push(m[2] ?? "true");
  }
  return values;
}

const selects = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v) &&
  Object.keys(selector ?? {}).length > 0;

function checkContainerSecurity(c, where) {
  const sc = c.securityContext ?? {};
  check(sc.readOnlyRootFilesystem === true, `${where}: readOnlyRootFilesystem is not true`);
  check(sc.allowPrivilegeEscalation === false, `${where}: allowPrivilegeEscalation is not false`);
  check(sc.capabilities?.drop?.includes("ALL"), `${where}: capabilities.drop lacks ALL`);
  check(!sc.capabilities?.add?.length, `${where}: adds capabilities`);
  check(sc.privileged !== true, `${where}: privileged`);
  check(c.resources?.requests?.cpu && c.resources?.requests?.memory,
    `${where}: no cpu/memory requests`);
  check(c.resources?.limits?.memory, `${where}: no memory limit`);
}

function checkStatefulSet(sts, all, name) {
  const where = `${name}: StatefulSet ${sts.metadata.name}`;
  const pod = sts.spec.template.spec;
  const labels = sts.spec.template.metadata?.labels;
  check(selects(sts.spec.selector?.matchLabels, labels), `${where}: selector does not match the pod labels`);
  const psc = pod.securityContext ?? {};
  check(psc.runAsNonRoot === true, `${where}: pod runAsNonRoot is not true`);
  check(Number.isInteger(psc.runAsUser) && psc.runAsUser > 0, `${where}: no non-root runAsUser`);
  check(Number.isInteger(psc.fsGroup), `${where}: no fsGroup`);
  check(psc.seccompProfile?.type === "RuntimeDefault", `${where}: seccomp is not RuntimeDefault`);

  const sidecars = (pod.initContainers ?? []).filter((c) => c.name === "walrusd");
  if (!check(sidecars.length === 1, `${where}: no initContainers entry named walrusd`)) return;
  const w = sidecars[0];
  check(w.restartPolicy === "Always", `${where}: walrusd is not a native sidecar (restartPolicy: Always)`);
  check((pod.containers ?? []).length >= 1, `${where}: no Raft node container`);
  // walrusd allocates with jemalloc (cmake/jemalloc_conf.cc sets its huge
  // pages): glibc malloc tunables would do nothing but mislead.
  check(!(w.env ?? []).some((e) => e.name === "GLIBC_TUNABLES"),
    `${where}: walrusd sets GLIBC_TUNABLES, but it allocates with jemalloc`);
  const flags = flagValues(w.args);
  for (const f of Object.keys(flags)) {
    check(documented.has(f), `${where}: --${f} is not a walrusd flag (not in walrusd --help)`);
  }

  // Probes: gRPC health on the health listener, for the WAL service.
  const healthPort = Number((flags["health-listen"]?.[0] ?? "").split(":").pop());
  check(healthPort > 0, `${where}: walrusd has no --health-listen HOST:PORT`);
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const p = w[probe];
    if (!check(p?.grpc, `${where}: walrusd ${probe} is not of type grpc`)) continue;
    check(p.grpc.port === healthPort, `${where}: ${probe} port ${p.grpc.port} is not the health port ${healthPort}`);
    check(p.grpc.service === HEALTH_SERVICE, `${where}: ${probe} service is not ${HEALTH_SERVICE}`);
  }
  const startup = w.startupProbe ?? {};
  check((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3) >= 600,
    `${where}: the startup probe gives recovery less than 10 min`);
  const ports = new Map((w.ports ?? []).map((p) => [p.name, p.containerPort]));
  check(ports.get("health") === healthPort, `${where}: no container port 'health' = ${healthPort}`);
  const metricsPort = Number((flags["metrics-listen"]?.[0] ?? "").split(":").pop());
  check(metricsPort > 0 && ports.get("metrics") === metricsPort,
    `${where}: container port 'metrics' does not match --metrics-listen`);

  // WAL on the claim template; gRPC socket on an emptyDir both containers mount.
  const mountOf = (c, dir) => (c.volumeMounts ?? []).find((m) => m.mountPath === dir)?.name;
  const dataDir = flags["data-dir"]?.[0];
  const walVolume = dataDir && mountOf(w, dataDir);
  check(walVolume && sts.spec.volumeClaimTemplates?.some((t) => t.metadata.name === walVolume),
    `${where}: --data-dir ${dataDir} is not on a volumeClaimTemplate`);
  check(sts.spec.persistentVolumeClaimRetentionPolicy?.whenDeleted !== "Delete",
    `${where}: deleting the StatefulSet would delete the WAL`);
  const unix = (flags.listen ?? []).find((l) => l.startsWith("unix:"));
  if (check(unix, `${where}: walrusd does not listen on a Unix socket`)) {
    const dir = path.dirname(unix.slice("unix:".length));
    const vol = mountOf(w, dir);
    check(pod.volumes?.find((v) => v.name === vol)?.emptyDir,
      `${where}: socket directory ${dir} is not an emptyDir`);
    for (const c of pod.containers) {
      check(mountOf(c, dir) === vol, `${where}: container ${c.name} does not mount the socket directory`);
    }
  }
  check(pod.terminationGracePeriodSeconds >= 30,
    `${where}: terminationGracePeriodSeconds < 30 leaves walrusd no time to drain`);
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    checkContainerSecurity(c, `${where}: container ${c.name}`);
  }

  // Services and monitors must reach the pods and the named ports.
  for (const o of all) {
    if (o.kind === "Service") {
      if (!selects(o.spec.selector, labels)) continue;
      for (const sp of o.spec.ports ?? []) {
        const named = [...(pod.initContainers ?? []), ...pod.containers].some((c) =>
          (c.ports ?? []).some((p) => p.name === sp.targetPort || p.containerPort === sp.targetPort));
        check(named, `${name}: Service ${o.metadata.name} targets missing port ${sp.targetPort}`);
      }
    }
    if (o.kind === "PodMonitor") {
      check(selects(o.spec.selector?.matchLabels, labels), `${name}: PodMonitor selects no pod`);
      for (const ep of o.spec.podMetricsEndpoints ?? []) {
        check(ports.has(ep.port), `${name}: PodMonitor port ${ep.port} is not a walrusd port`);
      }
    }
  }
  check(all.some((o) => o.kind === "Service" && o.spec.ports?.some((p) => p.targetPort === "metrics")
    && selects(o.spec.selector, labels)), `${name}: no Service exposes the metrics port`);
}

const targets = [path.join(root, "base")];
for (const d of fs.readdirSync(path.join(root, "overlays")).sort()) targets.push(path.join(root, "overlays", d));

// The overlay docs/operations.md tells readers to write must render too.
const ops = fs.readFileSync(path.join(repo, "docs", "operations.md"), "utf8");
const example = ops.match(/```yaml\n# my-raft\/kustomization\.yaml\n([\s\S]*?)```/);
if (check(example, "docs/operations.md has no my-raft/kustomization.yaml example")) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "walrus-kustomize-"));
  process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.symlinkSync(path.resolve(repo, "deploy"), path.join(tmp, "deploy"));
  fs.mkdirSync(path.join(tmp, "my-raft"));
  fs.writeFileSync(path.join(tmp, "my-raft", "kustomization.yaml"), example[1]);
  targets.push(path.join(tmp, "my-raft"));
}
const rendered = [];
for (const dir of targets) {
  const name = dir.startsWith(root) ? path.relative(root, dir) : "docs/operations.md example";
  let objects;
  try {
    objects = render(dir);
  } catch (e) {
    failures.push(`${name}: ${e.message}`);
    continue;
  }
  const real = kubectlRender(dir);
  if (real === null) {
    console.log(`note: kubectl not installed; ${name} rendered by tests/deploy/kustomize_render.mjs only`);
  } else {
    const mine = new Map(objects.map((o) => [key(o), o]));
    const theirs = new Map(real.map((o) => [key(o), o]));
    check(isDeepStrictEqual([...mine.keys()].sort(), [...theirs.keys()].sort()),
      `${name}: kubectl kustomize renders other objects: ${[...theirs.keys()]} vs ${[...mine.keys()]}`);
    for (const [k, o] of theirs) {
      if (mine.has(k)) check(isDeepStrictEqual(mine.get(k), o), `${name}: ${k} differs from kubectl kustomize`);
    }
    objects = real;
  }
  check(objects.length > 0, `${name}: renders nothing`);
  for (const obj of objects) {
    const Model = modelFor(obj);
    if (!check(Model, `${name}: no schema for ${obj.apiVersion} ${obj.kind}`)) continue;
    try {
      new Model(obj).validate();
    } catch (e) {
      failures.push(`${name}: ${key(obj)} violates the API schema: ${e.message}`);
    }
    check(obj.metadata?.labels?.["app.kubernetes.io/part-of"] === "walrus",
      `${name}: ${key(obj)} lacks label app.kubernetes.io/part-of=walrus`);
  }
  const sets = objects.filter((o) => o.kind === "StatefulSet");
  if (check(sets.length === 1, `${name}: want one StatefulSet, found ${sets.length}`)) {
    checkStatefulSet(sets[0], objects, name);
  }
  if (name.endsWith("podmonitor")) {
    check(objects.some((o) => o.kind === "PodMonitor"), `${name}: no PodMonitor`);
  }
  rendered.push({ name, objects });
  console.log(`${name}: ${objects.length} objects rendered and validated`);
}
checkUnknownFields(rendered);

// The sidecar's command line must really start walrusd.
if (!failures.length) {
  const smoke = path.join(path.dirname(new URL(import.meta.url).pathname), "smoke_run.py");
  const seen = new Set();
  for (const { name, objects } of rendered) {
    const sts = objects.find((o) => o.kind === "StatefulSet");
    const args = sts.spec.template.spec.initContainers.find((c) => c.name === "walrusd").args;
    if (seen.has(args.join(" "))) continue;
    seen.add(args.join(" "));
    const missing = args.map((a) => a.match(/^--([a-z0-9-]+)/)?.[1]).filter((f) => !documented.has(f));
    if (missing.length) continue;  // reported as SKIP above
    if (args.some((a) => /^--[a-z-]+-file=/.test(a))) {
      console.log(`note: ${name}: walrusd not started (its arguments name files of a Secret)`);
      continue;
    }
    const r = spawnSync("python3", [smoke, walrusd, walrusctl, ...args], { encoding: "utf8", timeout: 90000 });
    if (check(r.status === 0, `${name}: walrusd with the sidecar's arguments: ${r.stdout}${r.stderr}`)) {
      console.log(`${name}: walrusd started with the sidecar's arguments`);
    }
  }
}

for (const f of failures) console.log("FAIL:", f);
if (failures.length) process.exit(1);
console.log("kubernetes manifests: all checks passed");

// A renderer for exactly the kustomize features deploy/kubernetes uses:
// `resources` (files and directories), `namespace`, `images` (newName/newTag) and
// `patches` holding JSON 6902 operations on a target. Anything else in a
// kustomization is an error, never silently ignored. The test compares its
// output with `kubectl kustomize` wherever kubectl is installed, so this
// stays a stand-in for machines without it, not a second opinion.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const KNOWN_FIELDS = new Set(["apiVersion", "kind", "namespace", "resources", "images", "patches"]);
// Kinds without a namespace, among those the manifests could hold.
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"]);

// YAML 1.1, as Kubernetes and kustomize (go-yaml) read manifests.
export function parseDocuments(text, where) {
  return YAML.parseAllDocuments(text, { version: "1.1" })
    .map((doc) => {
      if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0].message}`);
      return doc.toJS();
    })
    .filter((obj) => obj !== null && obj !== undefined);
}

function readKustomization(dir) {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) {
      const [k] = parseDocuments(fs.readFileSync(file, "utf8"), file);
      for (const field of Object.keys(k)) {
        if (!KNOWN_FIELDS.has(field)) {
          throw new Error(`${file}: field '${field}' is not supported by this renderer`);
        }
      }
      return k;
    }
  }
  throw new Error(`${dir}: no kustomization.yaml`);
}

function podSpecs(obj) {
  const spec = obj?.spec?.template?.spec;
  return spec ? [spec] : [];
}

function applyImages(objects, images) {
  for (const image of images ?? []) {
    for (const obj of objects) {
      for (const spec of podSpecs(obj)) {
        for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
          const [name, tag] = c.image.split(":");
          if (name !== image.name) continue;
          c.image = `${image.newName ?? name}:${image.newTag ?? tag ?? "latest"}`;
        }
      }
    }
  }
}

// RFC 6901 pointer into `root`: the parent container and the last key.
function resolve(root, pointer) {
  const parts = pointer
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let node = root;
  for (const p of parts.slice(0, -1)) {
    node = Array.isArray(node) ? node[Number(p)] : node?.[p];
    if (node === undefined) throw new Error(`patch path ${pointer} does not exist`);
  }
  return [node, parts[parts.length - 1]];
}

function applyJson6902(obj, ops, where) {
  for (const op of ops) {
    const [parent, key] = resolve(obj, op.path);
    if (op.op === "add") {
      if (Array.isArray(parent)) {
        parent.splice(key === "-" ? parent.length : Number(key), 0, structuredClone(op.value));
      } else {
        parent[key] = structuredClone(op.value);
      }
    } else if (op.op === "replace") {
      if (!(key in parent)) throw new Error(`${where}: replace of missing ${op.path}`);
      parent[key] = structuredClone(op.value);
    } else if (op.op === "remove") {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
    } else {
      throw new Error(`${where}: JSON 6902 op '${op.op}' is not supported by this renderer`);
    }
  }
}

function matches(obj, target) {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : ["", obj.apiVersion];
  return (
    (target.kind === undefined || target.kind === obj.kind) &&
    (target.name === undefined || target.name === obj.metadata?.name) &&
    (target.group === undefined || target.group === group) &&
    (target.version === undefined || target.version === version)
  );
}

function applyPatches(objects, patches, dir) {
  for (const p of patches ?? []) {
    const where = p.path ? path.join(dir, p.path) : `${dir} (inline patch)`;
    const text = p.path ? fs.readFileSync(path.join(dir, p.path), "utf8") : p.patch;
    const [ops] = parseDocuments(text, where);
    if (!Array.isArray(ops)) {
      throw new Error(`${where}: strategic-merge patches are not supported by this renderer`);
    }
    const hits = objects.filter((o) => matches(o, p.target ?? {}));
    if (hits.length === 0) throw new Error(`${where}: the patch target matches nothing`);
    for (const obj of hits) applyJson6902(obj, ops, where);
  }
}

// Every object `kustomize build dir` would print (order not significant).
export function render(dir) {
  const k = readKustomization(dir);
  const objects = [];
  for (const r of k.resources ?? []) {
    const full = path.join(dir, r);
    if (fs.statSync(full).isDirectory()) objects.push(...render(full));
    else objects.push(...parseDocuments(fs.readFileSync(full, "utf8"), full));
  }
  applyPatches(objects, k.patches, dir);
  if (k.namespace) {
    for (const obj of objects) {
      if (!CLUSTER_SCOPED.has(obj.kind)) (obj.metadata ??= {}).namespace = k.namespace;
    }
  }
  applyImages(objects, k.images);
  return objects;
}

#!/usr/bin/env node
// Keeps deploy/ in step with the server (run by scripts/lint.sh from the repository root):
//   1. deploy/sluiced.sample.json holds exactly the keys of server/common/config.c's key
//      table, in the same order;
//   2. deploy/CONFIG.md has one row per key under "## Keys", naming the same environment
//      variable as config.c (or "—"), and no row for a key config.c does not know;
//   3. deploy/k8s/sluiced.json uses only known keys;
//   4. the StatefulSet's terminationGracePeriodSeconds covers drain_grace_ms plus a 5 s
//      margin, and "workers" equals the container's CPU limit.
// Prints every problem; exits 1 when there is any.
"use strict";

const fs = require("fs");
const path = require("path");
const YAML = require("yaml");

const root = process.argv[2] || process.cwd();
const read = (p) => fs.readFileSync(path.join(root, p), "utf8");
const problems = [];
const problem = (msg) => problems.push(msg);

// {"store.cache_ttl_s", T_U64, F(cache_ttl_s), 0, BIG, NULL},
function configKeys() {
  const src = read("server/common/config.c");
  const re = /^\s*\{"([a-z0-9_.]+)",\s*T_[A-Z0-9]+,\s*F\(\w+\),[^,]+,[^,]+,\s*(NULL|"(\w+)")\s*\},/gm;
  const keys = [];
  for (let m; (m = re.exec(src)) !== null;) keys.push({ key: m[1], env: m[3] || null });
  if (keys.length === 0) throw new Error("server/common/config.c: key table not found");
  return keys;
}

function flatten(obj, prefix = "", out = []) {
  for (const [k, v] of Object.entries(obj)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) flatten(v, p, out);
    else out.push(p);
  }
  return out;
}

function checkSample(keys) {
  const sample = flatten(JSON.parse(read("deploy/sluiced.sample.json")));
  const known = keys.map((k) => k.key);
  for (const k of known)
    if (!sample.includes(k)) problem(`deploy/sluiced.sample.json: key ${k} is missing`);
  for (const k of sample)
    if (!known.includes(k)) problem(`deploy/sluiced.sample.json: unknown key ${k}`);
  if (problems.length === 0 && sample.join() !== known.join())
    problem("deploy/sluiced.sample.json: keys are not in config.c's order");
}

function checkDoc(keys) {
  const doc = read("deploy/CONFIG.md");
  const start = doc.indexOf("\n## Keys");
  const end = doc.indexOf("\n## ", start + 1);
  if (start < 0) return problem('deploy/CONFIG.md: no "## Keys" section');
  const section = doc.slice(start, end < 0 ? undefined : end);
  const rows = new Map();
  for (const line of section.split("\n")) {
    // | `key` | type | default | environment | meaning |   ("\|" is a literal bar)
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const m = cells.length >= 6 ? /^`([^`]+)`$/.exec(cells[1]) : null;
    if (!m) continue;
    if (rows.has(m[1])) problem(`deploy/CONFIG.md: key ${m[1]} has two rows`);
    rows.set(m[1], cells[4]);
  }
  for (const { key, env } of keys) {
    if (!rows.has(key)) {
      problem(`deploy/CONFIG.md: no row for key ${key}`);
      continue;
    }
    const want = env ? `\`${env}\`` : "—";
    if (rows.get(key) !== want)
      problem(`deploy/CONFIG.md: key ${key}: environment column is "${rows.get(key)}", ` +
              `config.c says ${want}`);
  }
  for (const key of rows.keys())
    if (!keys.some((k) => k.key === key)) problem(`deploy/CONFIG.md: row for unknown key ${key}`);
}

function checkKubernetes(keys) {
  const cfg = JSON.parse(read("deploy/k8s/sluiced.json"));
  for (const k of flatten(cfg))
    if (!keys.some((x) => x.key === k)) problem(`deploy/k8s/sluiced.json: unknown key ${k}`);
  const docs = YAML.parseAllDocuments(read("deploy/k8s/statefulset.yaml")).map((d) => d.toJS());
  const sts = docs.find((d) => d && d.kind === "StatefulSet");
  if (!sts) return problem("deploy/k8s/statefulset.yaml: no StatefulSet");
  const pod = sts.spec.template.spec;
  const drainMs = cfg.drain_grace_ms;
  if (typeof drainMs !== "number")
    problem("deploy/k8s/sluiced.json: set drain_grace_ms explicitly (the StatefulSet's grace follows it)");
  else if (!(pod.terminationGracePeriodSeconds * 1000 >= drainMs + 5000))
    problem(`deploy/k8s: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} s ` +
            `must be at least drain_grace_ms (${drainMs} ms) + 5 s`);
  const c = pod.containers.find((x) => x.name === "sluiced");
  const cpu = c && c.resources && c.resources.limits && c.resources.limits.cpu;
  if (cpu !== undefined && cfg.workers !== undefined) {
    const cores = /m$/.test(String(cpu)) ? parseInt(cpu, 10) / 1000 : Number(cpu);
    if (cfg.workers !== Math.max(1, Math.ceil(cores)))
      problem(`deploy/k8s: workers (${cfg.workers}) should equal the CPU limit (${cpu})`);
  }
}

try {
  const keys = configKeys();
  checkSample(keys);
  checkDoc(keys);
  checkKubernetes(keys);
  for (const p of problems) console.log(`consistency: ${p}`);
  if (!problems.length) console.log(`consistency: ${keys.length} config keys documented; k8s config agrees`);
  process.exitCode = problems.length ? 1 : 0;
} catch (e) {
  console.error(`consistency: ${e.message}`);
  process.exitCode = 2;
}

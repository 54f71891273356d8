#!/usr/bin/env node
// Validates Kubernetes objects offline against the API's JSON schemas, as compiled into
// the kubernetes-models package (ajv validators, one class per apiVersion/kind).
//
//   kubectl kustomize deploy/k8s | node deploy/tools/validate.js [-]
//   node deploy/tools/validate.js rendered.yaml ...
//
// Every document must be an object with apiVersion, kind and metadata.name, of a kind that
// kubernetes-models knows (anything else, CRDs included, is an error: extend this file
// when deploy/ starts shipping one). Prints one line per object and per problem; exits 1
// when any object is invalid, 2 on a usage or parse error.
//
// Limitation: the upstream schemas do not forbid unknown fields, so a misspelt optional
// field (readinesProbe) passes here; the API server's strict field validation catches it.
"use strict";

const fs = require("fs");
const YAML = require("yaml");

const GROUP_VERSION = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;

function readInputs(args) {
  const names = args.length ? args : ["-"];
  return names.map((n) => ({ name: n === "-" ? "<stdin>" : n,
                             text: fs.readFileSync(n === "-" ? 0 : n, "utf8") }));
}

// The model class for apiVersion/kind, or an error message.
function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !GROUP_VERSION.test(apiVersion))
    return { error: `bad apiVersion ${JSON.stringify(apiVersion)}` };
  if (typeof kind !== "string" || !KIND.test(kind))
    return { error: `bad kind ${JSON.stringify(kind)}` };
  const path = `kubernetes-models/${apiVersion}/${kind}`;
  let mod;
  try {
    mod = require(path);
  } catch (e) {
    if (e && (e.code === "MODULE_NOT_FOUND" || e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED"))
      return { error: `unknown kind ${apiVersion}/${kind} (not in kubernetes-models)` };
    throw e;
  }
  const cls = mod[kind];
  if (typeof cls !== "function" || typeof cls.is !== "function")
    return { error: `unknown kind ${apiVersion}/${kind} (not a top-level object)` };
  return { cls };
}

function describeErrors(err) {
  const list = Array.isArray(err && err.errors) ? err.errors : null;
  if (!list || list.length === 0) return [String(err && err.message ? err.message : err)];
  return list.map((e) => {
    const params = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "";
    return `${e.instancePath || "/"}: ${e.message}${params}`;
  });
}

function validateObject(obj) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    return { label: "<document>", problems: ["not an object"] };
  const label = `${obj.apiVersion}/${obj.kind} ${obj.metadata && obj.metadata.name}`;
  if (!obj.metadata || typeof obj.metadata.name !== "string" || obj.metadata.name === "")
    return { label, problems: ["metadata.name is missing"] };
  const found = modelClass(obj.apiVersion, obj.kind);
  if (found.error) return { label, problems: [found.error] };
  try {
    new found.cls(obj).validate();
  } catch (e) {
    return { label, problems: describeErrors(e) };
  }
  return { label, problems: [] };
}

function main() {
  let inputs;
  try {
    inputs = readInputs(process.argv.slice(2));
  } catch (e) {
    console.error(`validate: ${e.message}`);
    return 2;
  }
  let bad = 0;
  let total = 0;
  for (const { name, text } of inputs) {
    const docs = YAML.parseAllDocuments(text);
    for (const doc of docs) {
      if (doc.errors.length) {
        console.error(`validate: ${name}: ${doc.errors[0].message}`);
        return 2;
      }
      const obj = doc.toJS();
      if (obj === null || obj === undefined) continue; // empty document
      total++;
      const { label, problems } = validateObject(obj);
      if (problems.length === 0) {
        console.log(`ok      ${label}`);
        continue;
      }
      bad++;
      for (const p of problems) console.log(`INVALID ${label}: ${p}`);
    }
  }
  if (total === 0) {
    console.error("validate: no objects in the input");
    return 2;
  }
  console.log(`validate: ${total - bad}/${total} objects valid`);
  return bad ? 1 : 0;
}

process.exitCode = main();

// Validates rendered chart output against the Kubernetes API schemas, strictly, and checks what
// the schemas cannot see (selectors that match, ports and volumes that exist, a grace period that
// covers the drain).
//
//   node validate.mjs manifests FILE.yaml...     every document of every file
//   node validate.mjs extract OUT_DIR FILE.yaml  writes each relay config (NAME.config.yaml),
//                                                PrometheusRule's rules (NAME.rules.yaml) and the
//                                                containers' WSRELAY_* variables (relay.env, a
//                                                Secret's value as a stand-in) to OUT_DIR
//   node validate.mjs config-keys VALUES.yaml SAMPLE.yaml
//                                                values' config: block has the sample's keys
//   node validate.mjs expect-config DIR KEY=VALUE...
//                                                every DIR/*.config.yaml (from extract) has each
//                                                dotted KEY equal to VALUE (YAML: 2, true, "2", [])
//   node validate.mjs values-schema SCHEMA.json WSRELAY [--write]
//                                                the chart schema's config and hook parts are
//                                                what `WSRELAY --print-config-schema` declares
//                                                (--write: make them so)
//   node validate.mjs schema-covers VALUES.yaml SCHEMA.json
//                                                every key of the values is declared
//
// Two checks per object: kubernetes-models' validator (types, formats, required fields; it lets
// unknown fields through), then the TypeScript compiler on the object as a typed literal, whose
// excess-property check rejects every field the API does not have, at any depth.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));

// apiVersion/kind -> module exporting the model class <kind> and its interface I<kind>.
const MODELS = {
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Secret": "kubernetes-models/v1/Secret",
  "v1/Service": "kubernetes-models/v1/Service",
  "v1/ServiceAccount": "kubernetes-models/v1/ServiceAccount",
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "autoscaling/v2/HorizontalPodAutoscaler": "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
  "policy/v1/PodDisruptionBudget": "kubernetes-models/policy/v1/PodDisruptionBudget",
  "networking.k8s.io/v1/Ingress": "kubernetes-models/networking.k8s.io/v1/Ingress",
  "networking.k8s.io/v1/NetworkPolicy": "kubernetes-models/networking.k8s.io/v1/NetworkPolicy",
  "gateway.networking.k8s.io/v1/HTTPRoute": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute",
  "monitoring.coreos.com/v1/ServiceMonitor":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  "monitoring.coreos.com/v1/PodMonitor":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  "monitoring.coreos.com/v1/PrometheusRule":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
};

function readDocs(file) {
  const docs = [];
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const obj = doc.toJS();
    if (obj !== null) docs.push(obj);
  }
  return docs;
}

function subset(small, big) {
  return Object.entries(small ?? {}).every(([k, v]) => big?.[k] === v);
}

function podSpecOf(obj) {
  return obj.kind === "Deployment" ? obj.spec?.template?.spec : undefined;
}

// Checks across objects and the relay-specific rules.
function crossChecks(objs, fail) {
  const byKind = (k) => objs.filter((o) => o.obj.kind === k);
  const deployments = byKind("Deployment");
  const configMaps = byKind("ConfigMap");
  const namesSeen = new Set();
  for (const { obj, where } of objs) {
    const key = `${obj.kind}/${obj.metadata?.namespace ?? ""}/${obj.metadata?.name}`;
    if (namesSeen.has(key)) fail(where, `duplicate ${key}`);
    namesSeen.add(key);
    if (["Service", "Deployment"].includes(obj.kind) && obj.metadata.name.length > 63) {
      fail(where, `name longer than 63 characters: ${obj.metadata.name}`);
    }
    // Every label value the API server checks: the object's, its pod template's, its selectors'.
    const labelSets = [
      ["", obj.metadata?.labels],
      ["pod template ", obj.spec?.template?.metadata?.labels],
      ["selector ", obj.spec?.selector?.matchLabels],
    ];
    for (const [what, labels] of labelSets) {
      for (const [k, v] of Object.entries(labels ?? {})) {
        if (typeof v !== "string" || v.length > 63 || !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v)) {
          fail(where, `${what}label ${k} has an invalid value ${JSON.stringify(v)}`);
        }
      }
    }
  }
  for (const { obj, where } of deployments) {
    const tmpl = obj.spec.template;
    if (!subset(obj.spec.selector.matchLabels, tmpl.metadata?.labels)) {
      fail(where, "spec.selector.matchLabels does not match the pod template's labels");
    }
    const pod = tmpl.spec;
    const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
    for (const c of pod.containers) {
      const ports = new Set((c.ports ?? []).map((p) => p.name));
      const mounts = c.volumeMounts ?? [];
      for (const m of mounts) {
        if (!volumes.has(m.name)) fail(where, `container ${c.name} mounts unknown volume ${m.name}`);
        // The kubelet cannot create a mount point inside a read-only ConfigMap or Secret volume.
        for (const outer of mounts) {
          if (outer !== m && m.mountPath.startsWith(`${outer.mountPath.replace(/\/$/, "")}/`)) {
            fail(where, `container ${c.name} mounts ${m.mountPath} inside ${outer.mountPath}`);
          }
        }
      }
      for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        const port = c[probe]?.httpGet?.port;
        if (typeof port === "string" && !ports.has(port)) {
          fail(where, `container ${c.name} ${probe} uses unknown port ${port}`);
        }
      }
      if (c.name !== "wsrelay") continue;
      const configVolume = (pod.volumes ?? []).find((v) => v.name === "wsrelay-config");
      const configMap = configMaps.find((o) => o.obj.metadata.name === configVolume?.configMap?.name);
      if (!configMap) {
        fail(where, "the wsrelay-config volume does not name a rendered ConfigMap");
        continue;
      }
      const config = YAML.parse(configMap.obj.data["wsrelay.yaml"]) ?? {};
      const port = config.listen?.port ?? 8080;
      if (!(c.ports ?? []).some((p) => p.containerPort === port)) {
        fail(where, `the relay container does not expose listen.port ${port}`);
      }
      const windowMs = config.drain?.window_ms ?? 10000;
      const pre = c.lifecycle?.preStop;
      const sleep = pre?.sleep?.seconds ?? Number(pre?.exec?.command?.[1] ?? NaN);
      if (!Number.isFinite(sleep)) fail(where, "the relay container has no preStop sleep");
      // The drain, the relay's 5 s cut-off, and with the hook the last disconnect events.
      const hookS = config.hook?.url ? Math.ceil((config.hook.timeout_ms ?? 5000) / 1000) + 1 : 0;
      const needed = sleep + Math.ceil(windowMs / 1000) + 5 + hookS;
      if (!(pod.terminationGracePeriodSeconds >= needed)) {
        fail(where, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} < preStop ${sleep} s + drain ${windowMs} ms + 5 s + hook ${hookS} s`);
      }
      const sc = c.securityContext ?? {};
      if (!(sc.readOnlyRootFilesystem && sc.runAsNonRoot && sc.allowPrivilegeEscalation === false &&
            (sc.capabilities?.drop ?? []).includes("ALL"))) {
        fail(where, "the relay container is not non-root, read-only, without privilege escalation and capabilities");
      }
    }
  }
  const podLabels = deployments.map((d) => ({ d, labels: d.obj.spec.template.metadata?.labels ?? {} }));
  for (const { obj, where } of byKind("Service")) {
    const matched = podLabels.filter((p) => subset(obj.spec.selector, p.labels));
    if (matched.length !== 1) {
      fail(where, `Service selector matches ${matched.length} Deployments' pods, not exactly 1`);
      continue;
    }
    const containers = matched[0].d.obj.spec.template.spec.containers;
    for (const p of obj.spec.ports) {
      if (typeof p.targetPort === "string" &&
          !containers.some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort))) {
        fail(where, `Service port ${p.name} targets unknown container port ${p.targetPort}`);
      }
    }
  }
  for (const kind of ["PodDisruptionBudget", "HorizontalPodAutoscaler"]) {
    for (const { obj, where } of byKind(kind)) {
      const ok = kind === "HorizontalPodAutoscaler"
        ? deployments.some((d) => d.obj.metadata.name === obj.spec.scaleTargetRef.name)
        : podLabels.filter((p) => subset(obj.spec.selector.matchLabels, p.labels)).length === 1;
      if (!ok) fail(where, `${kind} does not select exactly one rendered Deployment`);
    }
  }
  for (const { obj, where } of byKind("ServiceMonitor")) {
    const services = byKind("Service").filter((s) => subset(obj.spec.selector.matchLabels, s.obj.metadata.labels));
    if (services.length !== 1) fail(where, `ServiceMonitor selects ${services.length} rendered Services, not 1`);
    for (const e of obj.spec.endpoints) {
      if (services.length === 1 && !services[0].obj.spec.ports.some((p) => p.name === e.port)) {
        fail(where, `ServiceMonitor endpoint port ${e.port} is not a port of the Service`);
      }
    }
  }
  // Exposure: the Ingress and HTTPRoute reach a rendered Service port, on the relay's WebSocket
  // path and nothing else.
  const relayConfigOf = (pod) => {
    const volume = (pod.volumes ?? []).find((v) => v.name === "wsrelay-config");
    const cm = configMaps.find((o) => o.obj.metadata.name === volume?.configMap?.name);
    return cm ? YAML.parse(cm.obj.data["wsrelay.yaml"]) ?? {} : undefined;
  };
  const serviceTarget = (where, what, name, portOk) => {
    const service = byKind("Service").find((s) => s.obj.metadata.name === name);
    if (!service) return fail(where, `${what} names Service ${name}, which is not rendered`);
    if (!service.obj.spec.ports.some(portOk)) fail(where, `${what} names a port Service ${name} does not have`);
    const pods = podLabels.filter((p) => subset(service.obj.spec.selector, p.labels));
    const paths = pods.map((p) => relayConfigOf(p.d.obj.spec.template.spec)?.websocket?.path ?? "/ws");
    return paths[0];
  };
  for (const { obj, where } of byKind("Ingress")) {
    for (const rule of obj.spec.rules ?? []) {
      for (const p of rule.http?.paths ?? []) {
        const b = p.backend.service;
        const wsPath = serviceTarget(where, "Ingress backend", b.name,
          (sp) => (b.port.name !== undefined ? sp.name === b.port.name : sp.port === b.port.number));
        if (wsPath !== undefined && (p.path !== wsPath || p.pathType !== "Exact")) {
          fail(where, `Ingress path ${p.pathType} ${p.path} is not the relay's websocket.path ${wsPath} (Exact)`);
        }
      }
    }
  }
  for (const { obj, where } of byKind("HTTPRoute")) {
    for (const rule of obj.spec.rules ?? []) {
      for (const b of rule.backendRefs ?? []) {
        const wsPath = serviceTarget(where, "HTTPRoute backendRef", b.name, (sp) => sp.port === b.port);
        for (const m of rule.matches ?? []) {
          if (wsPath !== undefined && (m.path?.value !== wsPath || m.path?.type !== "Exact")) {
            fail(where, `HTTPRoute match ${m.path?.type} ${m.path?.value} is not the relay's websocket.path ${wsPath} (Exact)`);
          }
        }
      }
    }
  }
  // A NetworkPolicy selects exactly one rendered Deployment's pods, and opens only ports they
  // listen on: container ports, and for the relay listen.port and listen.internal_port.
  for (const { obj, where } of byKind("NetworkPolicy")) {
    const matched = podLabels.filter((p) => subset(obj.spec.podSelector.matchLabels, p.labels));
    if (matched.length !== 1) {
      fail(where, `NetworkPolicy selects ${matched.length} rendered Deployments' pods, not 1`);
      continue;
    }
    const pod = matched[0].d.obj.spec.template.spec;
    const listening = new Set();
    for (const c of pod.containers) {
      for (const cp of c.ports ?? []) listening.add(cp.containerPort).add(cp.name);
    }
    const config = relayConfigOf(pod);
    if (config) {
      listening.add(config.listen?.port ?? 8080);
      if (config.listen?.internal_port) listening.add(config.listen.internal_port);
    }
    for (const rule of obj.spec.ingress ?? []) {
      for (const p of rule.ports ?? []) {
        if (!listening.has(p.port)) fail(where, `NetworkPolicy admits port ${p.port}, where the pods do not listen`);
      }
    }
  }
  for (const { obj, where } of byKind("PodMonitor")) {
    const pods = podLabels.filter((p) => subset(obj.spec.selector.matchLabels, p.labels));
    for (const p of pods) {
      for (const e of obj.spec.podMetricsEndpoints) {
        if (!p.d.obj.spec.template.spec.containers.some((c) => (c.ports ?? []).some((cp) => cp.name === e.port))) {
          fail(where, `PodMonitor port ${e.port} is not a container port of ${p.d.obj.metadata.name}`);
        }
      }
    }
  }
}

function typeCheck(objs, fail) {
  const imports = new Map();
  const lines = [];
  const lineOwner = [];
  objs.forEach(({ obj, model, where }, i) => {
    const iface = `I${obj.kind}`;
    const alias = `T${imports.size}`;
    if (!imports.has(model)) imports.set(model, { alias, iface });
    lines.push(`export const d${i}: ${imports.get(model).alias} = ${JSON.stringify(obj, null, 1)};`);
    lineOwner.push(where);
  });
  const header = [...imports].map(([m, { alias, iface }]) => `import type { ${iface} as ${alias} } from "${m}";`);
  let text = header.join("\n") + "\n";
  const starts = [];
  for (const l of lines) {
    starts.push(text.split("\n").length - 1);
    text += l + "\n";
  }
  // A virtual file beside node_modules: module resolution finds the packages, nothing is written.
  const fileName = path.join(here, "__rendered_manifests__.ts");
  const options = {
    strict: true, noEmit: true, skipLibCheck: true, types: [],
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === fileName ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
    if (!d.file || d.file.fileName !== fileName) {
      fail("typescript", message);
      continue;
    }
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    let owner = -1;
    starts.forEach((s, i) => { if (s <= line) owner = i; });
    if (owner < 0) {
      fail("typescript", message);
      continue;
    }
    // The JSON path to the offending field: the keys of the enclosing lines.
    const objLines = lines[owner].split("\n");
    const rel = line - starts[owner];
    const stack = [];
    for (let i = 0; i <= rel && i < objLines.length; i++) {
      const m = /^(\s*)"([^"]+)": [[{]$/.exec(objLines[i]);
      const indent = objLines[i].search(/\S/);
      while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
      if (m) stack.push({ indent, key: m[2] });
    }
    fail(lineOwner[owner], `${stack.map((s) => s.key).join(".")}: ${message}`);
  }
}

async function manifests(files) {
  const errors = [];
  const fail = (where, msg) => errors.push(`${where}: ${msg}`);
  const summary = [];
  for (const file of files) {
    const objs = [];
    readDocs(file).forEach((obj, i) => {
      const where = `${path.basename(file)}#${i + 1} ${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
      const model = MODELS[`${obj.apiVersion}/${obj.kind}`];
      if (!model) return fail(where, `no schema for ${obj.apiVersion} ${obj.kind}`);
      if (!obj.metadata?.name) return fail(where, "metadata.name is missing");
      objs.push({ obj, model, where });
    });
    for (const o of objs) {
      const mod = await import(o.model);
      try {
        new mod[o.obj.kind](o.obj).validate();
      } catch (e) {
        fail(o.where, e.message);
      }
    }
    typeCheck(objs, fail);
    crossChecks(objs, fail);
    const kinds = {};
    for (const o of objs) kinds[o.obj.kind] = (kinds[o.obj.kind] ?? 0) + 1;
    summary.push(`${path.basename(file)}: ${objs.length} objects (${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(", ")})`);
  }
  for (const s of summary) console.log(`  ${s}`);
  for (const e of errors) console.log(`  INVALID ${e}`);
  return errors.length === 0;
}

// The relay config files (for wsrelay --check-config) and the alert rules (for promtool).
// A stand-in for a WSRELAY_* variable whose value comes from a Secret, unknown when rendering: the
// key is set, as in the pod. A URL key needs a value of its syntax.
const SECRET_STAND_INS = { WSRELAY_BROKER_REDIS_URL: "redis://redis-from-secret.invalid:6379/0" };

function extract(outDir, file) {
  const env = [];
  for (const obj of readDocs(file)) {
    if (obj.kind === "Deployment") {
      for (const container of obj.spec?.template?.spec?.containers ?? []) {
        // The kubelet expands $(NAME) in a value with the variables listed before it ($$ is $).
        const seen = new Map();
        for (const e of container.env ?? []) {
          const value = e.valueFrom
            ? (SECRET_STAND_INS[e.name] ?? "set-from-a-secret")
            : (e.value ?? "").replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g,
              (m, name) => (name === undefined ? "$" : (seen.get(name) ?? m)));
          seen.set(e.name, value);
          if (e.name.startsWith("WSRELAY_")) env.push(`${e.name}=${value}`);
        }
      }
    }
    if (obj.kind === "ConfigMap" && obj.data?.["wsrelay.yaml"] !== undefined) {
      fs.writeFileSync(path.join(outDir, `${obj.metadata.name}.config.yaml`), obj.data["wsrelay.yaml"]);
    }
    if (obj.kind === "PrometheusRule") {
      fs.writeFileSync(path.join(outDir, `${obj.metadata.name}.rules.yaml`), YAML.stringify({ groups: obj.spec.groups }));
    }
  }
  fs.writeFileSync(path.join(outDir, "relay.env"), env.map((line) => `${line}\n`).join(""));
  return true;
}

function keyPaths(obj, prefix = "") {
  const out = [];
  for (const [k, v] of Object.entries(obj ?? {})) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) out.push(...keyPaths(v, `${prefix}${k}.`));
    else out.push(`${prefix}${k}`);
  }
  return out;
}

// Keys the chart sets elsewhere: secrets come from the Secret, hook.* from the hook: block.
const NOT_IN_CONFIG_BLOCK = [/^api\.key$/, /^auth\.jwt\.secret$/, /^hook\./];

function configKeys(valuesFile, sampleFile) {
  const values = new Set(keyPaths(YAML.parse(fs.readFileSync(valuesFile, "utf8")).config));
  const sample = keyPaths(YAML.parse(fs.readFileSync(sampleFile, "utf8")));
  const missing = sample.filter((k) => !values.has(k) && !NOT_IN_CONFIG_BLOCK.some((re) => re.test(k)));
  const extra = [...values].filter((k) => !sample.includes(k));
  for (const k of missing) console.log(`  ${valuesFile}: config.${k} is in ${sampleFile} but not in the values`);
  for (const k of extra) console.log(`  ${valuesFile}: config.${k} is not a key of ${sampleFile}`);
  return missing.length === 0 && extra.length === 0;
}

// The values file's "# expect-config: KEY=VALUE" lines (run.sh) against the extracted configs.
function expectConfig(dir, specs) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".config.yaml"));
  if (files.length === 0) {
    console.log(`  expect-config: no relay config was rendered`);
    return false;
  }
  let ok = true;
  for (const file of files) {
    const config = YAML.parse(fs.readFileSync(path.join(dir, file), "utf8")) ?? {};
    for (const spec of specs) {
      const eq = spec.indexOf("=");
      if (eq <= 0) {
        console.log(`  expect-config: "${spec}" is not KEY=VALUE`);
        ok = false;
        continue;
      }
      const key = spec.slice(0, eq).trim();
      const want = YAML.parse(spec.slice(eq + 1));
      const got = key.split(".").reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), config);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        console.log(`  expect-config: ${file}: ${key} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
        ok = false;
      }
    }
  }
  return ok;
}

// The chart's schema of `config` and `hook`, from the relay's schema of its configuration file:
// `config` without the keys NOT_IN_CONFIG_BLOCK names (a section left empty goes too), `hook` the
// relay's hook section without its secret (secret.hookSecret). Where the chart sets a key from
// other values (the in-chart Redis, jwtKeys, tlsFiles, tls), the user may still set it.
function chartConfigSchemas(relay) {
  const prune = (schema, prefix) => {
    const properties = {};
    for (const [name, sub] of Object.entries(schema.properties)) {
      const key = `${prefix}${name}`;
      if (sub.type === "object" && sub.properties) {
        const kept = prune(sub, `${key}.`);
        if (Object.keys(kept.properties).length > 0) properties[name] = kept;
      } else if (!NOT_IN_CONFIG_BLOCK.some((re) => re.test(key))) {
        properties[name] = sub;
      }
    }
    return { ...schema, properties };
  };
  const { $schema, ...file } = relay;
  const config = {
    description: "The relay's configuration file, key for key (docs/config.md); generated from `wsrelay --print-config-schema`.",
    ...prune(file, ""),
  };
  const { secret, ...hookKeys } = relay.properties.hook.properties;
  const hook = {
    description: "The hook to the app (docs/hook.md): the config file's hook: keys, without secret (secret.hookSecret); generated from `wsrelay --print-config-schema`.",
    ...relay.properties.hook,
    properties: hookKeys,
  };
  return { config, hook };
}

function valuesSchema(schemaFile, wsrelay, write) {
  const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
  const relay = JSON.parse(execFileSync(wsrelay, ["--print-config-schema"], { encoding: "utf8" }));
  const want = chartConfigSchemas(relay);
  const stale = Object.keys(want).filter((k) => JSON.stringify(schema.properties[k]) !== JSON.stringify(want[k]));
  if (write) {
    for (const k of stale) schema.properties[k] = want[k];
    fs.writeFileSync(schemaFile, `${JSON.stringify(schema, null, 2)}\n`);
    return true;
  }
  for (const k of stale) {
    console.log(`  ${schemaFile}: properties.${k} differs from what ${wsrelay} --print-config-schema declares;`);
    console.log(`    regenerate: node tests/helm/validate.mjs values-schema helm/wsrelay/values.schema.json build/relay/wsrelay --write`);
  }
  return stale.length === 0;
}

// Every key of VALUES (its defaults) is declared in SCHEMA, down to objects the schema leaves open
// (Kubernetes passthrough such as resources or affinity, maps such as podAnnotations).
function schemaCovers(valuesFile, schemaFile) {
  const values = YAML.parse(fs.readFileSync(valuesFile, "utf8"));
  const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
  const missing = [];
  const walk = (value, node, where) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
      const sub = node.properties?.[k];
      if (sub) walk(v, sub, `${where}${k}.`);
      else if (node.properties || node.additionalProperties === false) missing.push(`${where}${k}`);
    }
  };
  walk(values, schema, "");
  for (const k of missing) console.log(`  ${valuesFile}: ${k} is not declared in ${schemaFile}`);
  return missing.length === 0;
}

const [command, ...args] = process.argv.slice(2);
let ok;
if (command === "manifests") ok = await manifests(args);
else if (command === "extract") ok = extract(args[0], args[1]);
else if (command === "config-keys") ok = configKeys(args[0], args[1]);
else if (command === "expect-config") ok = expectConfig(args[0], args.slice(1));
else if (command === "values-schema") ok = valuesSchema(args[0], args[1], args[2] === "--write");
else if (command === "schema-covers") ok = schemaCovers(args[0], args[1]);
else {
  console.error(
    "usage: node validate.mjs manifests FILE... | extract OUT_DIR FILE | config-keys VALUES SAMPLE" +
      " | expect-config DIR KEY=VALUE... | values-schema SCHEMA WSRELAY [--write] | schema-covers VALUES SCHEMA",
  );
  process.exit(2);
}
process.exit(ok ? 0 : 1);

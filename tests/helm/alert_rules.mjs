// Checks of the alert rules that the chart's rewrite depends on (docs/operations.md, "Alert
// tuning"). Run from tests/helm (for the yaml package):
//   node alert_rules.mjs source RULES.yaml STATE_ALERT...
//     every selector of a wsrelay_* or up series carries job="wsrelay" exactly once, every
//     selector of a kube_* or container_* series container="wsrelay" exactly once (and no job);
//     no other series; each alerting rule has exactly one threshold token ("<number> # threshold"
//     ending a line), except the STATE_ALERTs, which have none.
//   node alert_rules.mjs show OUTPUT.yaml: each rendered alert on one line (see show()).
//   node alert_rules.mjs rendered OUTPUT.yaml SCOPE
//     in every PrometheusRule of a render: no job="wsrelay" left, every wsrelay_*/up selector
//     carries SCOPE, every kube_*/container_* one a namespace, every runbook_url is absolute.
import fs from "node:fs";
import YAML from "yaml";

const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring",
    "group_left", "group_right", "bool", "offset"]);
const LISTS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const TOKEN = /[0-9][0-9.eE+-]* # threshold$/gm;

// Every vector selector of a PromQL expression: {name, matchers} (matchers: the text in braces).
export function selectors(expr) {
    const text = expr.replace(/#[^\n]*/g, "");
    const out = [];
    let i = 0;
    while (i < text.length) {
        const c = text[i];
        if (c === "[") {
            i = text.indexOf("]", i) + 1;
        } else if (c === "{") {
            throw new Error(`a selector without a metric name at ${i}: ${expr}`);
        } else if (/[0-9]/.test(c)) {
            i += text.slice(i).match(/^[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?/)[0].length;
        } else if (/[a-zA-Z_:]/.test(c)) {
            const word = text.slice(i).match(/^[a-zA-Z_:][a-zA-Z0-9_:]*/)[0];
            i += word.length;
            const rest = text.slice(i);
            const ws = rest.match(/^\s*/)[0].length;
            if (LISTS.has(word) && rest[ws] === "(") {
                i = text.indexOf(")", i) + 1; // a label list, not selectors
            } else if (KEYWORDS.has(word) || rest[ws] === "(" || /^\s*(by|without)\s*\(/.test(rest)) {
                // an operator, a function, or an aggregation (its by/without list may come first)
            } else if (rest[ws] === "{") {
                const end = text.indexOf("}", i + ws);
                out.push({ name: word, matchers: text.slice(i + ws + 1, end) });
                i = end + 1;
            } else {
                out.push({ name: word, matchers: "" });
            }
        } else {
            i++;
        }
    }
    return out;
}

function count(haystack, needle) {
    return haystack.split(needle).length - 1;
}

function alertingRules(groups) {
    return (groups ?? []).flatMap((g) => g.rules ?? []).filter((r) => r.alert);
}

function checkSource(file, stateAlerts) {
    const problems = [];
    const rules = alertingRules(YAML.parse(fs.readFileSync(file, "utf8")).groups);
    const seenStates = [];
    for (const rule of rules) {
        const expr = String(rule.expr);
        for (const s of selectors(expr)) {
            const where = `${rule.alert}: ${s.name}{${s.matchers}}`;
            if (s.name === "up" || s.name.startsWith("wsrelay_")) {
                if (count(s.matchers, 'job="wsrelay"') !== 1) problems.push(`${where}: job="wsrelay" not exactly once`);
            } else if (s.name.startsWith("kube_") || s.name.startsWith("container_")) {
                if (count(s.matchers, 'container="wsrelay"') !== 1) problems.push(`${where}: container="wsrelay" not exactly once`);
                if (/\bjob\s*[=!]/.test(s.matchers)) problems.push(`${where}: selects a job (kube-state and cAdvisor series are not wsrelay's job)`);
            } else {
                problems.push(`${where}: a series the chart cannot scope`);
            }
        }
        const tokens = (expr.match(TOKEN) ?? []).length;
        if (count(expr, "# threshold") !== tokens) problems.push(`${rule.alert}: "# threshold" not after a number ending a line`);
        if (tokens === 0) {
            seenStates.push(rule.alert);
            if (!stateAlerts.includes(rule.alert)) problems.push(`${rule.alert}: no threshold token`);
        } else if (tokens !== 1) {
            problems.push(`${rule.alert}: ${tokens} threshold tokens`);
        } else if (stateAlerts.includes(rule.alert)) {
            problems.push(`${rule.alert}: listed as a state alert, but has a threshold token`);
        }
    }
    for (const name of stateAlerts) {
        if (!rules.some((r) => r.alert === name)) problems.push(`${name}: no such alert`);
    }
    if (rules.length === 0) problems.push("no alerting rules");
    return problems;
}

function checkRendered(file, scope) {
    const problems = [];
    let n = 0;
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
        const obj = doc.toJS();
        if (obj?.kind !== "PrometheusRule") continue;
        for (const rule of alertingRules(obj.spec.groups)) {
            n++;
            const expr = String(rule.expr);
            if (expr.includes('job="wsrelay"') && !scope.includes('job="wsrelay"')) {
                problems.push(`${rule.alert}: job="wsrelay" left in ${expr}`);
            }
            for (const s of selectors(expr)) {
                const where = `${rule.alert}: ${s.name}{${s.matchers}}`;
                if (s.name === "up" || s.name.startsWith("wsrelay_")) {
                    if (count(s.matchers, scope) !== 1) problems.push(`${where}: not scoped by ${scope}`);
                } else if (s.name.startsWith("kube_") || s.name.startsWith("container_")) {
                    if (count(s.matchers, "namespace=") !== 1) problems.push(`${where}: no namespace`);
                }
            }
            const url = rule.annotations?.runbook_url;
            if (url !== undefined && !/^https?:\/\/[^#]+#[a-z0-9-]+$/.test(url)) {
                problems.push(`${rule.alert}: runbook_url ${url} is not absolute`);
            }
        }
    }
    if (n === 0) problems.push("no PrometheusRule with alerting rules");
    return problems;
}

// One line per alerting rule of a render's PrometheusRules: alert, for, labels (JSON), runbook_url
// and the expression on one line, tab-separated, for the chart tests to grep.
function show(file) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
        const obj = doc.toJS();
        if (obj?.kind !== "PrometheusRule") continue;
        for (const r of alertingRules(obj.spec.groups)) {
            console.log([r.alert, r.for ?? "", JSON.stringify(r.labels ?? {}),
                r.annotations?.runbook_url ?? "", String(r.expr).replace(/\s*\n\s*/g, " ")].join("\t"));
        }
    }
    return [];
}

const [mode, file, ...rest] = process.argv.slice(2);
const problems = mode === "source" ? checkSource(file, rest)
    : mode === "rendered" ? checkRendered(file, rest[0])
    : mode === "show" ? show(file)
    : [`usage: node alert_rules.mjs source RULES STATE_ALERT... | rendered OUTPUT SCOPE | show OUTPUT`];
for (const p of problems) console.log(`  ${p}`);
process.exit(problems.length === 0 ? 0 : 1);

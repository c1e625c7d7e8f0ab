// npm test [unit|integration|browser]: runs the test files of test/<kind>/ with node's test
// runner. The files are listed here rather than globbed by `node --test`, which Node 18 cannot do.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const kind = process.argv[2] ?? "unit";
const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "test", kind);
const files = readdirSync(dir).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => join(dir, f));
if (files.length === 0) {
  console.error(`no test files in ${dir}`);
  process.exit(1);
}
const run = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
process.exit(run.status ?? 1);

// npm run build: type-checks src/ and writes dist/ — index.js (ES module), index.cjs (CommonJS),
// index.d.ts (types), wsrelay-client.min.js (minified ES module, what a page loads) — then prints
// the minified + gzipped size and fails when it is over the budget (docs/client-js.md).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 6 * 1024;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const entry = join(root, "src", "index.ts");

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json")], { stdio: "inherit" });

const common = { entryPoints: [entry], bundle: true, target: "es2020", logLevel: "warning" };
await build({ ...common, format: "esm", outfile: join(dist, "index.js") });
await build({ ...common, format: "cjs", outfile: join(dist, "index.cjs") });
await build({ ...common, format: "esm", minify: true, outfile: join(dist, "wsrelay-client.min.js") });

const min = readFileSync(join(dist, "wsrelay-client.min.js"));
const gz = gzipSync(min, { level: 9 }).length;
console.log(`wsrelay-client: ${min.length} B minified, ${gz} B minified + gzipped ` +
            `(budget ${BUDGET_BYTES} B)`);
if (gz > BUDGET_BYTES) {
  console.error(`wsrelay-client: over the size budget by ${gz - BUDGET_BYTES} B`);
  process.exit(1);
}

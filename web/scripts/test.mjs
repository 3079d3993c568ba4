// Runs the test suites: `node scripts/test.mjs [unit|browser]` (both by
// default). Tests are TypeScript under test/; they are bundled with esbuild
// into .test-build/ (Node 20 does not run TypeScript) and run with
// `node --test`. The browser suite drives /usr/bin/chromium through
// playwright-core against a real Go server built by the test.

import * as esbuild from "esbuild";
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const which = process.argv[2] ?? "all";
const suites = which === "all" ? ["unit", "browser"] : [which];
const out = path.join(root, ".test-build");
rmSync(out, { recursive: true, force: true });

let failed = false;
for (const suite of suites) {
  const dir = path.join(root, "test", suite);
  const entries = readdirSync(dir).filter((f) => f.endsWith(".test.ts")).sort().map((f) => path.join(dir, f));
  await esbuild.build({
    entryPoints: entries,
    outdir: path.join(out, suite),
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "inline",
    logLevel: "warning",
    absWorkingDir: root,
  });
  const files = readdirSync(path.join(out, suite)).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => path.join(out, suite, f));
  const args = ["--enable-source-maps", "--test", "--test-reporter=spec"];
  if (suite === "browser") args.push("--test-concurrency=1");
  const r = spawnSync(process.execPath, [...args, ...files], { cwd: root, stdio: "inherit", env: { ...process.env, DUALGATE_WEB_ROOT: root } });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const root = process.env.DUALGATE_WEB_ROOT ?? process.cwd();

test("committed dist/ equals a fresh deterministic build (run `npm run build` in web/ when this fails)", async () => {
  const build = (await import(pathToFileURL(path.join(root, "scripts", "build.mjs")).href)) as { stale(): Promise<string[]> };
  assert.deepEqual(await build.stale(), []);
});

test("the bundle loads as an ES module and exports the API", async () => {
  const mod = (await import(pathToFileURL(path.join(root, "dist", "dualgate.js")).href)) as Record<string, unknown>;
  for (const name of ["connect", "DualgateSocket", "CloseCode", "SUBPROTOCOL", "isFinalRefusal", "DualgateMessageEvent"]) {
    assert.ok(mod[name] !== undefined, `export ${name}`);
  }
  assert.equal(mod.SUBPROTOCOL, "dualgate.v1");
});

test("sources, demo and tests type-check (tsc --noEmit, strict)", async () => {
  const { execFileSync } = await import("node:child_process");
  const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.check.json"], { cwd: root, stdio: "inherit" });
});

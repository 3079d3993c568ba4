import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, normaliseBackoff } from "../../src/backoff.js";

test("backoff: immediate first retry, then full jitter under an exponential cap", () => {
  const o = normaliseBackoff({ initialDelay: 100, maxDelay: 1000, multiplier: 2 });
  assert.equal(backoffDelay(0, o, () => 0.999), 0);
  assert.equal(backoffDelay(1, o, () => 0.999), 99);
  assert.equal(backoffDelay(2, o, () => 0.999), 199);
  assert.equal(backoffDelay(3, o, () => 0.5), 200);
  assert.equal(backoffDelay(10, o, () => 0.999), 999, "capped by maxDelay");
  assert.equal(backoffDelay(50, o, () => 0), 0, "full jitter reaches zero");
  for (let n = 1; n < 30; n++) {
    const d = backoffDelay(n, o);
    assert.ok(d >= 0 && d <= 1000, `delay ${d}`);
  }
});

test("backoff defaults", () => {
  assert.deepEqual(normaliseBackoff(undefined), { initialDelay: 250, maxDelay: 15000, multiplier: 2 });
  assert.equal(normaliseBackoff({ multiplier: 0.5 }).multiplier, 1);
});

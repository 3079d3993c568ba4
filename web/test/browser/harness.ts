// Harness of the browser tests: builds and starts a real Go server, finds
// its TLS key hash, and launches Debian's Chromium through playwright-core.
//
// SERVER picks the server under test. "e2eserver" is web/internal/e2eserver
// (the real resume.Server with an in-process echo on /stream); "gateway" is
// the real gateway binary (cmd/gateway) once it routes /stream to its echo
// upstream. Switching is this one line (DUALGATE_WEB_SERVER=gateway overrides
// it for one run).
export const SERVER: "gateway" | "e2eserver" = (process.env.DUALGATE_WEB_SERVER as "gateway" | undefined) ?? "gateway";

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect as tlsConnect } from "node:tls";
import { chromium, type BrowserContext } from "playwright-core";

const webRoot = process.env.DUALGATE_WEB_ROOT ?? process.cwd();
const repoRoot = path.resolve(webRoot, "..");
export const CHROMIUM = "/usr/bin/chromium";
/** HOST is a non-loopback name mapped to 127.0.0.1 inside Chromium, so http:// pages are not a secure context. */
export const HOST = "dualgate.test";

export interface Server {
  port: number;
  /** key is the server's static public key as the demo page offers it (base64url). */
  key: string;
  /** spki is the base64 SHA-256 of the TLS certificate's SubjectPublicKeyInfo. */
  spki: string;
  stop(): Promise<void>;
}

const built = new Map<string, string>();

/** build compiles the server binary once per test process. */
function build(kind: typeof SERVER, dir: string): string {
  const pkg = kind === "gateway" ? "./cmd/gateway" : "./web/internal/e2eserver";
  if (built.has(pkg)) return built.get(pkg)!;
  const out = path.join(dir, kind);
  const r = spawnSync("go", ["build", "-o", out, pkg], { cwd: repoRoot, stdio: "inherit", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`go build ${pkg} failed`);
  built.set(pkg, out);
  return out;
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitPort(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((res) => {
      const c = netConnect(port, "127.0.0.1");
      c.once("connect", () => {
        c.destroy();
        res(true);
      });
      c.once("error", () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server port ${port} not listening in time`);
}

function spkiOf(cert: X509Certificate): string {
  return createHash("sha256").update(cert.publicKey.export({ type: "spki", format: "der" })).digest("base64");
}

/** spkiHash connects with TLS and hashes the leaf certificate's public key, as Chromium's SPKI list wants. */
export function spkiHash(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false }, () => {
      const cert = s.getPeerX509Certificate();
      s.destroy();
      if (!cert) return reject(new Error("no peer certificate"));
      resolve(spkiOf(cert));
    });
    s.once("error", reject);
    s.setTimeout(15_000, () => s.destroy(new Error("TLS connect timeout")));
  });
}

/** startServer builds and starts the server under test on a free port with a temporary data directory. */
export async function startServer(opts: { detachedTTL?: string; window?: number } = {}): Promise<Server> {
  const tmp = mkdtempSync(path.join(tmpdir(), "dualgate-web-e2e-"));
  const bin = build(SERVER, tmp);
  const ttl = opts.detachedTTL ?? "2m";
  let child: ChildProcess;
  let port: number;
  let keyFromStdout: string | undefined;
  const deadline = Date.now() + 60_000;
  if (SERVER === "gateway") {
    port = await freePort();
    const args = ["-listen", `127.0.0.1:${port}`, "-data-dir", path.join(tmp, "data"), "-detached-ttl", ttl];
    if (opts.window) args.push("-window", String(opts.window));
    child = spawn(bin, args, { stdio: ["pipe", "inherit", "inherit"] });
    await waitPort(port, deadline);
  } else {
    const args = ["-detached-ttl", ttl];
    if (opts.window) args.push("-window", String(opts.window));
    child = spawn(bin, args, { stdio: ["pipe", "pipe", "inherit"] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = "";
      const t = setTimeout(() => reject(new Error("e2eserver did not start")), 60_000);
      child.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        const i = buf.indexOf("\n");
        if (i >= 0) {
          clearTimeout(t);
          resolve(buf.slice(0, i));
        }
      });
      child.once("exit", (c) => reject(new Error(`e2eserver exited with ${c}`)));
    });
    const info = JSON.parse(line) as { addr: string; key: string };
    port = Number(info.addr.split(":").pop());
    keyFromStdout = info.key;
  }
  // The demo page carries the key the server offers; both servers serve it.
  const page = await (await fetch(`http://127.0.0.1:${port}/`)).text();
  const key = /<meta name="dualgate-server-key" content="([^"]*)">/.exec(page)?.[1] || keyFromStdout || "";
  if (!key) throw new Error(`${SERVER} offers no server key on its demo page (web.Options.ServerKey)`);
  // Chromium trusts certificates by the SHA-256 of their SubjectPublicKeyInfo:
  // the gateway's dev CA (certs/ dev mode keeps it in the data directory) and
  // the leaf it presents, which is also how the e2eserver's self-signed one is found.
  const hashes = [await spkiHash(port)];
  const ca = path.join(tmp, "data", "dev", "ca.pem");
  if (SERVER === "gateway") {
    if (!existsSync(ca)) throw new Error(`the gateway wrote no dev CA at ${ca}`);
    hashes.unshift(spkiOf(new X509Certificate(readFileSync(ca))));
  }
  // (The CA's hash alone is not enough: Chromium matches the chain the server
  // presents, and the gateway presents only its leaf.)
  const spki = hashes.join(",");
  return {
    port,
    key,
    spki,
    stop: async () => {
      child.stdin?.end();
      child.kill("SIGTERM");
      await new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        const t = setTimeout(() => {
          child.kill("SIGKILL");
          r();
        }, 10_000);
        child.once("exit", () => {
          clearTimeout(t);
          r();
        });
      });
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** launch starts headless Chromium with a fresh profile that trusts the server's TLS key. */
export async function launch(spki: string): Promise<{ ctx: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make deps\` (apt-get install chromium); browser tests never skip`);
  const profile = mkdtempSync(path.join(tmpdir(), "dualgate-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--ignore-certificate-errors-spki-list=${spki}`,
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
    ],
  });
  return {
    ctx,
    close: async () => {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// The demo page: connect to the echo route, chat, push bulk data and watch
// the session survive cut transports. Plain DOM, no framework. The library is
// loaded from the served bundle (/dualgate.js) — see scripts/build.mjs.

import { connect, type CipherPreference, type DualgateSocket } from "../src/index.js";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

const ui = {
  form: $<HTMLFormElement>("connect-form"),
  url: $<HTMLInputElement>("url"),
  key: $<HTMLInputElement>("key"),
  cipher: $<HTMLSelectElement>("cipher"),
  connect: $<HTMLButtonElement>("connect"),
  disconnect: $<HTMLButtonElement>("disconnect"),
  cut: $<HTMLButtonElement>("cut"),
  state: $("state"),
  sessionId: $("session-id"),
  rtt: $("rtt"),
  resumes: $("resumes"),
  replayed: $("replayed"),
  dups: $("dups"),
  buffered: $("buffered"),
  suite: $("suite"),
  sendForm: $<HTMLFormElement>("send-form"),
  message: $<HTMLInputElement>("message"),
  send: $<HTMLButtonElement>("send"),
  messages: $("messages"),
  bulkSize: $<HTMLSelectElement>("bulk-size"),
  bulkStart: $<HTMLButtonElement>("bulk-start"),
  bulkBar: $("bulk-bar"),
  bulkDone: $("bulk-done"),
  throughput: $("throughput"),
  bulkCheck: $("bulk-check"),
  events: $("event-log"),
};

const params = new URLSearchParams(location.search);
const meta = (name: string): string => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? "";
const route = meta("dualgate-route") || "/stream";
ui.url.value = params.get("url") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${route}`;
// The gateway offers its static key: pin it unless the URL says otherwise.
ui.key.value = params.get("key") ?? meta("dualgate-server-key");
ui.cipher.value = params.get("cipher") ?? "auto";

// The carrier chips rewrite the URL's scheme; editing the URL updates the chips.
const schemes = Array.from(document.querySelectorAll<HTMLInputElement>('input[name="scheme"]'));
const syncScheme = () => {
  const m = /^(wss?):\/\//.exec(ui.url.value.trim());
  for (const r of schemes) r.checked = r.value === m?.[1];
};
for (const r of schemes) {
  r.addEventListener("change", () => {
    ui.url.value = ui.url.value.trim().replace(/^(wss?:\/\/)?/, `${r.value}://`);
  });
}
ui.url.addEventListener("input", syncScheme);
syncScheme();

let sock: DualgateSocket | undefined;
let bulk: { size: number; got: number; next: number; start: number; ok: boolean } | undefined;

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(2)} MiB`;
}

function logEvent(text: string, cls = ""): void {
  const li = document.createElement("li");
  li.textContent = `${new Date().toISOString().slice(11, 23)}  ${text}`;
  if (cls) li.className = cls;
  ui.events.prepend(li);
  while (ui.events.children.length > 200) ui.events.lastElementChild!.remove();
}

function logMessage(text: string, dir: "in" | "out"): void {
  const li = document.createElement("li");
  li.className = dir;
  li.textContent = text;
  ui.messages.prepend(li);
  while (ui.messages.children.length > 100) ui.messages.lastElementChild!.remove();
}

function setState(s: string): void {
  ui.state.textContent = s;
  ui.state.dataset.state = s;
  const live = s === "open" || s === "connecting" || s === "reconnecting";
  ui.connect.disabled = live;
  ui.disconnect.disabled = !live;
  ui.cut.disabled = s !== "open";
  ui.message.disabled = !live;
  ui.send.disabled = !live;
  ui.bulkStart.disabled = s !== "open" || bulk !== undefined;
}

function refresh(): void {
  if (!sock) return;
  const st = sock.stats;
  ui.rtt.textContent = Number.isNaN(st.rtt) ? "–" : `${st.rtt.toFixed(1)} ms`;
  ui.resumes.textContent = String(st.resumes);
  ui.replayed.textContent = fmtBytes(st.replayedBytes);
  ui.dups.textContent = fmtBytes(st.duplicateBytes);
  ui.buffered.textContent = fmtBytes(sock.bufferedAmount);
  ui.suite.textContent = `Noise ${st.pattern} · ${st.suite.includes("AESGCM") ? "AES-256-GCM" : "ChaCha20-Poly1305"}`;
  ui.sessionId.textContent = sock.sessionId ? `session ${sock.sessionId}` : "no session";
}
setInterval(refresh, 250);

/** pattern byte i of a bulk transfer: cheap, deterministic, not periodic at small strides. */
function fill(buf: Uint8Array, offset: number): void {
  for (let i = 0; i < buf.length; i++) {
    const x = offset + i;
    buf[i] = (x * 2654435761) >>> 24 ^ (x >>> 13);
  }
}

ui.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (sock && sock.state !== "closed") return;
  try {
    sock = connect(ui.url.value.trim(), {
      serverKey: ui.key.value.trim() || undefined,
      cipher: ui.cipher.value as CipherPreference,
      heartbeatInterval: 2000,
      deadPeerTimeout: 8000,
    });
  } catch (e) {
    logEvent(`cannot connect: ${(e as Error).message}`, "bad");
    return;
  }
  const s = sock;
  setState("connecting");
  logEvent(`connecting to ${ui.url.value}`);
  s.addEventListener("statechange", (e) => setState(e.state));
  s.addEventListener("open", () => {
    logEvent(`open: session ${s.sessionId} (${s.stats.pattern}, ${s.stats.suite}${s.plainInTLS ? ", plain-in-TLS frames" : ""})`);
    refresh();
  });
  s.addEventListener("transportclose", (e) => logEvent(`transport lost (${e.code || "cut"}${e.reason ? `: ${e.reason}` : ""})`, "warn"));
  s.addEventListener("resumed", (e) => logEvent(`resumed after ${e.downtime.toFixed(0)} ms, ${fmtBytes(e.replayedBytes)} replayed${s.plainInTLS ? ", plain-in-TLS frames" : ""}`));
  s.addEventListener("close", (e) => {
    logEvent(`closed: ${e.code}${e.reason ? ` ${e.reason}` : ""}${e.wasClean ? "" : " (not clean)"}`, e.code === 1000 ? "" : "bad");
    if (bulk) {
      ui.bulkCheck.textContent = "aborted";
      bulk = undefined;
    }
    setState("closed");
    refresh();
  });
  s.addEventListener("message", (e) => {
    if (typeof e.data === "string") {
      logMessage(e.data, "in");
      return;
    }
    if (!bulk) return;
    const b = bulk;
    const want = new Uint8Array(e.data.length);
    fill(want, b.got);
    for (let i = 0; i < want.length; i++) {
      if (want[i] !== e.data[i]) {
        b.ok = false;
        break;
      }
    }
    b.got += e.data.length;
    const secs = (performance.now() - b.start) / 1000;
    ui.bulkBar.style.width = `${((100 * b.got) / b.size).toFixed(1)}%`;
    ui.bulkDone.textContent = `${fmtBytes(b.got)} / ${fmtBytes(b.size)}`;
    ui.throughput.textContent = `${(b.got / (1 << 20) / secs).toFixed(2)} MiB/s`;
    if (b.got >= b.size) {
      ui.bulkCheck.textContent = b.ok && b.got === b.size ? "✓ byte for byte" : "✗ mismatch";
      ui.bulkCheck.dataset.result = b.ok && b.got === b.size ? "ok" : "bad";
      logEvent(`bulk echo of ${fmtBytes(b.size)} in ${secs.toFixed(2)} s: ${ui.bulkCheck.textContent}`);
      bulk = undefined;
      setState(s.state);
    }
  });
});

ui.disconnect.addEventListener("click", () => sock?.close(1000, "bye from the demo"));
ui.cut.addEventListener("click", () => {
  logEvent("cutting the transport", "warn");
  sock?.dropTransport();
});

ui.sendForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = ui.message.value;
  if (!sock || !text) return;
  sock.send(text);
  logMessage(text, "out");
  ui.message.value = "";
});

ui.bulkStart.addEventListener("click", async () => {
  if (!sock || bulk) return;
  const s = sock;
  const size = Number(ui.bulkSize.value);
  bulk = { size, got: 0, next: 0, start: performance.now(), ok: true };
  ui.bulkCheck.textContent = "…";
  delete ui.bulkCheck.dataset.result;
  setState(s.state);
  const piece = 64 << 10;
  try {
    for (let o = 0; o < size; o += piece) {
      const buf = new Uint8Array(Math.min(piece, size - o));
      fill(buf, o);
      if (!s.send(buf)) await s.drain(512 << 10);
    }
  } catch (e) {
    logEvent(`bulk send stopped: ${(e as Error).message}`, "bad");
  }
});

setState("idle");
ui.connect.disabled = false;
if (params.get("autoconnect") === "1") ui.form.requestSubmit();

// One xmpp.js (@xmpp/client 0.14) client for the xedge integration tests.
//
//   node client.mjs --service URL --user NAME --password PW [--domain localhost]
//        [--resource R] [--mech PLAIN|SCRAM-SHA-1] [--to JID --body TEXT]
//        [--expect-body TEXT | --expect-any] [--echo] [--timeout SECONDS] [--builtin-ws]
//
// URL: xmpp://127.0.0.1:PORT (TCP; STARTTLS when the server offers it),
//      ws://127.0.0.1:PORT/path or wss://localhost:PORT/path (RFC 7395).
// For wss:// and STARTTLS with a self-signed certificate, set NODE_EXTRA_CA_CERTS to it.
//
// Steps: connect, authenticate, bind, send presence; print `XMPPJS_READY <jid>`;
// send --body to --to (if given); then wait for a chat/normal message whose body is
// --expect-body (or any message with --expect-any; with --echo, answer the first
// message with "echo: <body>"), ignoring others (offline messages of earlier runs).
// Last line: `XMPPJS_RESULT {json}` with ok, jid, secure, mechanism, offered,
// received {from, body}, elapsed_ms, error.  Exit status 0 only when ok.
import { client, xml } from "@xmpp/client";

const t0 = performance.now();
const opts = { domain: "localhost", timeout: "15" };
const flags = new Set(["expect-any", "echo", "builtin-ws"]);
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith("--")) usage(`unexpected argument ${a}`);
  const k = a.slice(2);
  if (flags.has(k)) opts[k] = true;
  else if (i + 1 < process.argv.length) opts[k] = process.argv[++i];
  else usage(`${a} needs a value`);
}
for (const k of ["service", "user", "password"]) if (!opts[k]) usage(`--${k} is required`);

function usage(msg) {
  console.error(`client.mjs: ${msg}`);
  process.exit(2);
}

const result = { ok: false, service: opts.service, jid: null, secure: null, mechanism: null,
  offered: null, sent: null, received: null, ignored: [], elapsed_ms: null, error: null };

function finish(ok, error) {
  result.ok = ok;
  if (error) result.error = String(error?.message ?? error);
  result.elapsed_ms = Math.round(performance.now() - t0);
  console.log(`XMPPJS_RESULT ${JSON.stringify(result)}`);
  process.exit(ok ? 0 : 1);
}

const timer = setTimeout(() => finish(false, `timeout after ${opts.timeout} s`),
  Number(opts.timeout) * 1000);

// WebSocket: the npm 'ws' package unless --builtin-ws (Node's own, stricter about the
// 101 response; Node 20 needs --experimental-websocket for it).
if (opts.service.startsWith("ws")) {
  if (!opts["builtin-ws"]) globalThis.WebSocket = (await import("ws")).WebSocket;
  if (typeof globalThis.WebSocket === "undefined") finish(false, "no built-in WebSocket");
}

let smOffered = false;
const xmpp = client({
  service: opts.service,
  domain: opts.domain,
  resource: opts.resource,
  // A function gets the offered list and picks: --mech, else the first offered one.
  // (xmpp.js's default refuses PLAIN on a connection it does not consider secure;
  // an explicit choice here bypasses that, e.g. for a plaintext upstream.)
  credentials: async (authenticate, mechanisms) => {
    result.offered = mechanisms;
    const m = opts.mech || mechanisms[0];
    result.mechanism = m;
    await authenticate({ username: opts.user, password: opts.password }, m);
  },
});
xmpp.reconnect.stop();     // a test wants to see a failure, not a retry

xmpp.on("error", (e) => { result.error = String(e?.message ?? e); });
xmpp.on("element", (el) => {
  if (el.is("features", "http://etherx.jabber.org/streams") && el.getChild("sm", "urn:xmpp:sm:3"))
    smOffered = true;
});

const matches = (st) => {
  if (!st.is("message")) return false;
  const type = st.attrs.type || "normal";
  const body = st.getChildText("body");
  if (body === null || (type !== "chat" && type !== "normal")) return false;
  if (opts["expect-body"] !== undefined) return body === opts["expect-body"];
  return Boolean(opts["expect-any"] || opts.echo);
};
const waiting = opts["expect-body"] !== undefined || opts["expect-any"] || opts.echo;
const received = new Promise((resolve) => {
  xmpp.on("stanza", async (st) => {
    if (!st.is("message") || result.received) return;
    if (!matches(st)) {
      const b = st.getChildText("body");
      if (b !== null) result.ignored.push(b.slice(0, 80));
      return;
    }
    result.received = { from: st.attrs.from, body: st.getChildText("body") };
    if (opts.echo) {
      await xmpp.send(xml("message", { to: st.attrs.from, type: "chat" },
        xml("body", {}, `echo: ${st.getChildText("body")}`)));
    }
    resolve();
  });
});

try {
  const addr = await xmpp.start();
  // xmpp.js resolves start() before <enabled/> of XEP-0198 arrives; a stanza sent in
  // that window confuses its 'h' counter.  Wait for SM only when it was offered.
  const smDeadline = performance.now() + 2000;
  while (smOffered && !xmpp.streamManagement?.enabled && performance.now() < smDeadline)
    await new Promise((r) => setTimeout(r, 10));
  result.jid = addr.toString();
  result.secure = xmpp.isSecure();
  await xmpp.send(xml("presence"));
  console.log(`XMPPJS_READY ${result.jid}`);
  if (opts.to) {
    const body = opts.body ?? `hello from xmpp.js ${Date.now()}`;
    await xmpp.send(xml("message", { to: opts.to, type: "chat" }, xml("body", {}, body)));
    result.sent = { to: opts.to, body };
  }
  if (waiting) await received;
  // The echo (or last message) must leave before the stream closes.
  await xmpp.stop();
  clearTimeout(timer);
  finish(true);
} catch (e) {
  clearTimeout(timer);
  finish(false, e);
}

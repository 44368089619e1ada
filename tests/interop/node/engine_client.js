// Independent OPC UA client (node-opcua) for the engine's own namespace (urn:rtompc:engine).
//
// Usage: node engine_client.js STEPS.json
// STEPS.json: { "endpoint": "opc.tcp://...", "pki": "/tmp/...", "client_uri": "urn:...",
//               "cert": "client_cert.pem", "key": "client_key.pem",
//               "sessions": [ { "user": "op", "password": "...", "steps": [ ... ] } ] }
// Steps (paths are below Units, e.g. "williams_otto.CVs.x_g.high"):
//   {"do": "browse", "path": "williams_otto"}          browse names of a node's children
//   {"do": "read", "path": "...", "properties": true}   value (+ EngineeringUnits, EURange)
//   {"do": "write", "path": "...", "type": "Double", "value": 0.06}
//        -> status, and the engine cycle (Controller.cycle) read right after the write
//   {"do": "wait_cycles", "path": "williams_otto.Controller.cycle", "n": 20, "timeout_ms": 60000}
// Prints {"ready": true} once the first session is open, then one JSON document: { "sessions": [ { "user", "connected", "error", "results": [...] } ] }
"use strict";

const fs = require("fs");
const {
  OPCUAClient, MessageSecurityMode, SecurityPolicy, AttributeIds, DataType, UserTokenType,
} = require("node-opcua-client");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");

const URI = "urn:rtompc:engine";

function id(ns, path) {
  return `ns=${ns};s=Units${path ? "." + path : ""}`;
}

async function readValue(session, nodeId) {
  const dv = await session.read({ nodeId, attributeId: AttributeIds.Value });
  return dv;
}

async function step(session, ns, s) {
  switch (s.do) {
    case "browse": {
      const res = await session.browse(id(ns, s.path));
      return { names: res.references.map((r) => r.browseName.name) };
    }
    case "read": {
      const dv = await readValue(session, id(ns, s.path));
      const out = { value: dv.value.value, status: dv.statusCode.name };
      if (s.properties) {
        const eu = await readValue(session, id(ns, s.path) + ".EngineeringUnits");
        const rng = await readValue(session, id(ns, s.path) + ".EURange");
        out.eu = { unitId: eu.value.value.unitId, displayName: eu.value.value.displayName.text };
        out.range = [rng.value.value.low, rng.value.value.high];
      }
      return out;
    }
    case "write": {
      const sc = await session.write({ nodeId: id(ns, s.path), attributeId: AttributeIds.Value,
        value: { value: { dataType: DataType[s.type], value: s.value } } });
      const unit = s.path.split(".")[0];
      const cycle = await readValue(session, id(ns, unit + ".Controller.cycle"));
      return { status: sc.name, cycle: cycle.value.value };
    }
    case "wait_cycles": {
      const first = (await readValue(session, id(ns, s.path))).value.value;
      const t0 = Date.now();
      let now = first;
      while (now < first + s.n && Date.now() - t0 < s.timeout_ms) {
        await new Promise((r) => setTimeout(r, 25));
        now = (await readValue(session, id(ns, s.path))).value.value;
      }
      return { from: first, to: now, reached: now >= first + s.n };
    }
    default:
      throw new Error(`unknown step ${s.do}`);
  }
}

let readySent = false;

async function runSession(cfg, certificateManager, sess) {
  const client = OPCUAClient.create({
    applicationName: "rtompc-interop-engine", applicationUri: cfg.client_uri,
    securityMode: MessageSecurityMode.SignAndEncrypt, securityPolicy: SecurityPolicy.Basic256Sha256,
    endpointMustExist: false, connectionStrategy: { maxRetry: 0, initialDelay: 50, maxDelay: 100 },
    clientCertificateManager: certificateManager, certificateFile: cfg.cert, privateKeyFile: cfg.key,
    requestedSessionTimeout: 60000,
  });
  const out = { user: sess.user, connected: false, error: null, results: [] };
  let session = null;
  try {
    await client.connect(cfg.endpoint);
    session = await client.createSession(
      { type: UserTokenType.UserName, userName: sess.user, password: sess.password });
    out.connected = true;
    if (!readySent) {  // the test starts the loop once a client is in
      readySent = true;
      process.stdout.write(JSON.stringify({ ready: true }) + "\n");
    }
    const nsArray = await readValue(session, "ns=0;i=2255");
    const ns = nsArray.value.value.indexOf(URI);
    out.namespace_index = ns;
    for (const s of sess.steps) {
      try {
        out.results.push(await step(session, ns, s));
      } catch (err) {
        out.results.push({ error: String(err.message || err) });
      }
    }
  } catch (err) {
    out.error = String(err.message || err);
  } finally {
    try { if (session) await session.close(); } catch (e) { /* already gone */ }
    try { await client.disconnect(); } catch (e) { /* already gone */ }
  }
  return out;
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  // the engine server's certificate is accepted as presented (the engine's trust list of
  // *client* certificates is what this test exercises)
  const certificateManager = new OPCUACertificateManager({
    rootFolder: cfg.pki, automaticallyAcceptUnknownCertificate: true,
  });
  const result = { sessions: [] };
  for (const sess of cfg.sessions) {
    result.sessions.push(await runSession(cfg, certificateManager, sess));
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });

// Independent OPC UA client (node-opcua) for rtompc's HIL interop tests.
//
// Usage: node hil_client.js CASES.json
// CASES.json: { "endpoint": "opc.tcp://...", "plant": "van_de_vusse", "pki": "/tmp/...",
//               "cases": [ { "name": "...", "security": "none|sign|sign-encrypt",
//                            "user": null|"name", "password": null|"pw",
//                            "cert": null|"client.der", "key": null|"client.pem",
//                            "actions": [ ... ] } ] }
// Actions: {"do": "browse"}, {"do": "read", "path": "Measurements.t_r"},
//          {"do": "write", "path": "Setpoints.f_dil", "type": "Double", "value": 0.005},
//          {"do": "call_step", "n": 3}, {"do": "subscribe", "path": "Status.sim_time_s"},
//          {"do": "wait_notifications", "count": 4, "timeout_ms": 3000}
// Prints one JSON document: { "cases": [ { "name", "connected", "error", "results": [...] } ] }
"use strict";

const fs = require("fs");
const {
  OPCUAClient, MessageSecurityMode, SecurityPolicy, AttributeIds, DataType, UserTokenType,
  ClientSubscription, ClientMonitoredItem, TimestampsToReturn,
} = require("node-opcua-client");
const { OPCUACertificateManager } = require("node-opcua-certificate-manager");

const MODES = {
  "none": [MessageSecurityMode.None, SecurityPolicy.None],
  "sign": [MessageSecurityMode.Sign, SecurityPolicy.Basic256Sha256],
  "sign-encrypt": [MessageSecurityMode.SignAndEncrypt, SecurityPolicy.Basic256Sha256],
};

function nodeId(ns, plant, p) {
  return `ns=${ns};s=${p ? plant + "." + p : plant}`;
}

async function namespaceIndex(session, uri) {
  const dv = await session.read({ nodeId: "ns=0;i=2255", attributeId: AttributeIds.Value });
  return dv.value.value.indexOf(uri);
}

async function browseNames(session, id) {
  const res = await session.browse(id);
  return res.references.map((r) => r.browseName.name);
}

async function runAction(session, ns, plant, a, state) {
  switch (a.do) {
    case "browse": {
      const out = { plant: await browseNames(session, nodeId(ns, plant)) };
      for (const folder of ["Measurements", "Actuators", "Setpoints", "Status"]) {
        out[folder] = await browseNames(session, nodeId(ns, plant, folder));
      }
      return out;
    }
    case "read": {
      const id = nodeId(ns, plant, a.path);
      const dv = await session.read({ nodeId: id, attributeId: AttributeIds.Value });
      const out = { value: dv.value.value, status: dv.statusCode.name,
        source_timestamp: dv.sourceTimestamp ? dv.sourceTimestamp.toISOString() : null };
      if (a.properties) {
        const eu = await session.read({ nodeId: id + ".EngineeringUnits", attributeId: AttributeIds.Value });
        const rng = await session.read({ nodeId: id + ".EURange", attributeId: AttributeIds.Value });
        out.eu = eu.value.value ? { unitId: eu.value.value.unitId, displayName: eu.value.value.displayName.text } : null;
        out.range = rng.value.value ? [rng.value.value.low, rng.value.value.high] : null;
      }
      return out;
    }
    case "write": {
      const value = a.value === "NaN" ? NaN : a.value;
      const sc = await session.write({ nodeId: nodeId(ns, plant, a.path), attributeId: AttributeIds.Value,
        value: { value: { dataType: DataType[a.type], value } } });
      return { status: sc.name };
    }
    case "call_step": {
      const res = await session.call({ objectId: nodeId(ns, plant), methodId: nodeId(ns, plant, "step"),
        inputArguments: [{ dataType: DataType.UInt32, value: a.n }] });
      return { status: res.statusCode.name,
        output: res.outputArguments && res.outputArguments.length ? res.outputArguments[0].value : null };
    }
    case "subscribe": {
      state.sub = ClientSubscription.create(session, { requestedPublishingInterval: 20, requestedLifetimeCount: 600,
        requestedMaxKeepAliveCount: 10, maxNotificationsPerPublish: 100, publishingEnabled: true, priority: 10 });
      const item = ClientMonitoredItem.create(state.sub, { nodeId: nodeId(ns, plant, a.path),
        attributeId: AttributeIds.Value }, { samplingInterval: 0, discardOldest: true, queueSize: 20 },
        TimestampsToReturn.Both);
      state.notes = [];
      item.on("changed", (dv) => state.notes.push(dv.value.value));
      await new Promise((resolve) => item.once("initialized", resolve));
      return { subscribed: true };
    }
    case "wait_notifications": {
      const t0 = Date.now();
      while (state.notes.length < a.count && Date.now() - t0 < a.timeout_ms) {
        await new Promise((r) => setTimeout(r, 20));
      }
      return { values: state.notes.slice() };
    }
    default:
      throw new Error(`unknown action ${a.do}`);
  }
}

let certificateManagerSingleton = null;
function sharedCertificateManager(cfg) {
  // one PKI folder for all cases: node-opcua initialises it once (slow)
  if (!certificateManagerSingleton) {
    certificateManagerSingleton = new OPCUACertificateManager({
      rootFolder: cfg.pki, automaticallyAcceptUnknownCertificate: true,
    });
  }
  return certificateManagerSingleton;
}

async function runCase(cfg, c) {
  const [mode, policy] = MODES[c.security || "none"];
  const certificateManager = sharedCertificateManager(cfg);
  const options = {
    applicationName: "rtompc-interop-node", applicationUri: cfg.client_uri || "urn:rtompc:test:client",
    securityMode: mode, securityPolicy: policy, endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 50, maxDelay: 100 },
    clientCertificateManager: certificateManager, requestedSessionTimeout: 20000,
  };
  if (c.cert) { options.certificateFile = c.cert; options.privateKeyFile = c.key; }
  const client = OPCUAClient.create(options);
  const out = { name: c.name, connected: false, error: null, results: [] };
  let session = null;
  try {
    await client.connect(cfg.endpoint);
    const identity = c.user ? { type: UserTokenType.UserName, userName: c.user, password: c.password }
      : { type: UserTokenType.Anonymous };
    session = await client.createSession(identity);
    out.connected = true;
    const ns = await namespaceIndex(session, "urn:rtompc:hil");
    out.namespace_index = ns;
    const state = {};
    for (const a of c.actions || []) {
      try {
        out.results.push(await runAction(session, ns, cfg.plant, a, state));
      } catch (err) {
        out.results.push({ error: String(err.message || err) });
      }
    }
    if (state.sub) await state.sub.terminate();
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
  const result = { cases: [] };
  for (const c of cfg.cases) {
    result.cases.push(await runCase(cfg, c));
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });

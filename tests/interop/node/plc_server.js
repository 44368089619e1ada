// A PLC stand-in for rtompc's interop tests: a node-opcua *server* (not asyncua) with a
// small heated-tank plant inside, its own namespace URI, string NodeIds and engineering
// units (cm, degC, m^3/h, kW), a LOCAL/REMOTE mode handshake, a heartbeat watchdog, and a
// write guard like open62541 / Siemens S7 servers: a write that carries a SourceTimestamp,
// a ServerTimestamp or a status code is refused with BadWriteNotSupported.
//
// Usage: node plc_server.js CONFIG.json   (prints "READY <endpoint>" once listening)
// CONFIG keys (all optional but port): port, speed (plant s per wall s), step_s (RK4 step,
// plant s), namespace, initial {f_in_m3h, q_kw}, t_in_c, watchdog_timeout_s (plant s),
// key_local (bool: the operator's key switch starts in LOCAL-only).
// PLC1.DB30.KEY_LOCAL (Boolean, writable) is that key switch: while true, MODE_REQ = 1 is
// refused with BadInvalidState and the plant stays (or goes) LOCAL.
//
// Plant (SI inside; documented here because the Python test builds the matching model):
//   A dh/dt = f_in - K_OUT * h                                        level h [m]
//   A h dT/dt = f_in (T_in - T) + (q - UA (T - T_AMB)) / RHO_CP        temperature T [K]
// with A = 0.5 m^2, K_OUT = 2.5e-3 m^2/s, RHO_CP = 4.18e6 J/(m^3 K), heat loss
// UA = 500 W/K to T_AMB = 20 degC (the loss is NOT in the engine's model: plant-model
// mismatch the offset-free estimator must absorb). Integrated with RK4 at step_s, paced
// against the wall clock times `speed`. Actuators follow their setpoints at once.
"use strict";

const fs = require("fs");
const { OPCUAServer } = require("node-opcua-server");
const { DataType, Variant, StatusCodes, MessageSecurityMode, SecurityPolicy } = require("node-opcua-client");
const { standardUnits } = require("node-opcua-data-access");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const NS = cfg.namespace || "urn:example:tank-plc";
const SPEED = cfg.speed || 1.0;
const STEP = cfg.step_s || 1.0;
const WATCHDOG = cfg.watchdog_timeout_s || 60.0;
const A = 0.5, K_OUT = 2.5e-3, RHO_CP = 4.18e6, UA = 500.0, C0 = 273.15, T_AMB = 20.0 + C0;
const T_IN = (cfg.t_in_c === undefined ? 15.0 : cfg.t_in_c) + C0;

// engineering units: the UNECE EUInformation of node-opcua (display names cm, °C, m³/h, kW, s)
const EU = {
  cm: standardUnits.centimetre,
  degC: standardUnits.degree_celsius,
  m3h: standardUnits.cubic_metre_per_hour,
  kW: standardUnits.kilowatt,
  s: standardUnits.second,
};

// plant state (SI)
const init = cfg.initial || {};
const sp = { f_in: (init.f_in_m3h === undefined ? 9.0 : init.f_in_m3h) / 3600,
             q: (init.q_kw === undefined ? 100.0 : init.q_kw) * 1e3 };
const plc = { mode: 0, heartbeat: 0, hbTime: 0.0, status: "LOCAL at start", writesOk: 0,
              refusedTs: 0, tripped: false, keyLocal: !!cfg.key_local };
let h = sp.f_in / K_OUT;                                      // steady state at the start inputs
let T = (RHO_CP * sp.f_in * T_IN + UA * T_AMB + sp.q) / (RHO_CP * sp.f_in + UA);
let tPlant = 0.0;

function rhs(hh, TT) {
  const dh = (sp.f_in - K_OUT * hh) / A;
  const dT = (sp.f_in * (T_IN - TT) + (sp.q - UA * (TT - T_AMB)) / RHO_CP) / (A * hh);
  return [dh, dT];
}

function rk4(dt) {
  const k1 = rhs(h, T);
  const k2 = rhs(h + dt / 2 * k1[0], T + dt / 2 * k1[1]);
  const k3 = rhs(h + dt / 2 * k2[0], T + dt / 2 * k2[1]);
  const k4 = rhs(h + dt * k3[0], T + dt * k3[1]);
  h += dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]);
  T += dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]);
}

(async () => {
  const server = new OPCUAServer({
    port: cfg.port, hostname: "127.0.0.1", allowAnonymous: true,
    securityModes: [MessageSecurityMode.None], securityPolicies: [SecurityPolicy.None],
    buildInfo: { productName: "rtompc interop tank PLC (node-opcua)" },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.registerNamespace(NS);
  const plcObj = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "PLC1",
                                nodeId: "s=PLC1" });
  const vars = {};

  function analog(id, eu, low, high, writable, initial) {
    const v = ns.addAnalogDataItem({
      componentOf: plcObj, browseName: id, nodeId: `s=PLC1.${id}`, dataType: "Double",
      engineeringUnits: eu, engineeringUnitsRange: { low, high },
      accessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
      userAccessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
      value: new Variant({ dataType: DataType.Double, value: initial }),
    });
    vars[id] = v;
    return v;
  }

  function plain(id, dataType, writable, initial) {
    const v = ns.addVariable({
      componentOf: plcObj, browseName: id, nodeId: `s=PLC1.${id}`, dataType,
      accessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
      userAccessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
      value: new Variant({ dataType: DataType[dataType], value: initial }),
    });
    vars[id] = v;
    return v;
  }

  analog("DB10.LT101", EU.cm, 0, 300, false, h * 100);
  analog("DB10.TT101", EU.degC, 0, 100, false, T - C0);
  analog("DB10.TT100", EU.degC, 0, 100, false, T_IN - C0);
  analog("DB20.FIC101_PV", EU.m3h, 0, 12, false, sp.f_in * 3600);
  analog("DB20.JQ101_PV", EU.kW, 0, 250, false, sp.q / 1e3);
  const fSp = analog("DB20.FIC101_SP", EU.m3h, 0, 12, true, sp.f_in * 3600);
  const qSp = analog("DB20.JQ101_SP", EU.kW, 0, 250, true, sp.q / 1e3);
  analog("DB30.T_PLANT", EU.s, 0, 1e12, false, 0.0);
  const hb = plain("DB30.HEARTBEAT", "UInt32", true, 0);
  plain("DB30.MODE", "Int32", false, 0);
  const modeReq = plain("DB30.MODE_REQ", "Int32", true, 0);
  plain("DB30.STATUS", "String", false, plc.status);
  const key = plain("DB30.KEY_LOCAL", "Boolean", true, plc.keyLocal);
  plain("DIAG.WRITES_OK", "UInt32", false, 0);
  plain("DIAG.WRITES_REFUSED_TS", "UInt32", false, 0);

  // Write guard: value-only DataValues, in the declared type, checked like a PLC would.
  function guard(variable, check) {
    const original = variable.writeAttribute.bind(variable);
    variable.writeAttribute = (context, writeValue, callback) => {
      const dv = writeValue.value;
      const reply = (code) => { if (callback) { callback(null, code); } return code; };
      if (dv.sourceTimestamp || dv.serverTimestamp || (dv.statusCode && dv.statusCode.value !== 0)) {
        plc.refusedTs += 1;
        return reply(StatusCodes.BadWriteNotSupported);
      }
      const code = check(dv.value);
      if (code !== StatusCodes.Good) {
        return reply(code);
      }
      plc.writesOk += 1;
      return original(context, writeValue, callback);
    };
  }

  function setpointCheck(lo, hi) {
    return (variant) => {
      if (variant.dataType !== DataType.Double) return StatusCodes.BadTypeMismatch;
      if (plc.mode !== 1) return StatusCodes.BadInvalidState;
      const x = variant.value;
      if (!Number.isFinite(x) || x < lo || x > hi) return StatusCodes.BadOutOfRange;
      return StatusCodes.Good;
    };
  }
  guard(fSp, setpointCheck(0, 12));
  guard(qSp, setpointCheck(0, 250));
  guard(hb, (variant) => {
    if (variant.dataType !== DataType.UInt32) return StatusCodes.BadTypeMismatch;
    if (variant.value !== plc.heartbeat) { plc.heartbeat = variant.value; plc.hbTime = tPlant; }
    return StatusCodes.Good;
  });
  guard(modeReq, (variant) => {
    if (variant.dataType !== DataType.Int32) return StatusCodes.BadTypeMismatch;
    if (variant.value === 1) {
      if (plc.keyLocal) return StatusCodes.BadInvalidState;
      if (plc.mode !== 1) plc.status = `REMOTE requested by client at plant time ${tPlant.toFixed(1)} s`;
      plc.mode = 1; plc.hbTime = tPlant; plc.tripped = false;
    } else if (variant.value === 0) {
      if (plc.mode !== 0) plc.status = `LOCAL requested by client at plant time ${tPlant.toFixed(1)} s`;
      plc.mode = 0;
    } else {
      return StatusCodes.BadOutOfRange;
    }
    return StatusCodes.Good;
  });

  guard(key, (variant) => {
    if (variant.dataType !== DataType.Boolean) return StatusCodes.BadTypeMismatch;
    plc.keyLocal = variant.value;
    if (plc.keyLocal && plc.mode === 1) {
      plc.mode = 0;
      plc.status = `LOCAL by key switch at plant time ${tPlant.toFixed(1)} s`;
    }
    return StatusCodes.Good;
  });

  function publish() {
    const set = (id, dataType, value) =>
      vars[id].setValueFromSource(new Variant({ dataType, value }), StatusCodes.Good, new Date());
    set("DB10.LT101", DataType.Double, h * 100);
    set("DB10.TT101", DataType.Double, T - C0);
    set("DB10.TT100", DataType.Double, T_IN - C0);
    set("DB20.FIC101_PV", DataType.Double, sp.f_in * 3600);
    set("DB20.JQ101_PV", DataType.Double, sp.q / 1e3);
    set("DB30.T_PLANT", DataType.Double, tPlant);
    set("DB30.MODE", DataType.Int32, plc.mode);
    set("DB30.STATUS", DataType.String, plc.status);
    set("DIAG.WRITES_OK", DataType.UInt32, plc.writesOk);
    set("DIAG.WRITES_REFUSED_TS", DataType.UInt32, plc.refusedTs);
  }

  function scan() {
    // the PLC takes its setpoints (in REMOTE they are the client's; in LOCAL they are held)
    if (plc.mode === 1) {
      sp.f_in = fSp.readValue().value.value / 3600;
      sp.q = qSp.readValue().value.value * 1e3;
      if (tPlant - plc.hbTime >= WATCHDOG) {
        plc.mode = 0; plc.tripped = true;
        plc.status = `watchdog tripped at plant time ${tPlant.toFixed(1)} s: heartbeat unchanged ` +
                     `for ${(tPlant - plc.hbTime).toFixed(1)} s; LOCAL, holding last values`;
      }
    }
    rk4(STEP);
    tPlant += STEP;
  }

  await server.start();
  const t0 = Date.now();
  const timer = setInterval(() => {
    const due = (Date.now() - t0) / 1000 * SPEED;
    while (tPlant + STEP <= due + 1e-9) scan();
    publish();
  }, Math.max(5, Math.min(100, 1000 * STEP / SPEED)));
  publish();
  process.stdout.write(`READY opc.tcp://127.0.0.1:${cfg.port}\n`);

  const stop = async () => {
    clearInterval(timer);
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
})().catch((err) => {
  process.stderr.write(`plc_server failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});

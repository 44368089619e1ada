// A strict PLC stand-in for rtompc's field tests: a node-opcua server that behaves like a
// Siemens S7-1500 (or Kepware in front of one) towards an OPC UA client, with a small
// process behind it so closed loops mean something.
//
// Usage:  node strict_plc.js CONFIG          CONFIG: a JSON file path or an inline JSON object
//   prints "READY opc.tcp://127.0.0.1:<port>" on stdout once listening; then reads one JSON
//   command per line on stdin and answers each with one line "REPLY <json>" (see COMMANDS).
//
// CONFIG keys (all optional but port):
//   port                TCP port on 127.0.0.1
//   speed               plant seconds per wall second (default 1)
//   step_s              scan / integration step, plant seconds (default 0.5)
//   watchdog_s          heartbeat watchdog, plant seconds without a heartbeat change in REMOTE
//                       before the PLC trips to LOCAL (default 30)
//   refuse_remote       false (default) | "silent" | "status": refuse every REMOTE request,
//                       silently (MODE_REQ write accepted, PLC stays LOCAL and says why in
//                       STATUS, as S7 handshakes do) or with BadInvalidState on the write
//   refuse_reason       text put into STATUS when refusing (default "operator key switch in LOCAL")
//   initial             {valve_pct, pump_rpm, heater_kw} setpoints at (re)start
//                       (defaults 50 %, 1000 r/min, 40 kW)
//   heater_max_kw       EURange high of the heater setpoint and its PV (default 80)
//   t_in_c              inlet temperature, degC (default 15)
//   ua_w_per_k          heat loss to 20 degC ambient, W/K (default 200)
//   stuck               list of MV names whose actuator is stuck from the start
//   start_remote        true: start in REMOTE (default false: LOCAL)
//   namespace           namespace URI (default "urn:rtompc:strict-plc")
//   detached            true: keep serving when stdin closes (default: stop, so a dead
//                       parent never leaves an orphan holding the port)
//
// Address space (namespace URI above, string NodeIds; every variable of DB1-DB3 is an
// AnalogItem with EngineeringUnits (UNECE) and EURange; access levels never include
// StatusWrite or TimestampWrite):
//   Objects/PLC                          s=PLC
//   DB1 process values, read-only
//     PLC.DB1.LT100      Double  cm      0..250    tank level
//     PLC.DB1.TT100      Double  degC    0..100    tank temperature
//     PLC.DB1.TT101      Double  degC    0..100    inlet temperature (measured disturbance)
//   DB2 setpoints, writable in REMOTE only (BadInvalidState in LOCAL), EURange enforced
//     (BadOutOfRange), declared type enforced (BadTypeMismatch)
//     PLC.DB2.XV100_SP   Float   %       0..100    outlet valve opening
//     PLC.DB2.P100_SP    Int16   r/min   0..1500   feed pump speed
//     PLC.DB2.JH100_SP   Double  kW      0..heater_max_kw   heater power
//     PLC.DB2.XV100_SP_ENG Float %       0..100    AccessLevel read+write, UserAccessLevel
//                                                  read-only (engineering login needed)
//   DB3 actuator feedback, read-only (first-order lags behind the setpoints: valve 2 s,
//     pump 3 s, heater 5 s; a stuck actuator freezes)
//     PLC.DB3.XV100_POS  Float   %       0..100    valve position
//     PLC.DB3.P100_PV    Int16   r/min   0..1500   pump speed (drive feedback)
//     PLC.DB3.JH100_PV   Double  kW      0..heater_max_kw   heater power
//   DB4 handshake
//     PLC.DB4.HEARTBEAT  UInt32  rw      controller heartbeat (watchdog counts changes)
//     PLC.DB4.MODE       Int32   r       0 LOCAL, 1 REMOTE
//     PLC.DB4.MODE_REQ   Int32   rw      1 asks for REMOTE, 0 for LOCAL; edge-triggered: each
//                                        write is one request, handled at the next scan
//     PLC.DB4.STATUS     String  r       why the mode is what it is ("LOCAL: heartbeat
//                                        watchdog tripped ...", "REMOTE: granted ...")
//     PLC.DB4.WD_TRIPPED Boolean r       the watchdog has tripped (cleared by a granted REMOTE)
//     PLC.DB4.T_PLANT    Double  s       plant clock; 0 at (re)start
//   DIAG counters, read-only UInt32: PLC.DIAG.WRITES_OK, PLC.DIAG.WRITES_REFUSED_TS (writes
//     carrying a source/server timestamp or a status code: BadWriteNotSupported),
//     PLC.DIAG.WRITES_REFUSED (every other refused write)
//
// Process (SI inside): a tank with a feed pump, an outlet valve and a heater
//   A dh/dt     = K_P n - K_V v sqrt(h)                                   level h [m]
//   A h dT/dt   = K_P n (T_in - T) + (q - UA (T - T_amb)) / RHO_CP        temperature T [K]
// n pump speed [1/s], v valve opening [0..1], q heater power [W] are the actuator
// positions (not the setpoints). A = 0.1 m^2, K_P = 7.2e-5 m^3, K_V = 2.4e-3 m^2.5/s,
// RHO_CP = 4.18e6 J/(m^3 K), T_amb = 20 degC. RK4 at step_s, paced at `speed`.
// The plant starts in steady state at the initial setpoints.
//
// COMMANDS (stdin, one JSON object per line; the reply always carries the full state):
//   {"cmd": "state"}
//   {"cmd": "refuse_remote", "how": "silent"|"status"|false, "reason": "..."}
//   {"cmd": "local", "reason": "..."}        the operator takes the plant to LOCAL
//   {"cmd": "trip_watchdog"}                 trip now, as if the heartbeat had stopped
//   {"cmd": "reset"}                         PLC program restart: defaults, LOCAL, clock 0
//                                            (the OPC UA server and its sessions stay up)
//   {"cmd": "stick", "mv": "valve"|"pump"|"heater", "on": true|false}
//   {"cmd": "set_t_in", "value_c": 18.0}     inlet temperature step
"use strict";

const fs = require("fs");
const readline = require("readline");
const { OPCUAServer } = require("node-opcua-server");
const { DataType, Variant, StatusCodes, MessageSecurityMode, SecurityPolicy } = require("node-opcua-client");
const { standardUnits } = require("node-opcua-data-access");

const arg = process.argv[2] || "{}";
const cfg = JSON.parse(arg.trim().startsWith("{") ? arg : fs.readFileSync(arg, "utf8"));
const NS = cfg.namespace || "urn:rtompc:strict-plc";
const SPEED = cfg.speed || 1.0;
const STEP = cfg.step_s || 0.5;
const WATCHDOG = cfg.watchdog_s || 30.0;
const HEATER_MAX = cfg.heater_max_kw === undefined ? 80.0 : cfg.heater_max_kw;
const A = 0.1, K_P = 7.2e-5, K_V = 2.4e-3, RHO_CP = 4.18e6, C0 = 273.15, T_AMB = 20.0 + C0;
const UA = cfg.ua_w_per_k === undefined ? 200.0 : cfg.ua_w_per_k;
const init = cfg.initial || {};
const DEFAULT_SP = {
  valve: init.valve_pct === undefined ? 50.0 : init.valve_pct,
  pump: init.pump_rpm === undefined ? 1000 : init.pump_rpm,
  heater: init.heater_kw === undefined ? 40.0 : init.heater_kw,
};
const TAU = { valve: 2.0, pump: 3.0, heater: 5.0 };
const MVS = ["valve", "pump", "heater"];

// PLC state (engineering units for setpoints/positions, SI for the process)
let plc, proc, tPlant, t0;
let tIn = (cfg.t_in_c === undefined ? 15.0 : cfg.t_in_c) + C0;
let refuse = cfg.refuse_remote || false;
let refuseReason = cfg.refuse_reason || "operator key switch in LOCAL";
const stuck = new Set(cfg.stuck || []);

function log(msg) { process.stderr.write(`[strict-plc t=${tPlant.toFixed(2)}] ${msg}\n`); }

function siInputs(pos) {
  return { n: pos.pump / 60.0, v: pos.valve / 100.0, q: pos.heater * 1e3 };
}

function steady(pos) {
  const u = siInputs(pos);
  const fin = K_P * u.n;
  const h = u.v > 0 ? Math.pow(fin / (K_V * u.v), 2) : 2.5;
  const T = (RHO_CP * fin * tIn + UA * T_AMB + u.q) / (RHO_CP * fin + UA);
  return { h: Math.min(h, 2.5), T };
}

function reset(why) {
  const sp = { ...DEFAULT_SP };
  plc = { mode: cfg.start_remote ? 1 : 0, request: null, heartbeat: 0, hbTime: 0.0, tripped: false,
          status: cfg.start_remote ? `REMOTE at start` : `LOCAL: ${why}`,
          sp, pos: { ...sp }, writesOk: 0, refusedTs: 0, refused: 0 };
  const ss = steady(plc.pos);
  proc = { h: ss.h, T: ss.T };
  tPlant = 0.0;
  t0 = Date.now();
}
tPlant = 0.0;
reset("start at defaults");

function rhs(h, T, u) {
  const hh = Math.max(h, 1e-4);
  const fin = K_P * u.n;
  const dh = (fin - K_V * u.v * Math.sqrt(hh)) / A;
  const dT = (fin * (tIn - T) + (u.q - UA * (T - T_AMB)) / RHO_CP) / (A * hh);
  return [dh, dT];
}

function rk4(dt) {
  const u = siInputs(plc.pos);
  const { h, T } = proc;
  const k1 = rhs(h, T, u);
  const k2 = rhs(h + dt / 2 * k1[0], T + dt / 2 * k1[1], u);
  const k3 = rhs(h + dt / 2 * k2[0], T + dt / 2 * k2[1], u);
  const k4 = rhs(h + dt * k3[0], T + dt * k3[1], u);
  proc.h = Math.max(1e-4, h + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]));
  proc.T = T + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]);
}

function trip(idle) {
  plc.mode = 0; plc.tripped = true;
  for (const mv of MVS) plc.sp[mv] = mv === "pump" ? Math.round(plc.pos[mv]) : plc.pos[mv];
  plc.status = `LOCAL: heartbeat watchdog tripped at plant time ${tPlant.toFixed(1)} s ` +
               `(heartbeat unchanged for ${idle.toFixed(1)} s, timeout ${WATCHDOG} s); holding last values`;
  log(plc.status);
}

function scan() {
  if (plc.request === 1 && plc.mode !== 1) {
    if (refuse) {
      plc.status = `LOCAL: REMOTE refused: ${refuseReason}`;
      log(plc.status);
    } else {
      plc.mode = 1; plc.hbTime = tPlant; plc.tripped = false;
      plc.status = `REMOTE: granted at plant time ${tPlant.toFixed(1)} s`;
      log(plc.status);
    }
  } else if (plc.request === 0 && plc.mode !== 0) {
    plc.mode = 0;
    plc.status = `LOCAL: requested by the controller at plant time ${tPlant.toFixed(1)} s`;
    log(plc.status);
  }
  plc.request = null;
  if (plc.mode === 1 && tPlant - plc.hbTime >= WATCHDOG) trip(tPlant - plc.hbTime);
  for (const mv of MVS) {
    if (!stuck.has(mv)) plc.pos[mv] += (plc.sp[mv] - plc.pos[mv]) * (1 - Math.exp(-STEP / TAU[mv]));
  }
  rk4(STEP);
  tPlant += STEP;
}

function state() {
  return { t_plant_s: tPlant, mode: plc.mode, status: plc.status, tripped: plc.tripped,
           heartbeat: plc.heartbeat, sp: { ...plc.sp }, pos: { ...plc.pos },
           level_m: proc.h, t_tank_c: proc.T - C0, t_in_c: tIn - C0, stuck: [...stuck],
           refuse_remote: refuse, writes_ok: plc.writesOk, refused_ts: plc.refusedTs,
           refused: plc.refused };
}

(async () => {
  const server = new OPCUAServer({
    port: cfg.port, hostname: "127.0.0.1", allowAnonymous: true,
    securityModes: [MessageSecurityMode.None], securityPolicies: [SecurityPolicy.None],
    buildInfo: { productName: "rtompc strict PLC stand-in (node-opcua)" },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.registerNamespace(NS);
  const plcObj = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "PLC",
                                nodeId: "s=PLC" });
  const vars = {};
  const RW = "CurrentRead | CurrentWrite";   // never StatusWrite / TimestampWrite
  const RO = "CurrentRead";

  function analog(id, dataType, eu, low, high, access, userAccess, initial) {
    const v = ns.addAnalogDataItem({
      componentOf: plcObj, browseName: id, nodeId: `s=PLC.${id}`, dataType,
      engineeringUnits: eu, engineeringUnitsRange: { low, high },
      accessLevel: access, userAccessLevel: userAccess,
      value: new Variant({ dataType: DataType[dataType], value: initial }),
    });
    vars[id] = { node: v, dataType: DataType[dataType], low, high };
    return v;
  }

  function plain(id, dataType, access, initial) {
    const v = ns.addVariable({
      componentOf: plcObj, browseName: id, nodeId: `s=PLC.${id}`, dataType,
      accessLevel: access, userAccessLevel: access,
      value: new Variant({ dataType: DataType[dataType], value: initial }),
    });
    vars[id] = { node: v, dataType: DataType[dataType] };
    return v;
  }

  const U = standardUnits;
  analog("DB1.LT100", "Double", U.centimetre, 0, 250, RO, RO, proc.h * 100);
  analog("DB1.TT100", "Double", U.degree_celsius, 0, 100, RO, RO, proc.T - C0);
  analog("DB1.TT101", "Double", U.degree_celsius, 0, 100, RO, RO, tIn - C0);
  const SP = {
    valve: analog("DB2.XV100_SP", "Float", U.percent, 0, 100, RW, RW, plc.sp.valve),
    pump: analog("DB2.P100_SP", "Int16", U.revolutions_per_minute, 0, 1500, RW, RW, plc.sp.pump),
    heater: analog("DB2.JH100_SP", "Double", U.kilowatt, 0, HEATER_MAX, RW, RW, plc.sp.heater),
  };
  const SP_ID = { valve: "DB2.XV100_SP", pump: "DB2.P100_SP", heater: "DB2.JH100_SP" };
  analog("DB2.XV100_SP_ENG", "Float", U.percent, 0, 100, RW, RO, plc.sp.valve);
  analog("DB3.XV100_POS", "Float", U.percent, 0, 100, RO, RO, plc.pos.valve);
  analog("DB3.P100_PV", "Int16", U.revolutions_per_minute, 0, 1500, RO, RO, plc.pos.pump);
  analog("DB3.JH100_PV", "Double", U.kilowatt, 0, HEATER_MAX, RO, RO, plc.pos.heater);
  const hb = plain("DB4.HEARTBEAT", "UInt32", RW, 0);
  plain("DB4.MODE", "Int32", RO, plc.mode);
  const modeReq = plain("DB4.MODE_REQ", "Int32", RW, 0);
  plain("DB4.STATUS", "String", RO, plc.status);
  plain("DB4.WD_TRIPPED", "Boolean", RO, false);
  plain("DB4.T_PLANT", "Double", RO, 0.0);
  plain("DIAG.WRITES_OK", "UInt32", RO, 0);
  plain("DIAG.WRITES_REFUSED_TS", "UInt32", RO, 0);
  plain("DIAG.WRITES_REFUSED", "UInt32", RO, 0);

  // Write guard, node by node (each WriteValue of a batch gets its own status code).
  function guard(id, check) {
    const variable = vars[id].node;
    const declared = vars[id].dataType;
    const original = variable.writeAttribute.bind(variable);
    variable.writeAttribute = (context, writeValue, callback) => {
      const dv = writeValue.value;
      const reply = (code) => {
        if (code !== StatusCodes.Good) {
          log(`write to ${id} refused: ${code.name}`);
        }
        if (callback) { callback(null, code); }
        return code;
      };
      if (dv.sourceTimestamp || dv.serverTimestamp || (dv.statusCode && dv.statusCode.value !== 0)) {
        plc.refusedTs += 1;
        return reply(StatusCodes.BadWriteNotSupported);
      }
      const variant = dv.value;
      if (!variant || variant.dataType !== declared || variant.arrayType) {
        plc.refused += 1;
        return reply(StatusCodes.BadTypeMismatch);
      }
      const code = check ? check(variant.value) : StatusCodes.BadNotWritable;
      if (code !== StatusCodes.Good) {
        plc.refused += 1;
        return reply(code);
      }
      plc.writesOk += 1;
      return original(context, writeValue, callback);
    };
  }

  for (const mv of MVS) {
    const { low, high } = vars[SP_ID[mv]];
    guard(SP_ID[mv], (x) => {
      if (!Number.isFinite(x) || x < low || x > high) return StatusCodes.BadOutOfRange;
      if (plc.mode !== 1) return StatusCodes.BadInvalidState;
      plc.sp[mv] = x;
      return StatusCodes.Good;
    });
  }
  guard("DB2.XV100_SP_ENG", () => StatusCodes.BadUserAccessDenied);
  guard("DB4.HEARTBEAT", (x) => {
    if (x !== plc.heartbeat) { plc.heartbeat = x; plc.hbTime = tPlant; }
    return StatusCodes.Good;
  });
  guard("DB4.MODE_REQ", (x) => {
    if (x !== 0 && x !== 1) return StatusCodes.BadOutOfRange;
    if (x === 1 && refuse === "status") {
      plc.status = `LOCAL: REMOTE refused: ${refuseReason}`;
      publish();
      return StatusCodes.BadInvalidState;
    }
    plc.request = x;
    return StatusCodes.Good;
  });

  function publish() {
    const set = (id, value) => {
      const v = vars[id];
      v.node.setValueFromSource(new Variant({ dataType: v.dataType, value }), StatusCodes.Good, new Date());
    };
    set("DB1.LT100", proc.h * 100);
    set("DB1.TT100", proc.T - C0);
    set("DB1.TT101", tIn - C0);
    set("DB3.XV100_POS", plc.pos.valve);
    set("DB3.P100_PV", Math.round(plc.pos.pump));
    set("DB3.JH100_PV", plc.pos.heater);
    if (plc.mode !== 1) {   // in LOCAL the PLC's own (held) setpoints are what the nodes show
      set("DB2.XV100_SP", plc.sp.valve);
      set("DB2.P100_SP", Math.round(plc.sp.pump));
      set("DB2.JH100_SP", plc.sp.heater);
    }
    set("DB2.XV100_SP_ENG", plc.sp.valve);
    set("DB4.MODE", plc.mode);
    set("DB4.STATUS", plc.status);
    set("DB4.WD_TRIPPED", plc.tripped);
    set("DB4.T_PLANT", tPlant);
    set("DIAG.WRITES_OK", plc.writesOk);
    set("DIAG.WRITES_REFUSED_TS", plc.refusedTs);
    set("DIAG.WRITES_REFUSED", plc.refused);
  }

  function tick() {
    const due = (Date.now() - t0) / 1000 * SPEED;
    while (tPlant + STEP <= due + 1e-9) scan();
    publish();
  }

  function command(c) {
    switch (c.cmd) {
      case "state": break;
      case "refuse_remote":
        refuse = c.how === undefined ? "silent" : c.how;
        if (c.reason) refuseReason = c.reason;
        log(`refuse_remote = ${refuse}`);
        break;
      case "local":
        plc.mode = 0;
        plc.status = `LOCAL: ${c.reason || "taken by the operator"} at plant time ${tPlant.toFixed(1)} s`;
        log(plc.status);
        break;
      case "trip_watchdog": trip(tPlant - plc.hbTime); break;
      case "reset":
        reset("restart at defaults");
        log("PLC program restart at defaults, clock reset");
        break;
      case "stick":
        if (!MVS.includes(c.mv)) throw new Error(`unknown mv ${c.mv}; known: ${MVS.join(", ")}`);
        if (c.on === false) stuck.delete(c.mv); else stuck.add(c.mv);
        log(`actuator ${c.mv} ${c.on === false ? "free" : "stuck"}`);
        break;
      case "set_t_in": tIn = c.value_c + C0; break;
      default: throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
    }
    publish();
    return state();
  }

  await server.start();
  t0 = Date.now() - tPlant / SPEED * 1000;
  const timer = setInterval(tick, Math.max(5, Math.min(50, 1000 * STEP / SPEED)));
  publish();
  process.stdout.write(`READY opc.tcp://127.0.0.1:${cfg.port}\n`);

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    if (!line.trim()) return;
    let reply;
    try {
      tick();
      reply = { ok: true, state: command(JSON.parse(line)) };
    } catch (err) {
      reply = { ok: false, error: String(err && err.message ? err.message : err) };
    }
    process.stdout.write(`REPLY ${JSON.stringify(reply)}\n`);
  });

  const stop = async () => {
    clearInterval(timer);
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // the parent (a test) went away: do not linger as an orphan holding the port
  rl.on("close", () => { if (!cfg.detached) stop(); });
})().catch((err) => {
  process.stderr.write(`strict_plc failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});

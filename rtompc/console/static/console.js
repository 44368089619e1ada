// rtompc web console: trends (uPlot), status, controls and journal of one unit at a time;
// the unit selector shows every unit's mode and link (a site-wide stream, /api/events).
// Frames arrive over Server-Sent Events; writes go to /api/units/<unit>/submit with the
// session's CSRF token; the server (LiveParameters) decides and says why it refuses.
"use strict";
(function () {
  const body = document.body;
  const ROLE = body.dataset.role, CSRF = body.dataset.csrf;
  const RANK = { viewer: 0, operator: 1, engineer: 2 };
  const KEEP = 600;                       // frames shown in the trends
  const MIN_REDRAW_MS = 900;              // redraw at most about once a second (frames are kept)
  const COLORS = { measured: "#1d4ed8", estimate: "#60a5fa", target: "#15803d",
                   low: "#dc2626", high: "#dc2626", prediction: "#f59e0b", planned: "#f59e0b" };
  let units = [], unit = null, frames = [], charts = {}, source = null, scale = 60, scaleName = "min";
  const dirty = new Set();                // inputs the user is editing (not overwritten)
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const fmt = (v, d) => (v === null || v === undefined) ? "-" :
    (typeof v === "number" ? (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(d === undefined ? 4 : d)) : String(v));

  function message(text, kind) {
    const m = $("message");
    m.textContent = text;
    m.className = kind || "";
  }

  async function submit(key, value) {
    const r = await fetch(`/api/units/${encodeURIComponent(unit.name)}/submit`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify({ key: key, value: value }),
    });
    let answer = {};
    try { answer = await r.json(); } catch (e) { answer = { message: `HTTP ${r.status}` }; }
    if (r.ok && answer.ok) {
      message(answer.message, "accepted");
      return true;
    }
    message(`refused (${answer.reason || r.status}): ${answer.message || answer.error}`, "refused");
    return false;
  }

  function numberInput(id, key, needed, title) {
    const wrap = el("span");
    const input = el("input", { type: "number", step: "any", id: id, "data-key": key });
    const button = el("button", { id: id + "-set", class: "set" }, "set");
    const allowed = RANK[ROLE] >= RANK[needed];
    if (!allowed) {
      input.disabled = true; button.disabled = true;
      input.title = button.title = `needs role ${needed} (you are ${ROLE})`;
    }
    input.addEventListener("input", () => dirty.add(id));
    const go = async () => {
      const raw = input.value.trim();
      const value = raw === "" ? (key.endsWith(".low") ? "-inf" : key.endsWith(".high") ? "inf" : null) : Number(raw);
      if (await submit(key, value)) dirty.delete(id);
    };
    button.addEventListener("click", go);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
    wrap.append(title + " ", input, button);
    return el("label").appendChild(wrap).parentNode;
  }

  function checkbox(id, key, title) {
    const label = el("label");
    const box = el("input", { type: "checkbox", id: id, "data-key": key });
    if (RANK[ROLE] < RANK.operator) { box.disabled = true; box.title = `needs role operator (you are ${ROLE})`; }
    box.addEventListener("change", async () => {
      const want = box.checked;
      if (!(await submit(key, want))) box.checked = !want;
    });
    label.append(box, " " + title);
    return label;
  }

  function chart(container, title, unitText, series) {
    const opts = {
      title: `${title} [${unitText}]`, width: 620, height: 190,
      scales: { x: { time: false } },
      axes: [{ label: `plant time [${scaleName}]` }, {}],
      series: [{ label: "t" }].concat(series.map((s) => ({
        label: s.label, stroke: s.color, width: s.width || 1.5, dash: s.dash,
        spanGaps: false, points: { show: false },
      }))),
    };
    const data = [[]].concat(series.map(() => []));
    return new uPlot(opts, data, container);
  }

  function buildUnit() {
    const cvs = $("cvs"), mvs = $("mvs");
    cvs.textContent = ""; mvs.textContent = "";
    dirty.clear();                          // the inputs are new (another unit may share names)
    for (const c of Object.values(charts)) c.destroy();
    charts = {};
    for (const cv of unit.cvs) {
      const row = el("div", { class: "signal", id: `cv-${cv.name}` });
      const plot = el("div");
      const ctl = el("div", { class: "controls" });
      ctl.append(el("h3", {}, `${cv.name} [${cv.unit}]`),
        el("div", { class: "values", id: `cv-${cv.name}-values` }),
        numberInput(`cv-${cv.name}-low`, `cv.${cv.name}.low`, "operator", "low"),
        numberInput(`cv-${cv.name}-high`, `cv.${cv.name}.high`, "operator", "high"), el("br"),
        numberInput(`cv-${cv.name}-setpoint`, `cv.${cv.name}.setpoint`, "operator", "setpoint"), el("br"),
        checkbox(`cv-${cv.name}-in_service`, `cv.${cv.name}.in_service`, "in service"));
      const weight = numberInput(`cv-${cv.name}-weight`, `cv.${cv.name}.weight`, "engineer", "weight");
      if (RANK[ROLE] < RANK.engineer) weight.classList.add("hidden");
      ctl.append(el("br"), weight);
      row.append(plot, ctl);
      cvs.append(row);
      charts[`cv:${cv.name}`] = chart(plot, cv.name, cv.unit, [
        { label: "measured", color: COLORS.measured },
        { label: "estimate", color: COLORS.estimate, dash: [4, 3] },
        { label: "target", color: COLORS.target, dash: [8, 4] },
        { label: "low", color: COLORS.low, width: 1 },
        { label: "high", color: COLORS.high, width: 1 },
        { label: "prediction", color: COLORS.prediction, width: 2 },
      ]);
    }
    for (const mv of unit.mvs) {
      const row = el("div", { class: "signal", id: `mv-${mv.name}` });
      const plot = el("div");
      const ctl = el("div", { class: "controls" });
      ctl.append(el("h3", {}, `${mv.name} [${mv.unit}]`),
        el("div", { class: "values", id: `mv-${mv.name}-values` }),
        numberInput(`mv-${mv.name}-low`, `mv.${mv.name}.low`, "operator", "low"),
        numberInput(`mv-${mv.name}-high`, `mv.${mv.name}.high`, "operator", "high"), el("br"),
        checkbox(`mv-${mv.name}-in_service`, `mv.${mv.name}.in_service`, "in service"));
      row.append(plot, ctl);
      mvs.append(row);
      charts[`mv:${mv.name}`] = chart(plot, mv.name, mv.unit, [
        { label: "held", color: COLORS.measured },
        { label: "low", color: COLORS.low, width: 1 },
        { label: "high", color: COLORS.high, width: 1 },
        { label: "planned", color: COLORS.planned, width: 2 },
      ]);
    }
  }

  function setInput(id, value) {
    const input = $(id);
    if (!input || dirty.has(id) || document.activeElement === input) return;
    input.value = (value === null || value === undefined) ? "" : String(value);
  }

  function series(pick, latest, future) {
    // history values, then the last value held (or a trajectory) over the future points
    const hist = frames.map(pick);
    const ahead = future ? future : new Array(latestFutureLen).fill(pick(latest));
    return hist.concat(ahead);
  }
  let latestFutureLen = 0;

  const stats = { renders: 0, renderMs: 0 };   // read by the tests and the benchmark
  window.rtompcConsole = stats;

  let lastDraw = -1e9, trailing = null;
  function render() {
    // Draw when a frame arrives (the loop is between cycles then), at most once per
    // MIN_REDRAW_MS and never while the tab is hidden: painting costs the browser far more
    // than the script. A frame skipped by the limit is drawn by a later frame, or by the
    // trailing timer when no frame follows (the loop stopped).
    if (trailing !== null) { clearTimeout(trailing); trailing = null; }
    if (document.hidden) return;
    const now = performance.now();
    if (now - lastDraw < MIN_REDRAW_MS) {
      trailing = setTimeout(render, 2 * MIN_REDRAW_MS);
      return;
    }
    lastDraw = now;
    draw();
    stats.renders += 1;
    stats.renderMs += performance.now() - now;
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) render(); });

  function draw() {
    if (!frames.length) return;
    const f = frames[frames.length - 1];
    const xs = frames.map((g) => g.time_s / scale);
    // future points: the latest frame's prediction after now
    const cv0 = f.cvs.find((c) => c.prediction.times_s.length > 1);
    const mv0 = f.mvs.find((m) => m.planned.times_s.length > 1);
    const futureT = cv0 ? cv0.prediction.times_s.slice(1) : (mv0 ? mv0.planned.times_s.slice(1) : []);
    latestFutureLen = futureT.length;
    const x = xs.concat(futureT.map((t) => t / scale));
    const nullsHist = (n) => new Array(n).fill(null);
    for (const [i, cv] of f.cvs.entries()) {
      const c = charts[`cv:${cv.name}`];
      if (!c) continue;
      const pick = (name) => (g) => g.cvs[i][name];
      const pred = nullsHist(frames.length - 1).concat([cv.prediction.values[0] ?? cv.estimate])
        .concat(cv.prediction.values.slice(1, 1 + latestFutureLen));
      while (pred.length < x.length) pred.push(null);
      c.setData([x,
        frames.map(pick("measured")).concat(nullsHist(latestFutureLen)),
        frames.map(pick("estimate")).concat(nullsHist(latestFutureLen)),
        series(pick("target"), f), series(pick("low"), f), series(pick("high"), f), pred]);
      setText($(`cv-${cv.name}-values`),
        `measured ${fmt(cv.measured)}  target ${fmt(cv.target)}  end of horizon ${fmt(cv.prediction_end)}  ` +
        `limits [${fmt(cv.low)}, ${fmt(cv.high)}]  validity [${fmt(cv.validity_low)}, ${fmt(cv.validity_high)}]  ` +
        `weight ${fmt(cv.weight, 3)}  ${cv.in_service ? "in service" : "OUT OF SERVICE"}  quality ${cv.quality}`);
      setInput(`cv-${cv.name}-low`, cv.low); setInput(`cv-${cv.name}-high`, cv.high);
      setInput(`cv-${cv.name}-setpoint`, cv.setpoint); setInput(`cv-${cv.name}-weight`, cv.weight);
      const box = $(`cv-${cv.name}-in_service`); if (box) box.checked = cv.in_service;
    }
    for (const [i, mv] of f.mvs.entries()) {
      const c = charts[`mv:${mv.name}`];
      if (!c) continue;
      const pick = (name) => (g) => g.mvs[i][name];
      const planned = nullsHist(frames.length - 1).concat([mv.value])
        .concat(mv.planned.values.slice(1, 1 + latestFutureLen));
      while (planned.length < x.length) planned.push(null);
      c.setData([x, frames.map(pick("value")).concat(nullsHist(latestFutureLen)),
        series(pick("low"), f), series(pick("high"), f), planned]);
      setText($(`mv-${mv.name}-values`),
        `held ${fmt(mv.value)}  computed ${fmt(mv.computed)}  written ${fmt(mv.written)}  ` +
        `limits [${fmt(mv.low)}, ${fmt(mv.high)}]  rate ${fmt(mv.rate)}/s  ` +
        `${mv.in_service ? "in service" : "OUT OF SERVICE"}  health ${mv.health}  write ${mv.write_status}`);
      setInput(`mv-${mv.name}-low`, mv.low); setInput(`mv-${mv.name}-high`, mv.high);
      const box = $(`mv-${mv.name}-in_service`); if (box) box.checked = mv.in_service;
    }
    setText($("mode"), f.mode.toUpperCase());
    setText($("mode-request"), f.mode_request.toUpperCase());
    for (const b of document.querySelectorAll("button.mode")) b.classList.toggle("active", b.dataset.mode === f.mode);
    const s = f.status;
    kv("status", [["cycle", f.cycle], ["plant time", `${fmt(f.time_s / scale, 2)} ${scaleName}`],
      ["link", f.connected ? "connected" : "DISCONNECTED"], ["plant mode", f.plant_mode || "-"],
      ["solver", `${s.solver || "-"} ${s.solver_status}`], ["solve time", `${fmt(s.solve_time_s * 1e3, 1)} ms`],
      ["cycle time", `${fmt(s.cycle_time_s * 1e3, 1)} ms`], ["write", s.write_status],
      ["fallbacks", s.fallbacks], ["overruns", s.overruns],
      ["service factor", `${fmt(100 * s.service_factor, 1)} %`], ["flags", s.flags.join(", ") || "-"],
      ["events", s.events.join("; ") || "-"]]);
    kv("rto-status", [["enabled", f.rto.enabled ? "yes" : "no"], ["status", f.rto.status || "-"],
      ["last profit", fmt(f.rto.last_profit, 2)], ["active constraints", f.rto.active_constraints.join(", ") || "-"],
      ["targets", f.cvs.map((c) => `${c.name} ${fmt(c.target)}`).join(", ")]]);
  }

  function kv(id, rows) {
    // rows keep their elements; only changed texts are touched (less layout and paint)
    const t = $(id);
    for (const [k, v] of rows) {
      const rid = `${id}-${k.replace(/ /g, "_")}`;
      let tr = $(rid);
      if (!tr) {
        tr = el("tr", { id: rid });
        tr.append(el("td", {}, k), el("td", {}, ""));
        t.append(tr);
      }
      setText(tr.cells[1], String(v));
    }
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function addJournal(entry) {
    const tb = $("journal").tBodies[0];
    const tr = el("tr", { class: entry.outcome === "accepted" ? "accepted" : "refused" });
    const when = new Date(entry.wall_time_s * 1000).toLocaleTimeString();
    for (const v of [when, entry.unit, entry.user, entry.role, entry.source, entry.key, fmt(entry.old), fmt(entry.new), entry.outcome])
      tr.append(el("td", {}, String(v)));
    tb.insertBefore(tr, tb.firstChild);
  }

  function openUnit(name) {
    // One stream per unit page. On every (re)connect the server sends "hello", then the
    // last KEEP frames ("history") and the kept journal, then each new frame and change:
    // subscribing and the backlog are one step on the server, so no frame or change falls
    // between them, and a reconnect fills the frames missed meanwhile.
    unit = units.find((u) => u.name === name);
    if (source) { source.close(); source = null; }
    if (trailing !== null) { clearTimeout(trailing); trailing = null; }
    frames = [];
    scale = unit.sample_time_s >= 30 ? 3600 : 60; scaleName = scale === 3600 ? "h" : "min";
    buildUnit();
    $("journal").tBodies[0].textContent = "";
    const es = new EventSource(`/api/units/${encodeURIComponent(name)}/events?last=${KEEP}`);
    source = es;
    es.addEventListener("hello", () => {
      if (es !== source) return;
      $("journal").tBodies[0].textContent = "";   // the kept journal follows
      $("conn").textContent = "live"; $("conn").className = "badge ok";
    });
    es.addEventListener("history", (ev) => {
      if (es !== source) return;
      frames = JSON.parse(ev.data);          // the server's frames replace what the page had
      lastDraw = -1e9;
      render();
    });
    es.addEventListener("frame", (ev) => {
      if (es !== source) return;
      const f = JSON.parse(ev.data);
      if (f.unit !== unit.name) return;
      if (frames.length && f.cycle <= frames[frames.length - 1].cycle) return;
      frames.push(f);
      if (frames.length > KEEP) frames.splice(0, frames.length - KEEP);
      render();
    });
    es.addEventListener("journal", (ev) => { if (es === source) addJournal(JSON.parse(ev.data)); });
    es.onerror = () => { if (es === source) { $("conn").textContent = "reconnecting"; $("conn").className = "badge bad"; } };
  }

  function unitState(s) {
    // one option of the selector: the unit's name, mode and link (from /api/units, then pushed)
    const opt = document.querySelector(`#unit option[value="${CSS.escape(s.unit)}"]`);
    if (!opt) return;
    const link = s.connected === false ? " - link lost" : "";
    const text = s.mode ? `${s.unit} (${s.mode.toUpperCase()})${link}` : s.unit;
    if (opt.textContent !== text) opt.textContent = text;
    opt.dataset.connected = String(s.connected);
  }

  async function main() {
    const r = await fetch("/api/units", { credentials: "same-origin" });
    if (r.status === 401) { window.location = "/login"; return; }
    units = (await r.json()).units;
    const sel = $("unit");
    for (const u of units) { sel.append(el("option", { value: u.name }, u.name)); if (u.state) unitState(u.state); }
    sel.addEventListener("change", () => openUnit(sel.value));
    const site = new EventSource("/api/events");
    site.addEventListener("unit", (ev) => unitState(JSON.parse(ev.data)));
    for (const b of document.querySelectorAll("button.mode")) {
      if (RANK[ROLE] < RANK.operator) { b.disabled = true; b.title = `needs role operator (you are ${ROLE})`; }
      b.addEventListener("click", () => submit("controller.mode_request", b.dataset.mode));
    }
    if (units.length) openUnit(units[0].name);
  }
  main();
})();

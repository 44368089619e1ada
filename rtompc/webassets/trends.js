/* rtompc trends: uPlot charts of CVs, MVs and status, shared by `rtompc report` and the web
 * console. Needs uPlot 1.6.32 (uPlot.iife.min.js) loaded first; defines window.RtompcTrends.
 *
 *   RtompcTrends.makeChart(el, {
 *     title: "CV t_r",
 *     x: [...],                                   // seconds (engine time) or unix seconds
 *     series: [{label: "measured", values: [...], role: "meas"}, ...],
 *     markers: [{x: 120, label: "cv.t_r.high 413 -> 410"}],   // optional: vertical lines
 *     now: 300,                                   // optional: a "now" line (predictions after it)
 *     unixTime: false, height: 220,
 *     sync: "rtompc",                             // charts with one key share cursor and x zoom
 *   })  -> the uPlot instance
 *   RtompcTrends.append(chart, x, ys, maxPoints)  // live: add one point per series, drop oldest
 *
 * Roles pick the style: meas, target, low, high, pred (dashed), computed, requested, written,
 * readback, measured, flag (stepped 0/1), anything else a palette colour. null is a gap.
 */
(function (root) {
  "use strict";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22", "#d62728"];
  var ROLES = {
    meas: {stroke: "#1f77b4", width: 1.5},
    target: {stroke: "#2ca02c", width: 1.5, dash: [6, 4], step: true},
    low: {stroke: "#d62728", width: 1.2, step: true},
    high: {stroke: "#d62728", width: 1.2, step: true},
    pred: {stroke: "#9467bd", width: 1.5, dash: [3, 3]},
    computed: {stroke: "#ff7f0e", width: 1, step: true},
    requested: {stroke: "#8c564b", width: 1, step: true},
    written: {stroke: "#1f77b4", width: 1.5, step: true},
    readback: {stroke: "#17becf", width: 1, dash: [2, 2], step: true},
    measured: {stroke: "#7f7f7f", width: 1},
    flag: {width: 1, step: true}
  };

  function fmtSeconds(s) {
    if (s == null || !isFinite(s)) { return ""; }
    var neg = s < 0, a = Math.abs(s);
    var d = Math.floor(a / 86400), h = Math.floor((a % 86400) / 3600);
    var m = Math.floor((a % 3600) / 60), sec = a % 60;
    var pad = function (v) { return (v < 10 ? "0" : "") + v; };
    var secText = sec % 1 === 0 ? pad(sec) : (sec < 10 ? "0" : "") + sec.toFixed(1);
    var out = (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + secText;
    return (neg ? "-" : "") + out;
  }

  function markersPlugin(markers, now) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
          ctx.save();
          ctx.lineWidth = 1;
          (markers || []).forEach(function (mk) {
            if (mk.x == null) { return; }
            var px = u.valToPos(mk.x, "x", true);
            if (px < u.bbox.left || px > u.bbox.left + u.bbox.width) { return; }
            ctx.strokeStyle = mk.color || "rgba(214,39,40,0.6)";
            ctx.setLineDash([4, 3]);
            ctx.beginPath(); ctx.moveTo(px, top); ctx.lineTo(px, top + height); ctx.stroke();
          });
          if (now != null) {
            var pn = u.valToPos(now, "x", true);
            ctx.strokeStyle = "rgba(0,0,0,0.5)";
            ctx.setLineDash([]);
            ctx.beginPath(); ctx.moveTo(pn, top); ctx.lineTo(pn, top + height); ctx.stroke();
          }
          ctx.restore();
        }]
      }
    };
  }

  function seriesOpts(s, i) {
    var style = ROLES[s.role] || {};
    var opts = {
      label: s.label,
      stroke: s.color || style.stroke || PALETTE[i % PALETTE.length],
      width: s.width || style.width || 1,
      spanGaps: false,
      value: function (u, v) { return v == null ? "-" : +v.toPrecision(6); }
    };
    if (s.dash || style.dash) { opts.dash = s.dash || style.dash; }
    if ((s.step || style.step) && root.uPlot.paths && root.uPlot.paths.stepped) {
      opts.paths = root.uPlot.paths.stepped({align: 1});
    }
    return opts;
  }

  var groups = {};  // sync key -> charts: one cursor and one x zoom across a page's charts

  function syncPlugin(key) {
    return {
      hooks: {
        setScale: [function (u, scaleKey) {
          if (scaleKey !== "x" || u.rtompcSyncing) { return; }
          var min = u.scales.x.min, max = u.scales.x.max;
          (groups[key] || []).forEach(function (other) {
            if (other === u) { return; }
            other.rtompcSyncing = true;
            other.setScale("x", {min: min, max: max});
            other.rtompcSyncing = false;
          });
        }]
      }
    };
  }

  function makeChart(el, spec) {
    var width = Math.max(320, (el.clientWidth || 900) - 10);
    var opts = {
      title: spec.title,
      width: width,
      height: spec.height || 220,
      scales: {x: {time: !!spec.unixTime}},
      series: [{label: spec.unixTime ? "time" : "t", value: function (u, v) {
        return spec.unixTime ? new Date(v * 1000).toISOString() : fmtSeconds(v);
      }}].concat(spec.series.map(seriesOpts)),
      axes: [
        spec.unixTime ? {} : {values: function (u, vals) { return vals.map(fmtSeconds); }},
        {size: 70}
      ],
      legend: {live: true},
      cursor: {sync: {key: spec.sync || "rtompc"}},
      plugins: [markersPlugin(spec.markers, spec.now), syncPlugin(spec.sync || "rtompc")]
    };
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var chart = new root.uPlot(opts, data, el);
    chart.rtompcMaxPoints = spec.maxPoints || 0;
    (groups[spec.sync || "rtompc"] = groups[spec.sync || "rtompc"] || []).push(chart);
    return chart;
  }

  function append(chart, x, ys, maxPoints) {
    var data = chart.data.map(function (col) { return Array.prototype.slice.call(col); });
    data[0].push(x);
    for (var i = 0; i < ys.length; i++) { data[i + 1].push(ys[i]); }
    var limit = maxPoints || chart.rtompcMaxPoints || 3600;
    if (data[0].length > limit) {
      data = data.map(function (col) { return col.slice(col.length - limit); });
    }
    chart.setData(data);
  }

  root.RtompcTrends = {makeChart: makeChart, append: append, fmtSeconds: fmtSeconds,
    PALETTE: PALETTE, ROLES: ROLES};
})(typeof window !== "undefined" ? window : this);

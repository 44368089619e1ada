/* The report page: reads the embedded JSON and draws every chart with RtompcTrends. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("rtompc-report-data").textContent);
  var accepted = data.journal.filter(function (j) {
    return j.outcome === "accepted" && j.x !== null;
  });
  var charts = [];
  data.charts.forEach(function (c) {
    var holder = document.getElementById("charts-" + c.group);
    if (!holder) { return; }
    var box = document.createElement("div");
    box.className = "chart";
    holder.appendChild(box);
    var markers = accepted.filter(function (j) {
      return c.prefix && j.key.indexOf(c.prefix) === 0;
    }).map(function (j) { return {x: j.x, label: j.key}; });
    charts.push(window.RtompcTrends.makeChart(box, {
      title: c.title,
      x: data.x,
      series: c.series.map(function (s) {
        return {label: s.label, role: s.role, values: data.series[s.id]};
      }),
      markers: markers
    }));
  });
  window.rtompcCharts = charts;
  document.body.setAttribute("data-charts-drawn", String(charts.length));
})();

// Plant floor charts (DESIGN §10): open alerts and drift over time, from the plants' heartbeat reports.
// <canvas class="floor-chart" data-metric="alerts_open" data-series='[{"plant", "points": [{at, alerts_open, drift}]}]'>
// draws one line per plant; <canvas class="floor-chart" data-api="/api/factories/<name>/floor"> fetches one plant's
// history and draws its open alerts and drift; <canvas class="load-chart"> a plant's load over a chosen range. No inline script: the Content-Security-Policy allows only files.
(function () {
  "use strict";
  const palette = ["#9b1c1c", "#1d4ed8", "#b45309", "#047857", "#6d28d9", "#0e7490", "#4d7c0f", "#be123c"];
  const clock = (ms) => new Date(ms).toISOString().slice(11, 19);
  const point = (p, key) => ({x: Date.parse(p.at), y: p[key] ?? null});

  function draw(canvas, datasets, axes) {
    if (typeof Chart === "undefined") {
      canvas.replaceWith(document.createTextNode("Charts are unavailable: dashboard/ui/static/vendor/chart.umd.js is missing (run make install)."));
      return;
    }
    const scales = Object.assign({x: {type: "linear", ticks: {callback: clock, maxTicksLimit: 6}}}, axes);
    return new Chart(canvas, {type: "line", data: {datasets: datasets.map((d, i) => Object.assign({
      borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], stepped: d.stepped,
      pointRadius: 2, spanGaps: true}, d))},
      options: {animation: false, responsive: true, maintainAspectRatio: false, scales,
        plugins: {legend: {position: "bottom", labels: {boxWidth: 10}},
          tooltip: {callbacks: {title: (items) => items.length ? clock(items[0].parsed.x) + " UTC" : ""}}}}});
  }

  function bySeries(canvas) {
    const metric = canvas.dataset.metric;
    const series = JSON.parse(canvas.dataset.series || "[]");
    draw(canvas, series.map((s) => ({label: s.plant, stepped: metric === "alerts_open",
      data: s.points.map((p) => point(p, metric))})), {y: {beginAtZero: true}});
  }

  async function byApi(canvas) {
    const resp = await window.factoryfl.api(canvas.dataset.api);
    if (!resp.ok) return;
    const floor = await resp.json();
    const points = floor.history || [];
    draw(canvas, [
      {label: "open alerts", stepped: true, yAxisID: "y", data: points.map((p) => point(p, "alerts_open"))},
      {label: "drift", yAxisID: "drift", borderDash: [4, 3], data: points.map((p) => point(p, "drift"))}],
      {y: {beginAtZero: true, position: "left"}, drift: {beginAtZero: true, position: "right", grid: {drawOnChartArea: false}}});
  }

  // <canvas class="load-chart" data-api="/api/factories/<name>/load">: CPU, memory and disk over the range its
  // page's button.load-range[data-hours] picks (the API averages it into at most 240 points)
  let loadChart = null;
  async function byRange(canvas, hours) {
    const resp = await window.factoryfl.api(canvas.dataset.api + "?hours=" + hours);
    if (!resp.ok) return;
    const load = await resp.json();
    const note = document.getElementById("load-note");
    if (note) note.textContent = "last " + (hours >= 48 ? hours / 24 + " days" : hours + " h") + ", " +
      load.heartbeats + " heartbeats";
    if (loadChart) loadChart.destroy();
    loadChart = draw(canvas, ["cpu_usage", "memory_usage", "disk_usage"].map((key) => ({
      label: key.replace("_usage", ""), data: load.points.map((p) => point(p, key))})),
      {x: {type: "linear", min: Date.parse(load.since), max: Date.parse(load.until),
        ticks: {callback: hours > 24 ? (ms) => new Date(ms).toISOString().slice(5, 16).replace("T", " ") : clock,
          maxTicksLimit: 6}}, y: {min: 0, max: 100}});
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("canvas.floor-chart").forEach((canvas) => {
      if (canvas.dataset.api) byApi(canvas); else bySeries(canvas);
    });
    document.querySelectorAll("canvas.load-chart").forEach((canvas) => {
      const buttons = document.querySelectorAll("button.load-range");
      buttons.forEach((b) => b.addEventListener("click", () => {
        buttons.forEach((o) => o.setAttribute("aria-pressed", String(o === b)));
        byRange(canvas, Number(b.dataset.hours));
      }));
      const pressed = document.querySelector('button.load-range[aria-pressed="true"]');
      byRange(canvas, pressed ? Number(pressed.dataset.hours) : 6);
    });
  });
})();

// The compare page: one Chart.js line per experiment for each metric, from the page's data-curves.
(function () {
  "use strict";
  const root = document.getElementById("compare");
  if (!root) return;
  if (typeof Chart === "undefined") {
    document.getElementById("charts-note").textContent = "Charts are unavailable: dashboard/ui/static/vendor/chart.umd.js is missing (run make install).";
    return;
  }
  const palette = ["#1d4ed8", "#b45309", "#047857", "#9d174d"];
  const curves = JSON.parse(root.dataset.curves);
  const names = JSON.parse(root.dataset.names);
  const ids = JSON.parse(root.dataset.ids);
  root.querySelectorAll("canvas[data-metric]").forEach((canvas) => {
    const key = canvas.dataset.metric;
    const rounds = [...new Set(curves.flatMap((c) => c[key].map((p) => p[0])))].sort((a, b) => a - b);
    const datasets = curves.map((c, i) => {
      const byRound = new Map(c[key].map((p) => [p[0], p[1]]));
      return {label: `#${ids[i]} ${names[i]}`, data: rounds.map((r) => byRound.get(r) ?? null),
        borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
        tension: 0.2, spanGaps: true, pointRadius: 3};
    });
    new Chart(canvas, {type: "line", data: {labels: rounds.map(String), datasets},
      options: {animation: false, responsive: true, maintainAspectRatio: false,
        scales: {y: {beginAtZero: true, suggestedMax: key === "val_loss" ? undefined : 1}},
        plugins: {legend: {position: "bottom", labels: {boxWidth: 10}}}}});
  });
})();

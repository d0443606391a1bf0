// Live experiment page: polls the JSON API, redraws progress, tables and Chart.js charts.
(function () {
  "use strict";
  const root = document.getElementById("experiment");
  if (!root) return;
  const api = root.dataset.api;
  const palette = ["#1d4ed8", "#b45309", "#047857", "#9d174d", "#6d28d9", "#0e7490", "#4d7c0f", "#be123c"];
  const charts = {};
  const fmt = (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
  // thresholds sit on log-odds bin edges up to 0.9999546: six significant digits, as the page's own filter
  const threshold = (v) => (v === null || v === undefined ? "–" : String(parseFloat(Number(v).toPrecision(6))));
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  function lineChart(id, labels, datasets, yMax) {
    if (typeof Chart === "undefined") {
      document.getElementById("charts-note").textContent = "Charts are unavailable: dashboard/ui/static/vendor/chart.umd.js is missing (run make install).";
      return;
    }
    const data = {labels, datasets: datasets.map((d, i) => ({borderColor: palette[i % palette.length],
      backgroundColor: palette[i % palette.length], tension: 0.2, spanGaps: true, pointRadius: 3, ...d}))};
    if (charts[id]) { charts[id].data = data; charts[id].update("none"); return; }
    charts[id] = new Chart(document.getElementById(id), {type: datasets[0].type || "line", data,
      options: {animation: false, responsive: true, maintainAspectRatio: false,
        scales: {y: {beginAtZero: true, suggestedMax: yMax}}, plugins: {legend: {position: "bottom", labels: {boxWidth: 10}}}}});
  }

  function draw(e) {
    const rounds = e.rounds;
    const labels = ["0"].concat(rounds.map((r) => String(r.number)));
    const base = e.baseline || {};
    const series = (key) => [base[key] ?? null].concat(rounds.map((r) => r.metrics[key] ?? null));
    const plants = [...new Set(rounds.flatMap((r) => Object.keys(r.per_factory)))].sort();
    const perPlant = (key) => plants.map((p) => ({label: p, borderDash: [4, 3],
      data: [null].concat(rounds.map((r) => (r.per_factory[p] || {})[key] ?? null))}));
    lineChart("chart-loss", labels, [{label: "train", data: [null].concat(rounds.map((r) => r.metrics.train_loss ?? null))},
      {label: "validation", data: series("val_loss")}, {label: "test", data: series("test_loss")}]);
    lineChart("chart-f1", labels, [{label: "aggregate", data: series("test_f1"), borderWidth: 3}].concat(perPlant("test_f1")), 1);
    lineChart("chart-auc", labels, [{label: "aggregate", data: series("test_auc"), borderWidth: 3}].concat(perPlant("test_auc")), 1);
    lineChart("chart-accuracy", labels, [{label: "accuracy", data: series("test_accuracy")},
      {label: "precision", data: series("test_precision")}, {label: "recall", data: series("test_recall")}], 1);
    const rl = rounds.map((r) => String(r.number));
    lineChart("chart-participants", rl, [{type: "bar", label: "participants", data: rounds.map((r) => r.participants.length)},
      {type: "bar", label: "dropouts", data: rounds.map((r) => r.dropouts.length)}]);
    lineChart("chart-duration", rl, [{type: "bar", label: "seconds", data: rounds.map((r) => r.duration_s)}]);
  }

  function update(e) {
    const status = document.getElementById("status");
    status.textContent = e.state.label;  // the badge and the banner read the one state the API computed
    status.className = "badge state-" + e.state.name;
    status.title = "status: " + e.status;
    actions(e.actions);
    document.getElementById("progress-bar").style.width = Math.round(100 * e.current_round / e.total_rounds) + "%";
    document.getElementById("progress-text").textContent = `Round ${e.current_round} of ${e.total_rounds} completed.`;
    const message = document.getElementById("message");
    message.hidden = !e.message;
    message.textContent = e.message || "";
    message.className = "message tone-" + e.state.tone;
    const live = document.getElementById("live");
    const r = e.running_round;
    if (r) {
      const p = r.progress || {};
      const answered = p.answered || [];
      const waiting = r.participants.filter((n) => !answered.includes(n) && !(p.failed || []).includes(n));
      live.textContent = (e.state.name === "pausing" ? `Pausing after round ${r.number}. ` : "") +
        `Round ${r.number} (${p.phase || "starting"}): answered ${answered.join(", ") || "none yet"}; ` +
        `waiting for ${waiting.join(", ") || "nobody"}` + ((p.failed || []).length ? `; dropped ${p.failed.join(", ")}` : "");
    } else {
      live.textContent = "";
    }
    const body = document.querySelector("#rounds tbody");
    body.innerHTML = e.rounds.length ? e.rounds.map((r) => `<tr><td>${r.number}</td><td>${esc(r.participants.join(", "))}</td>` +
      `<td>${r.dropouts.length ? r.dropouts.map((n) => `<span title="${esc(r.dropout_reasons[n])}">${esc(n)}</span>`).join(" ") : "–"}` +
      Object.entries((r.aggregation || {}).excluded || {}).map(([n, why]) => ` <span class="badge error" title="${esc(why)}">excluded: ${esc(n)}</span>`).join("") + `</td>` +
      `<td>${fmt(r.duration_s, 1)} s</td><td>${fmt(r.metrics.train_loss)}</td><td>${fmt(r.metrics.val_f1)}</td>` +
      `<td>${fmt(r.metrics.test_accuracy)}</td><td>${fmt(r.metrics.test_precision)}</td><td>${fmt(r.metrics.test_recall)}</td>` +
      `<td>${fmt(r.metrics.test_f1)}</td><td>${fmt(r.metrics.test_auc)}</td><td>${threshold(r.threshold)}</td>` +
      `<td><a href="${root.dataset.model}?round=${r.number}">bundle</a></td></tr>`).join("") :
      '<tr><td colspan="13">No round completed yet.</td></tr>';
    const last = e.rounds[e.rounds.length - 1];
    if (last) {
      document.querySelector("#per-plant tbody").innerHTML = Object.entries(last.per_factory).map(([n, m]) =>
        `<tr><td>${esc(n)}</td><td>${m.train_samples ?? "–"}</td><td>${fmt(m.train_seconds, 2)}</td><td>${fmt(m.train_loss)}</td>` +
        `<td>${fmt(m.test_f1)}</td><td>${fmt(m.test_auc)}</td><td>${m.test_samples ?? "–"}</td></tr>`).join("");
    }
    const attempts = e.attempts.filter((a) => a.status !== "running");
    document.getElementById("attempts").innerHTML = attempts.length ?
      attempts.map((a) => `<li>round ${a.number}: ${esc(a.status)} – ${esc(a.error || "")}</li>`).join("") : "<li>none</li>";
    draw(e);
  }

  // enable only the actions the experiment's state allows (dashboard.services.experiment_states); a disabled one
  // says why in its title and label
  function actions(valid) {
    document.querySelectorAll("button[data-action]").forEach((button) => {
      const a = valid[button.dataset.action];
      if (!a) return;
      button.disabled = !a.enabled;
      const name = button.dataset.action[0].toUpperCase() + button.dataset.action.slice(1);
      if (a.enabled) { button.removeAttribute("title"); button.removeAttribute("aria-label"); }
      else { button.title = a.reason; button.setAttribute("aria-label", `${name} (unavailable: ${a.reason})`); }
    });
    const release = document.getElementById("release-button");
    if (release) {
      release.disabled = !valid.release.enabled;
      release.title = valid.release.reason || "";
    }
    const download = document.getElementById("download-latest");
    if (valid.download.enabled) {
      download.href = download.dataset.href;
      download.classList.remove("disabled");
      download.removeAttribute("aria-disabled");
      download.title = "the round with the best pooled validation F1 (the API's ?round=N gives any round)";
    } else {
      download.removeAttribute("href");
      download.classList.add("disabled");
      download.setAttribute("aria-disabled", "true");
      download.title = valid.download.reason;
    }
  }

  let polling = false;

  async function poll() {
    polling = true;
    try {
      const resp = await window.factoryfl.api(api);
      if (resp.ok) {
        const e = await resp.json();
        update(e);
        if (!["running", "pending", "paused"].includes(e.status)) { polling = false; return; }  // final
      }
    } catch (err) {
      document.getElementById("live").textContent = "Connection to the dashboard lost; retrying…";
    }
    setTimeout(poll, 2000);
  }

  // Start / pause / resume / cancel through the JSON API (with the CSRF token), without a page reload;
  // the forms still work without JavaScript.
  async function act(event) {
    event.preventDefault();
    const action = event.currentTarget.dataset.action;
    const question = event.currentTarget.dataset.confirm;  // Cancel asks first (without JS: a confirmation page)
    if (question && !window.confirm(question)) return;
    const message = document.getElementById("message");
    try {
      const resp = await window.factoryfl.api(`${api}/${action}`, {method: "POST"});
      const body = await resp.json();
      if (!resp.ok) {
        message.hidden = false;
        message.textContent = body.error || `${action} failed (${resp.status})`;
        return;
      }
      update(body);  // the API answers with the experiment as it now is
    } catch (err) {
      message.hidden = false;
      message.textContent = `${action} failed: the dashboard cannot be reached`;
      return;
    }
    if (!polling) poll();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form.experiment-action").forEach((form) => form.addEventListener("submit", act));
    poll();
  });
})();

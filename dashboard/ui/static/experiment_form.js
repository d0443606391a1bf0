// The new-experiment form (dashboard/ui/templates/experiments.html): each field whose setting is used only by some
// choices (data-shown-when, from the field table's shown_when) shows only while those choices are made; the Check
// button asks the pre-flight check (the same as POST /api/experiments/preflight) without leaving the page. Without
// this script every field shows, and Check submits the form and the page answers.
(function () {
  "use strict";

  function values(form) {
    const out = {};
    form.querySelectorAll("select[data-setting]").forEach(function (s) { out[s.dataset.setting] = s.value; });
    return out;
  }

  function refresh(form) {
    const chosen = values(form);
    form.querySelectorAll("[data-shown-when]").forEach(function (box) {
      const rule = JSON.parse(box.dataset.shownWhen);
      const shown = Object.keys(rule).every(function (name) { return rule[name].includes(chosen[name]); });
      box.hidden = !shown;
      box.querySelectorAll("input, select").forEach(function (input) { input.disabled = !shown; });
    });
  }

  function check(form, button) {
    const open = Array.from(form.querySelectorAll("details[open]")).map(function (d) { return d.id; });
    const data = new FormData(form);
    data.set("intent", "check");
    button.disabled = true;
    fetch(form.getAttribute("action"), {method: "POST", body: data, credentials: "same-origin"})
      .then(function (resp) { return resp.text(); })
      .then(function (html) {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(form.id);
        if (!fresh) throw new Error("no form in the answer");
        open.forEach(function (id) { const d = fresh.querySelector("#" + id); if (d) d.open = true; });
        form.replaceWith(fresh);
        start(fresh);
        const result = fresh.querySelector("#preflight");
        if (result) result.scrollIntoView({block: "nearest"});
      })
      .catch(function (err) {
        button.disabled = false;
        form.querySelector("#preflight").textContent = "The check could not run: " + err.message;
      });
  }

  function start(form) {
    form.addEventListener("change", function (event) {
      if (event.target.matches("select[data-setting]")) refresh(form);
    });
    const button = form.querySelector("#preflight-check");
    if (button) button.addEventListener("click", function (event) { event.preventDefault(); check(form, button); });
    refresh(form);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("new-experiment");
    if (form) start(form);
  });
})();

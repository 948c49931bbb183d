"use strict";
// credwatch report: sort and filter the alert table, open an alert's details. No network.
// Data comes from the #cw-data JSON and the rows' data-* attributes, and is only ever
// inserted as text (textContent, option values), never as markup.
document.documentElement.classList.add("js");
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("alert-table");
  var form = document.getElementById("filters");
  if (!table || !form) { return; }
  var data = JSON.parse(document.getElementById("cw-data").textContent);
  var bodies = Array.prototype.slice.call(table.tBodies);
  var names = ["host", "cat", "sev", "prio", "from", "to"];

  function fill(name, labels, byValue) {
    var select = form.elements[name];
    labels.forEach(function (label, i) {
      var option = document.createElement("option");
      option.value = byValue ? label : String(i);
      option.textContent = label;
      select.appendChild(option);
    });
  }
  fill("host", data.hosts, false);
  fill("cat", data.cats, false);
  fill("sev", data.sevs, true);
  fill("prio", data.prios, true);

  // Times in the inputs are UTC, like every time in the report.
  function toMs(value) {
    if (!value) { return null; }
    var t = Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(value) ? value : value + "Z");
    return isNaN(t) ? null : t;
  }

  // The priority is the row's second cell; the other filter keys are data-* attributes.
  function matches(b, f) {
    var d = b.dataset;
    var t = d.t === "" ? null : Number(d.t);
    return (!f.host || d.h === f.host) &&
      (!f.cat || (" " + d.c + " ").indexOf(" " + f.cat + " ") >= 0) &&
      (!f.sev || d.s === f.sev) && (!f.prio || b.rows[0].cells[1].textContent === f.prio) &&
      (f.from === null || (t !== null && t >= f.from)) &&
      (f.to === null || (t !== null && t <= f.to));
  }

  function apply() {
    var e = form.elements;
    var f = { host: e.host.value, cat: e.cat.value, sev: e.sev.value, prio: e.prio.value,
              from: toMs(e.from.value), to: toMs(e.to.value) };
    var shown = 0;
    bodies.forEach(function (b) {
      var ok = matches(b, f);
      b.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent =
      shown + " of " + bodies.length + " alert(s) shown";
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); });
  form.elements.clear.addEventListener("click", function () {
    names.forEach(function (n) { form.elements[n].value = ""; });
    apply();
  });

  // Sorting: numeric keys come from data-* attributes, text keys from the cell's text.
  var heads = table.tHead.rows[0].cells;
  var severityRank = { critical: 4, high: 3, medium: 2, low: 1 };
  function keyOf(body, col, key) {
    if (key === "text") { return body.rows[0].cells[col].textContent.toLowerCase(); }
    if (key === "sev") { return severityRank[body.dataset.s.toLowerCase()] || 0; }
    var v = body.dataset[key];
    return v === "" || v === undefined ? -Infinity : Number(v);
  }
  function sortBy(col) {
    var th = heads[col];
    var key = th.dataset.key;
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var keyed = bodies.map(function (b, i) { return [keyOf(b, col, key), i, b]; });
    keyed.sort(function (a, b) {
      if (a[0] < b[0]) { return -dir; }
      if (a[0] > b[0]) { return dir; }
      return a[1] - b[1];
    });
    keyed.forEach(function (k) { table.appendChild(k[2]); });
    bodies = keyed.map(function (k) { return k[2]; });
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    var button = th.querySelector("button");
    if (button) { button.addEventListener("click", function () { sortBy(col); }); }
  });

  table.addEventListener("click", function (ev) {
    var row = ev.target.closest("tr.r");
    if (row && !ev.target.closest("a")) { row.parentNode.classList.toggle("open"); }
  });
  table.addEventListener("keydown", function (ev) {  // rows are focusable: Enter/Space open
    var row = ev.target.closest("tr.r");
    if (row && ev.target === row && (ev.key === "Enter" || ev.key === " ")) {
      ev.preventDefault();
      row.parentNode.classList.toggle("open");
    }
  });

  // Links from the summary and the timeline: #f/host=0&cat=1 filters, #a-<uuid> opens one.
  function decode(text) {
    try { return decodeURIComponent(text); } catch (e) { return ""; }  // a mistyped link
  }
  function fromHash() {
    var hash = location.hash;
    if (hash.indexOf("#f/") === 0) {
      names.forEach(function (n) { form.elements[n].value = ""; });
      hash.slice(3).split("&").forEach(function (pair) {
        var kv = pair.split("=");
        var name = decode(kv[0]);
        if (names.indexOf(name) >= 0) { form.elements[name].value = decode(kv[1] || ""); }
      });
      apply();
      document.getElementById("alerts").scrollIntoView();
    } else if (hash.indexOf("#a-") === 0) {
      var body = document.getElementById(decode(hash.slice(1)));
      if (body) { body.classList.add("open"); }
    }
  }
  window.addEventListener("hashchange", fromHash);
  apply();
  fromHash();
});

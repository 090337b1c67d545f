// Callbridge's own script: the live connection's status, a bounded live table, the charts.
// htmx and its ws extension do the rest; everything shown comes from the server.
(function () {
  "use strict";

  var MAX_LIVE_ROWS = 100;

  // htmx swaps only 2xx answers: without this, a refused request (a 400, a 403 after the
  // session ended, a 500) or an unreachable server would leave the page as if nothing happened.
  function showRequestError(text) {
    var box = document.getElementById("request-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "request-error";
      box.className = "error";
      box.setAttribute("role", "alert");
      var main = document.querySelector("main") || document.body;
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = text;
    box.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    var detail = page.querySelector("main p") || page.body;
    var said = detail ? detail.textContent.trim().slice(0, 300) : "";
    showRequestError("The server refused this (" + xhr.status + ")" + (said ? ": " + said : "."));
  });
  document.addEventListener("htmx:sendError", function () {
    showRequestError("The server could not be reached: nothing was saved. Try again.");
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("request-error");
    if (box) { box.remove(); }
  });

  function setStatus(state, text) {
    var status = document.getElementById("live-status");
    if (status) {
      status.dataset.state = state;
      status.textContent = text;
    }
  }

  document.addEventListener("htmx:wsConnecting", function () { setStatus("connecting", "Connecting…"); });
  document.addEventListener("htmx:wsOpen", function () { setStatus("live", "Live"); });
  document.addEventListener("htmx:wsClose", function () { setStatus("offline", "Reconnecting…"); });

  document.addEventListener("htmx:wsAfterMessage", function () {
    var body = document.getElementById("live-calls");
    if (!body) { return; }
    var rows = body.querySelectorAll("tr.call");
    for (var i = MAX_LIVE_ROWS; i < rows.length; i++) { rows[i].remove(); }
    var empty = body.querySelector("tr.empty");
    if (empty && rows.length) { empty.remove(); }
  });

  // An answer for a panel that an earlier answer already replaced is dropped: swapped into the
  // detached panel, it would carry the preserved Lead form (hx-preserve) out of the page.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && !document.body.contains(target)) { event.detail.shouldSwap = false; }
  });

  // A pushed context card keeps its caller panel as it is (hx-preserve, so a note being typed
  // survives); the panel then asks the server for its fresh self.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.target && event.target.id === "context-card") {
      window.htmx.trigger(document.body, "caller-changed");
    }
  });

  // A label keeps its colour on every chart and every day (a disposition's colour is its own):
  // picked from the label's text, not from its rank.
  var COLOURS = ["#2f6fdf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"];
  function colourOf(label) {
    if (label === "(none)" || label === "(no agent)") { return "#9aa5b1"; }
    var hash = 0;
    for (var i = 0; i < label.length; i++) { hash = (hash * 31 + label.charCodeAt(i)) | 0; }
    return COLOURS[Math.abs(hash) % COLOURS.length];
  }
  function palette(labels) { return labels.map(colourOf); }

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) { return new window.Chart(canvas, config); }
    return null;
  }

  function bars(labels, values, label, colour) {
    return {
      type: "bar",
      data: { labels: labels, datasets: [{ label: label, data: values, backgroundColor: colour || palette(labels) }] },
      options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    };
  }

  function drawCharts() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    chart("chart-calls-per-day", bars(data.days, data.calls_per_day, "Calls", "#2f6fdf"));
    chart("chart-failures-per-day", bars(data.days, data.failures_per_day, "Failed syncs", "#c0392b"));
    chart("chart-per-disposition", bars(Object.keys(data.per_disposition), Object.values(data.per_disposition), "Calls"));
    chart("chart-per-agent", bars(Object.keys(data.per_agent), Object.values(data.per_agent), "Calls"));
    if (data.api_max) {
      chart("chart-api-usage", {
        type: "doughnut",
        data: {
          labels: ["Used", "Left"],
          datasets: [{ data: [data.api_used, Math.max(0, data.api_max - data.api_used)], backgroundColor: ["#d95f02", "#dfe6ee"] }]
        },
        options: { animation: false }
      });
    }
    document.body.dataset.charts = "drawn";
  }

  document.addEventListener("DOMContentLoaded", drawCharts);
})();

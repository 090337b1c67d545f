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

  // What the server said when it refused a request: its error page's first paragraph.
  function showRefusal(status, responseText) {
    var page = new DOMParser().parseFromString(responseText || "", "text/html");
    var detail = page.querySelector("main p") || page.body;
    var said = detail ? detail.textContent.trim().slice(0, 300) : "";
    showRequestError("The server refused this (" + status + ")" + (said ? ": " + said : "."));
  }

  document.addEventListener("htmx:responseError", function (event) {
    showRefusal(event.detail.xhr.status, event.detail.xhr.responseText);
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

  // A call's caller panel is asked for by its first load, by its refreshes and by the Lead
  // form's post, and their answers can cross. The answer to the request sent last wins: an older
  // one than the answer shown is dropped, and one whose panel was replaced meanwhile goes to the
  // panel on the page (swapped into the detached one, it would carry the preserved Lead form out
  // of the page).
  var sentOrder = new WeakMap();
  var shownOrder = {};
  var sent = 0;

  // The element an answer sent as ``order`` should replace, or null when it is stale.
  function swapTarget(target, order) {
    if (!target.id) { return document.body.contains(target) ? target : null; }
    var current = document.getElementById(target.id);
    if (!current || order < (shownOrder[target.id] || 0)) { return null; }
    shownOrder[target.id] = order;
    return current;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    sent += 1;
    sentOrder.set(event.detail.xhr, sent);
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (!detail.shouldSwap || !detail.target) { return; }
    var target = swapTarget(detail.target, sentOrder.get(detail.xhr) || 0);
    if (target) { detail.target = target; } else { detail.shouldSwap = false; }
  });

  // A pushed context card keeps its caller panel as it is (hx-preserve, so a note being typed
  // survives); the panel then asks the server for its fresh self. Asked here rather than
  // through an htmx trigger: a panel swapped in a moment ago hears no trigger until htmx settles
  // it, and a second ask while one is in flight would wait behind it on the replaced panel.
  function refresh(panel) {
    sent += 1;
    var order = sent;
    fetch(panel.dataset.refresh, { headers: { "HX-Request": "true" } })
      .then(function (response) {
        return response.text().then(function (text) {
          if (!response.ok) { showRefusal(response.status, text); return; }
          var target = swapTarget(panel, order);
          if (target) { window.htmx.swap(target, text, { swapStyle: "outerHTML" }); }
        });
      })
      .catch(function () {
        showRequestError("The server could not be reached: the caller's details may be out of date.");
      });
  }
  // (htmx reports one swap more than once: the panels are asked once a push.)
  var refreshAsked = false;
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (!event.target || event.target.id !== "context-card" || refreshAsked) { return; }
    refreshAsked = true;
    Promise.resolve().then(function () {
      refreshAsked = false;
      document.querySelectorAll(".caller[data-refresh]").forEach(refresh);
    });
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

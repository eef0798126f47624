/**
 * The dashboard page's own script (plain browser JavaScript, kept as text): it
 * polls the admin API every second and renders what it reads. The pure pieces
 * it calls (`parsePrometheus`, `histogramQuantile`, `escapeHtml`, …) come from
 * `dashboard_math.ts` and are prepended by `dashboard_page.ts`.
 *
 * Written without template literals (the text sits in `String.raw`), and every
 * string from the server reaches the DOM through `escapeHtml` or `textContent`.
 *
 * @module
 */

/** The script body after the math functions. */
export const DASHBOARD_MAIN_SOURCE: string = String.raw`
(function () {
  "use strict";
  var TOKEN_KEY = "stage-admin-token";
  var HISTORY = 60;
  var PERIOD_MS = 1000;
  var STATES = ["ready", "overloaded", "draining", "starting"];
  var SEP = "\u001f";
  var token = "";
  var previous = null;
  var rates = [];
  var polls = 0;
  var timer = 0;
  var running = false;
  var lastStages = "";
  var lastTickets = "";

  function $(id) { return document.getElementById(id); }

  function store(value) {
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (_e) { /* storage off: memory only */ }
  }

  function loadToken() {
    var match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      try { token = decodeURIComponent(match[1]); } catch (_e) { token = match[1]; }
      store(token);
      // The token leaves the address bar (and the history) once it is kept.
      history.replaceState(null, "", location.pathname + location.search);
      return;
    }
    try { token = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (_e) { token = ""; }
  }

  function get(path) {
    var headers = {};
    if (token !== "") headers.authorization = "Bearer " + token;
    var init = { headers: headers, cache: "no-store" };
    if (typeof AbortSignal !== "undefined" && AbortSignal.timeout) {
      init.signal = AbortSignal.timeout(4000);
    }
    return fetch(path, init).catch(function (error) { return error; });
  }

  function reason(error) { return error && error.message ? error.message : String(error); }

  function status(kind, text) {
    var el = $("status");
    el.textContent = text;
    el.dataset.kind = kind;
  }

  function number(value) { return typeof value === "number" && isFinite(value) ? value : 0; }

  function fmtRate(r) {
    if (!isFinite(r)) return "–";
    return r >= 100 ? r.toFixed(0) : r.toFixed(1);
  }

  function fmtMs(ms) {
    if (!isFinite(ms)) return "–";
    if (ms === 0) return "0 ms";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 10) return ms.toFixed(1) + " ms";
    if (ms < 1000) return ms.toFixed(0) + " ms";
    return (ms / 1000).toFixed(2) + " s";
  }

  function setValue(id, value, text) {
    var el = $(id);
    el.textContent = text;
    el.dataset.value = isFinite(value) ? String(value) : "";
  }

  function renderState(health) {
    var el = $("state");
    var state = health && STATES.indexOf(health.state) >= 0 ? health.state : "unknown";
    el.textContent = state;
    el.dataset.state = state;
    el.className = "badge state-" + state;
  }

  function renderSpark() {
    var max = 0;
    for (var i = 0; i < rates.length; i++) if (rates[i] > max) max = rates[i];
    var step = 240 / (HISTORY - 1);
    var offset = (HISTORY - rates.length) * step;
    var points = rates.map(function (r, i) {
      var y = max > 0 ? 38 - (r / max) * 36 : 38;
      return (offset + i * step).toFixed(1) + "," + y.toFixed(1);
    });
    $("spark-line").setAttribute("points", points.join(" "));
    $("spark").dataset.max = String(max);
  }

  function cell(field, value, text) {
    return "<td data-field=\"" + field + "\" data-value=\"" + escapeHtml(value) + "\">" +
      escapeHtml(text) + "</td>";
  }

  function workerCells(list) {
    var out = "";
    for (var w = 0; w < list.length; w++) {
      var n = number(list[w]);
      out += "<span class=\"w" + (n > 0 ? " on" : "") + "\" data-worker=\"" + w +
        "\" data-in-flight=\"" + n + "\" title=\"worker " + w + ": " + n + " in flight\">" +
        n + "</span>";
    }
    return out;
  }

  function renderStages(stages, stageRates) {
    var html = "";
    var busy = 0;
    var total = 0;
    for (var i = 0; i < stages.length; i++) {
      var s = stages[i] || {};
      var id = String(s.id);
      var proc = s.process === undefined || s.process === null ? "" : String(s.process);
      var rate = stageRates[id + SEP + proc];
      var script = s.kind === "script";
      var workers = script && s.workers ? s.workers : { total: 0, busy: 0, inFlight: [] };
      busy += number(workers.busy);
      total += number(workers.total);
      html += "<tr data-stage=\"" + escapeHtml(id) + "\" data-process=\"" + escapeHtml(proc) +
        "\" data-kind=\"" + escapeHtml(s.kind) + "\">" +
        "<td data-field=\"id\">" + escapeHtml(id) +
        (proc === "" ? "" : " <small>process " + escapeHtml(proc) + "</small>") + "</td>" +
        cell("kind", s.kind, s.kind) +
        cell("rate", rate === undefined ? "" : rate, rate === undefined ? "–" : fmtRate(rate)) +
        cell("queueDepth", number(s.queueDepth), number(s.queueDepth)) +
        (script
          ? cell("oldestQueuedMs", number(s.oldestQueuedMs), fmtMs(number(s.oldestQueuedMs))) +
            cell("inFlight", number(s.inFlight), number(s.inFlight)) +
            "<td data-field=\"workers\" data-busy=\"" + number(workers.busy) +
            "\" data-total=\"" + number(workers.total) + "\">" + number(workers.busy) + " / " +
            number(workers.total) + "</td>" +
            "<td data-field=\"perWorker\">" + workerCells(workers.inFlight || []) + "</td>"
          : "<td>–</td><td>–</td><td>–</td><td></td>") +
        "</tr>";
    }
    if (html === "") html = "<tr><td colspan=\"8\" class=\"empty\">No stages.</td></tr>";
    if (html !== lastStages) {
      $("stages").tBodies[0].innerHTML = html;
      lastStages = html;
    }
    $("workers-busy").textContent = String(busy);
    $("workers-total").textContent = String(total);
  }

  function renderTickets(response, tickets) {
    var html = "";
    if (tickets === null) {
      html = "<tr><td colspan=\"6\" class=\"empty\">Tickets unavailable (HTTP " +
        escapeHtml(response && response.status) + ").</td></tr>";
    } else {
      for (var i = 0; i < tickets.length; i++) {
        var t = tickets[i] || {};
        var proc = t.process === undefined || t.process === null ? "" : String(t.process);
        html += "<tr data-ticket-stage=\"" + escapeHtml(t.stage) + "\" data-category=\"" +
          escapeHtml(t.category) + "\" data-process=\"" + escapeHtml(proc) + "\">" +
          cell("stage", t.stage, proc === "" ? t.stage : t.stage + " (process " + proc + ")") +
          cell("category", t.category, t.category === "" ? "(default)" : t.category) +
          cell("holders", number(t.holders), number(t.holders)) +
          cell("waiting", number(t.waiting), number(t.waiting)) +
          cell("oldestWaitMs", number(t.oldestWaitMs), fmtMs(number(t.oldestWaitMs))) +
          cell("limit", t.limit === undefined ? "" : t.limit, t.limit === undefined ? "–" : t.limit) +
          "</tr>";
      }
      if (html === "") html = "<tr><td colspan=\"6\" class=\"empty\">No ticket categories.</td></tr>";
    }
    if (html !== lastTickets) {
      $("tickets").tBodies[0].innerHTML = html;
      lastTickets = html;
    }
  }

  function renderMetrics(text) {
    var now = performance.now();
    var samples = parsePrometheus(text);
    var counts = sumSamples(samples, "stage_dispatch_delay_seconds_count", ["stage", "process"]);
    var total = 0;
    for (var key in counts) total += counts[key];
    var current = {
      t: now,
      counts: counts,
      total: total,
      buckets: histogramBuckets(samples, "stage_dispatch_delay_seconds"),
    };
    var stageRates = {};
    if (previous !== null) {
      var seconds = (now - previous.t) / 1000;
      var rate = counterRate(previous.total, total, seconds);
      setValue("rate", rate, fmtRate(rate));
      if (isFinite(rate)) rates.push(rate);
      if (rates.length > HISTORY) rates.shift();
      renderSpark();
      for (var k in counts) stageRates[k] = counterRate(previous.counts[k] || 0, counts[k], seconds);
      var deltas = bucketDeltas(previous.buckets, current.buckets);
      [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]].forEach(function (pair) {
        var ms = histogramQuantile(pair[1], deltas) * 1000;
        setValue(pair[0], ms, fmtMs(ms));
      });
    }
    previous = current;
    setValue("restarts", 0, String(sumSamples(samples, "stage_worker_restarts_total")[""] || 0));
    setValue("lost", 0, String(sumSamples(samples, "stage_messages_lost_total")[""] || 0));
    return stageRates;
  }

  async function json(response) {
    return response instanceof Response && response.ok ? await response.json() : null;
  }

  async function refresh() {
    var r = await Promise.all(["health", "stages", "tickets", "metrics"].map(get));
    var health = r[0];
    if (!(health instanceof Response)) {
      previous = null;
      renderState(null);
      status("error", "Cannot reach the admin API: " + reason(health));
      return;
    }
    renderState(await health.json().catch(function () { return null; }));
    var locked = r.slice(1).some(function (x) { return x instanceof Response && x.status === 401; });
    if (locked) {
      previous = null;
      $("auth").hidden = false;
      status("auth", token === ""
        ? "401 Unauthorized: this admin API needs its token. Enter it below, or open /dashboard#token=<token>."
        : "401 Unauthorized: the admin token was refused. Enter the right one below.");
      return;
    }
    $("auth").hidden = true;
    var problems = [];
    var stageRates = {};
    if (r[3] instanceof Response && r[3].ok) stageRates = renderMetrics(await r[3].text());
    else problems.push("metrics");
    var stages = await json(r[1]);
    if (Array.isArray(stages)) renderStages(stages, stageRates);
    else problems.push("stages");
    var tickets = await json(r[2]);
    renderTickets(r[2], Array.isArray(tickets) ? tickets : null);
    polls++;
    document.body.dataset.polls = String(polls);
    status(problems.length === 0 ? "ok" : "error",
      (problems.length === 0 ? "Updated " : "Partly updated (no " + problems.join(", ") + ") ") +
        new Date().toLocaleTimeString());
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  async function poll() {
    if (running) return;
    running = true;
    var started = performance.now();
    try {
      await refresh();
    } catch (error) {
      status("error", "Update failed: " + reason(error));
    } finally {
      running = false;
    }
    schedule(Math.max(0, PERIOD_MS - (performance.now() - started)));
  }

  $("auth").addEventListener("submit", function (event) {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    store(token);
    previous = null;
    schedule(0);
  });
  loadToken();
  poll();
})();
`;

import { USAGE_BODY, USAGE_SCRIPT, USAGE_STYLE } from "./usage-chart";

/**
 * The dashboard's HTML, CSS and script, as strings (no build step). The script uses no
 * template literals, so it can sit in String.raw below unchanged. Everything the API
 * returns is written with textContent, never as HTML.
 */

const STYLE = `
:root { --pending: #9ca3af; --running: #2563eb; --completed: #16a34a; --failed: #dc2626; --cancelled: #d97706;
  --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f9fafb; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: var(--bg); font-size: 14px; }
header { display: flex; align-items: center; gap: 12px; padding: 12px 24px; background: #111827; color: #fff; }
header h1 { font-size: 18px; margin: 0; flex: 1; }
main { display: grid; grid-template-columns: minmax(280px, 360px) 1fr; gap: 16px; padding: 16px 24px; align-items: start; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
section h2 { font-size: 15px; margin: 0 0 10px; }
label { display: block; font-weight: 600; margin: 8px 0 4px; }
input, textarea, select { width: 100%; font: inherit; padding: 6px 8px; border: 1px solid #d1d5db; border-radius: 6px; }
textarea { min-height: 96px; font-family: ui-monospace, Menlo, monospace; font-size: 12px; }
button { font: inherit; padding: 6px 12px; border-radius: 6px; border: 1px solid #d1d5db; background: #fff; cursor: pointer; }
button.primary { background: #2563eb; border-color: #2563eb; color: #fff; }
button.danger { background: #dc2626; border-color: #dc2626; color: #fff; }
button:disabled { opacity: .5; cursor: default; }
.row { display: flex; gap: 8px; align-items: center; margin-top: 8px; flex-wrap: wrap; }
.muted { color: var(--muted); }
.error { color: var(--failed); }
.ok { color: var(--completed); }
.hidden { display: none !important; }
.grow { flex: 1; }
.row.head { margin: 0 0 8px; }
.row.head h2 { margin: 0; }
.docs-link { color: #93c5fd; }
dl.credits { display: grid; grid-template-columns: repeat(5, 1fr); gap: 8px; margin: 0; }
dl.credits div { background: var(--bg); border-radius: 6px; padding: 8px; text-align: center; }
dl.credits dt { color: var(--muted); font-size: 12px; }
dl.credits dd { margin: 2px 0 0; font-size: 20px; font-weight: 700; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 5px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.url { word-break: break-all; font-family: ui-monospace, Menlo, monospace; font-size: 12px; }
tr.selected { background: #eff6ff; }
#batch-list tr { cursor: pointer; }
.id { font-family: ui-monospace, Menlo, monospace; font-size: 12px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #374151; color: #fff; }
.badge.live { background: var(--completed); }
.badge.reconnecting, .badge.connecting { background: var(--cancelled); }
.badge.offline { background: var(--failed); }
.status { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; color: #fff; background: var(--pending); }
.status.running { background: var(--running); } .status.completed { background: var(--completed); }
.status.failed { background: var(--failed); } .status.cancelled { background: var(--cancelled); }
.bar { display: flex; height: 28px; border-radius: 6px; overflow: hidden; background: var(--line); margin: 8px 0; }
.seg { height: 100%; transition: width .4s ease; color: #fff; font-size: 12px; font-weight: 600; display: flex; align-items: center;
  justify-content: center; overflow: hidden; white-space: nowrap; }
.seg.pending { background: var(--pending); } .seg.running { background: var(--running); } .seg.completed { background: var(--completed); }
.seg.failed { background: var(--failed); } .seg.cancelled { background: var(--cancelled); }
ul.legend { display: flex; gap: 16px; list-style: none; padding: 0; margin: 0 0 8px; flex-wrap: wrap; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { width: 12px; height: 12px; border-radius: 3px; display: inline-block; }
.swatch.pending { background: var(--pending); } .swatch.running { background: var(--running); } .swatch.completed { background: var(--completed); }
.swatch.failed { background: var(--failed); } .swatch.cancelled { background: var(--cancelled); }
#cancel-result { font-weight: 600; }
pre { background: #0f172a; color: #e2e8f0; padding: 12px; border-radius: 6px; max-height: 320px; overflow: auto; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
${USAGE_STYLE}
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
`;

const SCRIPT = String.raw`
(function () {
  "use strict";
  var STATES = ["pending", "running", "completed", "failed", "cancelled"];
  var KEY_STORE = "batchScrape.apiKey";
  var BATCH_STORE = "batchScrape.batchId";
  var ITEMS_LIMIT = 50;
  var PING_EVERY_MS = 20000;
  var PONG_WITHIN_MS = 10000;
  var MAX_BACKOFF_MS = 15000;

  var apiKey = null;
  var current = null; // { batchId, batch, items: [] }
  var socket = null;
  var attempt = 0;
  var reconnectTimer = null;
  var pingTimer = null;
  var pongTimer = null;
  var itemsTimer = null;
  var creditsTimer = null;
  var batchesTimer = null;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function storage() { try { return window.sessionStorage; } catch (e) { return null; } }
  function randomHex(bytes) {
    var a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function fmtTime(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }

  // ------------------------------------------------------------------ HTTP, with the key as a header

  function api(path, init) {
    init = init || {};
    var headers = new Headers(init.headers || {});
    headers.set("x-api-key", apiKey || "");
    if (init.body !== undefined) headers.set("content-type", "application/json");
    return fetch(path, { method: init.method || "GET", headers: headers, body: init.body, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (res) {
        var type = res.headers.get("content-type") || "";
        var read = type.indexOf("json") >= 0 ? res.json().catch(function () { return null; }) : res.text();
        return read.then(function (body) {
          if (!res.ok) {
            var err = new Error((body && body.message) || ("HTTP " + res.status));
            err.status = res.status;
            err.code = body && body.code;
            throw err;
          }
          return body;
        });
      });
  }
  function describe(err) { return err && err.code ? err.message + " (" + err.code + ")" : String((err && err.message) || err); }

  // ------------------------------------------------------------------ key

  function useKey(key) {
    apiKey = key;
    $("key-form").classList.add("hidden");
    $("key-active").classList.remove("hidden");
    $("app").classList.remove("hidden");
    $("create").classList.remove("hidden");
    $("batches").classList.remove("hidden");
    refreshCredits();
    refreshUsage();
    refreshBatches().then(function () {
      var s = storage();
      var last = s && s.getItem(BATCH_STORE);
      if (last && !current) selectBatch(last);
    });
  }

  $("key-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = $("api-key");
    var key = input.value.trim();
    input.value = "";
    if (!key) return;
    $("key-status").textContent = "Checking…";
    $("key-status").className = "muted";
    apiKey = key;
    api("/api/credits").then(function () {
      var s = storage();
      if (s) s.setItem(KEY_STORE, key);
      $("key-status").textContent = "";
      useKey(key);
    }, function (err) {
      apiKey = null;
      $("key-status").textContent = "Key refused: " + describe(err);
      $("key-status").className = "error";
    });
  });

  $("forget-key").addEventListener("click", function () {
    var s = storage();
    if (s) { s.removeItem(KEY_STORE); s.removeItem(BATCH_STORE); }
    apiKey = null;
    closeBatch();
    $("key-form").classList.remove("hidden");
    $("key-active").classList.add("hidden");
    $("app").classList.add("hidden");
    $("create").classList.add("hidden");
    $("batches").classList.add("hidden");
    $("batch-list").textContent = "";
    ["balance", "reserved", "used", "refunded", "granted"].forEach(function (k) { $("credit-" + k).textContent = "–"; });
  });

  // ------------------------------------------------------------------ credits

  function refreshCredits() {
    return api("/api/credits").then(function (c) {
      ["balance", "reserved", "used", "refunded", "granted"].forEach(function (k) { $("credit-" + k).textContent = String(c[k]); });
      $("credits-updated").textContent = "updated " + new Date().toLocaleTimeString();
    }, function (err) { $("credits-updated").textContent = "could not load: " + describe(err); });
  }
  function soon(timerName, fn, ms) {
    if (timerName === "items") { if (itemsTimer) return; itemsTimer = setTimeout(function () { itemsTimer = null; fn(); }, ms); }
    if (timerName === "credits") { if (creditsTimer) return; creditsTimer = setTimeout(function () { creditsTimer = null; fn(); }, ms); }
    if (timerName === "batches") { if (batchesTimer) return; batchesTimer = setTimeout(function () { batchesTimer = null; fn(); }, ms); }
  }
  $("refresh-credits").addEventListener("click", function () { refreshCredits(); });

  // ------------------------------------------------------------------ batch list

  function refreshBatches() {
    return api("/api/batch/scrape?page=1&limit=20").then(function (r) {
      var body = $("batch-list");
      body.textContent = "";
      r.jobs.forEach(function (j) {
        var tr = el("tr");
        tr.dataset.batchId = j.uuid;
        if (current && current.batchId === j.uuid) tr.className = "selected";
        tr.appendChild(el("td", "id", j.uuid.slice(0, 8)));
        var st = el("td"); st.appendChild(el("span", "status " + j.status, j.status)); tr.appendChild(st);
        tr.appendChild(el("td", null, (j.completedCount + j.failedCount) + " / " + j.totalUrls));
        tr.appendChild(el("td", "muted", fmtTime(j.createdAt)));
        tr.addEventListener("click", function () { selectBatch(j.uuid); });
        body.appendChild(tr);
      });
      $("batch-list-empty").classList.toggle("hidden", r.jobs.length > 0);
    }, function (err) { $("batch-list-empty").textContent = "Could not load batches: " + describe(err); });
  }
  $("refresh-batches").addEventListener("click", function () { refreshBatches(); });

  // ------------------------------------------------------------------ create

  $("create-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var urls = $("urls").value.split(/\r?\n/).map(function (u) { return u.trim(); }).filter(Boolean);
    var body = { urls: urls, output: $("output").value };
    var mc = parseInt($("max-concurrency").value, 10);
    if (mc > 0) body.maxConcurrency = mc;
    var status = $("create-status");
    status.className = "muted";
    status.textContent = "Creating…";
    $("create-button").disabled = true;
    api("/api/batch/scrape", { method: "POST", body: JSON.stringify(body), headers: { "idempotency-key": "dashboard-" + randomHex(16) } })
      .then(function (r) {
        status.className = "ok";
        status.textContent = "Created batch " + r.batchId.slice(0, 8) + " (" + r.total + " URLs).";
        refreshCredits();
        usageSoon();
        return refreshBatches().then(function () { selectBatch(r.batchId); });
      }, function (err) { status.className = "error"; status.textContent = describe(err); })
      .then(function () { $("create-button").disabled = false; });
  });

  // ------------------------------------------------------------------ one batch

  function selectBatch(batchId) {
    closeBatch();
    current = { batchId: batchId, batch: null, items: [] };
    var s = storage();
    if (s) s.setItem(BATCH_STORE, batchId);
    Array.prototype.forEach.call($("batch-list").children, function (tr) { tr.classList.toggle("selected", tr.dataset.batchId === batchId); });
    $("batch").classList.remove("hidden");
    $("batch-id").textContent = batchId;
    $("cancel-result").textContent = "";
    $("result-box").classList.add("hidden");
    $("batch-error").textContent = "";
    loadBatch().then(function () { connect(); }, function (err) {
      $("batch-error").textContent = "Could not load the batch: " + describe(err);
      if (err.status === 404) { var st = storage(); if (st) st.removeItem(BATCH_STORE); }
    });
  }

  function closeBatch() {
    var ws = socket;
    socket = null;
    stopPing();
    clearTimeout(reconnectTimer);
    if (ws) { try { ws.close(1000, "closed by the page"); } catch (e) { /* closed */ } }
    current = null;
    attempt = 0;
    $("batch").classList.add("hidden");
    setBadge("offline", "not connected");
  }

  function loadBatch() {
    var id = current.batchId;
    return api("/api/batch/scrape/" + encodeURIComponent(id) + "?limit=" + ITEMS_LIMIT).then(function (b) {
      if (!current || current.batchId !== id) return;
      current.items = b.items;
      delete b.items;
      delete b.nextCursor;
      // A live message newer than this read keeps its counts, and the items are read again.
      if (!current.batch || progress(b) >= progress(current.batch)) current.batch = b;
      else soon("items", loadBatch, 300);
      render();
    });
  }
  /** Grows by one with every start and every settle, by two with every cancelled item. */
  function progress(b) { return 2 * (b.completedCount + b.failedCount + b.cancelledCount) + b.runningCount; }

  function render() {
    if (!current || !current.batch) return;
    var b = current.batch;
    var st = $("batch-status");
    st.className = "status " + b.status;
    st.textContent = b.status;
    STATES.forEach(function (s) {
      var n = b[s + "Count"];
      $("count-" + s).textContent = String(n);
      var seg = $("seg-" + s);
      seg.style.width = (b.totalUrls > 0 ? (100 * n) / b.totalUrls : 0) + "%";
      seg.textContent = n === 0 ? "" : n / Math.max(1, b.totalUrls) < 0.2 ? String(n) : s + " " + n;
      seg.title = s + ": " + n;
    });
    $("progress").setAttribute("aria-label", STATES.map(function (s) { return s + " " + b[s + "Count"]; }).join(", "));
    $("batch-total").textContent = String(b.totalUrls);
    $("batch-credits").textContent = "reserved " + b.creditsReserved + " · used " + b.creditsUsed + " · refunded " + b.creditsRefunded +
      " (" + b.creditsPerItem + " per item, " + b.output + ", max " + b.maxConcurrency + " at once)";
    var active = b.status === "pending" || b.status === "running";
    $("cancel-batch").disabled = !active;
    renderItems();
    var row = document.querySelector('#batch-list tr[data-batch-id="' + b.batchId + '"]');
    if (row) {
      row.children[1].textContent = "";
      row.children[1].appendChild(el("span", "status " + b.status, b.status));
      row.children[2].textContent = (b.completedCount + b.failedCount) + " / " + b.totalUrls;
    }
  }

  function renderItems() {
    var body = $("items");
    body.textContent = "";
    current.items.forEach(function (item) {
      var tr = el("tr");
      tr.dataset.itemId = item.uuid;
      tr.appendChild(el("td", "url", item.url));
      tr.appendChild(el("td", "custom-id", item.customId == null ? "" : item.customId));
      var st = el("td"); st.appendChild(el("span", "status " + item.status, item.status)); tr.appendChild(st);
      tr.appendChild(el("td", null, item.attempts));
      var res = el("td");
      if (item.resultUrl) {
        var btn = el("button", "view-result", "View result");
        btn.addEventListener("click", function () { showResult(item); });
        res.appendChild(btn);
      } else if (item.error) {
        res.appendChild(el("span", "error", (item.errorCode ? item.errorCode + ": " : "") + item.error));
      }
      tr.appendChild(res);
      body.appendChild(tr);
    });
    var more = current.batch && current.batch.totalUrls > current.items.length;
    $("items-note").textContent = more ? "Showing the first " + current.items.length + " of " + current.batch.totalUrls + " items." : "";
  }

  function showResult(item) {
    var box = $("result-box");
    box.classList.remove("hidden");
    $("result-title").textContent = item.url;
    $("result-view").textContent = "Loading…";
    api(item.resultUrl).then(function (body) {
      var text = typeof body === "string" ? body : JSON.stringify(body, null, 2);
      $("result-view").textContent = text.length > 200000 ? text.slice(0, 200000) + "\n… (truncated)" : text;
    }, function (err) { $("result-view").textContent = "Could not load the result: " + describe(err); });
  }
  $("close-result").addEventListener("click", function () { $("result-box").classList.add("hidden"); });

  // ------------------------------------------------------------------ download results (the key goes as a header, so fetch, then save)

  function download(format) {
    if (!current) return;
    var id = current.batchId;
    var ext = format === "csv" ? "csv" : "jsonl";
    var status = $("download-status");
    status.className = "muted";
    status.textContent = "Preparing " + ext.toUpperCase() + "…";
    var headers = new Headers();
    headers.set("x-api-key", apiKey || "");
    fetch("/api/batch/scrape/" + encodeURIComponent(id) + "/results?format=" + format, { headers: headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (res) {
        if (!res.ok) return res.json().catch(function () { return null; }).then(function (body) {
          var err = new Error((body && body.message) || ("HTTP " + res.status)); err.code = body && body.code; throw err;
        });
        var complete = res.headers.get("x-batch-complete") === "true";
        return res.blob().then(function (blob) { return { blob: blob, complete: complete }; });
      })
      .then(function (got) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(got.blob);
        a.download = "batch-" + id + "." + ext;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
        status.textContent = "Downloaded " + a.download + (got.complete ? "" : " (the batch is still running: results so far)");
      }, function (err) { status.className = "error"; status.textContent = "Download failed: " + describe(err); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.download"), function (btn) {
    btn.addEventListener("click", function () { download(btn.dataset.format); });
  });

  $("cancel-batch").addEventListener("click", function () {
    if (!current || !current.batch) return;
    var b = current.batch;
    var ok = window.confirm("Cancel batch " + b.batchId + "?\n\nItems not started yet are cancelled and their credits refunded; running items finish and are charged.");
    if (!ok) return;
    var id = b.batchId;
    $("cancel-batch").disabled = true;
    api("/api/batch/scrape/" + encodeURIComponent(id), { method: "DELETE" }).then(function (r) {
      $("cancel-result").className = "ok";
      $("cancel-result").textContent = "Cancelled " + r.cancelledItems + " items, refunded " + r.creditsRefunded + " credits.";
    }, function (err) {
      $("cancel-result").className = "error";
      $("cancel-result").textContent = "Cancel failed: " + describe(err);
    }).then(function () {
      refreshCredits();
      usageSoon();
      refreshBatches();
      if (current && current.batchId === id) loadBatch();
    });
  });

  // ------------------------------------------------------------------ live: WebSocket, key as subprotocol

  function setBadge(state, text) {
    var badge = $("live-badge");
    badge.className = "badge " + state;
    badge.dataset.state = state;
    badge.textContent = text || state;
  }

  function liveUrl(batchId) {
    var u = new URL("/api/batch/scrape/" + encodeURIComponent(batchId) + "/live", location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.search = "";
    u.hash = "";
    return u.href;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (!current || !apiKey) return;
    var batchId = current.batchId;
    var opened = false;
    var ws;
    try {
      ws = new WebSocket(liveUrl(batchId), ["batch-live", apiKey]);
    } catch (e) {
      scheduleReconnect(batchId, false);
      return;
    }
    socket = ws;
    setBadge(attempt === 0 ? "connecting" : "reconnecting", attempt === 0 ? "connecting…" : "reconnecting…");
    ws.onopen = function () {
      if (ws !== socket) return;
      opened = true;
      var again = attempt > 0;
      attempt = 0;
      setBadge("live", "live");
      startPing(ws);
      // Anything missed while disconnected: the first message has the counts, the items are read again.
      if (again) { soon("items", loadBatch, 200); soon("credits", refreshCredits, 200); }
    };
    ws.onmessage = function (ev) {
      if (ws !== socket) return;
      clearTimeout(pongTimer);
      if (ev.data === "pong") return;
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && msg.type === "batch" && current && msg.batch && msg.batch.batchId === current.batchId) applyLive(msg);
    };
    ws.onerror = function () { /* onclose follows */ };
    ws.onclose = function (ev) {
      if (ws !== socket) return;
      socket = null;
      stopPing();
      // 4001: the key was revoked; check over HTTP (it will say 401) rather than reconnect at once.
      if (current && current.batchId === batchId) scheduleReconnect(batchId, opened && ev.code !== 4001);
    };
  }

  function scheduleReconnect(batchId, wasOpen) {
    var delay = Math.min(1000 * Math.pow(2, attempt), MAX_BACKOFF_MS);
    attempt += 1;
    setBadge("reconnecting", "reconnecting in " + Math.round(delay / 1000) + " s");
    reconnectTimer = setTimeout(function () {
      if (!current || current.batchId !== batchId) return;
      if (wasOpen) { connect(); return; }
      // Never opened: the key or the batch may be gone. Ask over HTTP before trying again.
      api("/api/batch/scrape/" + encodeURIComponent(batchId) + "?limit=1").then(function () { connect(); }, function (err) {
        if (err.status === 401 || err.status === 403 || err.status === 404) {
          setBadge("offline", "offline");
          $("batch-error").textContent = "Live view stopped: " + describe(err);
        } else connect();
      });
    }, delay);
  }

  function startPing(ws) {
    stopPing();
    pingTimer = setInterval(function () {
      if (ws !== socket) return;
      try { ws.send("ping"); } catch (e) { return; }
      clearTimeout(pongTimer);
      pongTimer = setTimeout(function () {
        // No answer: the connection is dead even if the browser has not noticed yet.
        if (ws !== socket) return;
        socket = null;
        stopPing();
        try { ws.close(); } catch (e) { /* closed */ }
        if (current) scheduleReconnect(current.batchId, true);
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }
  function stopPing() { clearInterval(pingTimer); clearTimeout(pongTimer); pingTimer = null; pongTimer = null; }

  function applyLive(msg) {
    current.batch = msg.batch;
    if (msg.item) {
      var found = false;
      current.items = current.items.map(function (i) {
        if (i.uuid !== msg.item.uuid) return i;
        found = true;
        return msg.item;
      });
      if (!found && current.items.length < ITEMS_LIMIT && current.items.length < msg.batch.totalUrls) soon("items", loadBatch, 300);
    } else {
      // Starts and cancels carry no item: read the first page again, at most every 300 ms.
      soon("items", loadBatch, 300);
    }
    render();
    soon("credits", refreshCredits, 500);
    var b = msg.batch;
    if (b.status !== "pending" && b.status !== "running") soon("batches", refreshBatches, 300);
    // The last settlement reaches the account through the batch's outbox: read the credits once more.
    if (b.pendingCount === 0 && b.runningCount === 0) setTimeout(function () { refreshCredits(); refreshUsage(); }, 2000);
    else usageSoon();
  }

${USAGE_SCRIPT}
  // ------------------------------------------------------------------ start

  var s = storage();
  var saved = s && s.getItem(KEY_STORE);
  if (saved) useKey(saved);
  window.addEventListener("pagehide", function () { if (socket) { try { socket.close(1001, "page closed"); } catch (e) { /* closed */ } } });
})();
`;

const BODY = `
<header>
  <h1>Batch scrape dashboard</h1>
  <a href="/docs" class="docs-link">API reference</a>
</header>
<main>
  <div>
    <section id="key-section">
      <h2>API key</h2>
      <form id="key-form" method="post" action="#" autocomplete="off">
        <label for="api-key">Paste your API key</label>
        <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="bsk_…" />
        <div class="row"><button class="primary" type="submit" id="use-key">Use key</button></div>
        <p id="key-status" class="muted"></p>
        <p class="muted">The key stays in this tab (sessionStorage) and is sent only as a request header; it is never put in a URL.</p>
      </form>
      <div id="key-active" class="hidden">
        <p class="ok">Key in use (kept in this tab only).</p>
        <button type="button" id="forget-key">Forget key</button>
      </div>
    </section>
    <section id="create" class="hidden">
      <h2>New batch</h2>
      <form id="create-form" method="post" action="#">
        <label for="urls">URLs, one per line</label>
        <textarea id="urls" spellcheck="false" placeholder="https://example.com/a&#10;https://example.com/b"></textarea>
        <div class="row">
          <div class="grow"><label for="output">Output</label>
            <select id="output"><option value="json">json (2 credits)</option><option value="markdown">markdown (1 credit)</option></select></div>
          <div class="grow"><label for="max-concurrency">Max at once</label><input id="max-concurrency" type="number" min="1" max="20" value="5" /></div>
        </div>
        <div class="row"><button class="primary" type="submit" id="create-button">Create batch</button></div>
        <p id="create-status" class="muted"></p>
      </form>
    </section>
    <section id="batches" class="hidden">
      <div class="row head"><h2 class="grow">Your batches</h2><button type="button" id="refresh-batches">Refresh</button></div>
      <table>
        <thead><tr><th>Batch</th><th>Status</th><th>Done</th><th>Created</th></tr></thead>
        <tbody id="batch-list"></tbody>
      </table>
      <p id="batch-list-empty" class="muted hidden">No batches yet.</p>
    </section>
  </div>
  <div id="app" class="hidden">
    <section id="credits">
      <div class="row head"><h2 class="grow">Credits</h2>
        <span id="credits-updated" class="muted"></span><button type="button" id="refresh-credits">Refresh</button></div>
      <dl class="credits">
        <div><dt>Balance</dt><dd id="credit-balance">–</dd></div>
        <div><dt>Reserved</dt><dd id="credit-reserved">–</dd></div>
        <div><dt>Used</dt><dd id="credit-used">–</dd></div>
        <div><dt>Refunded</dt><dd id="credit-refunded">–</dd></div>
        <div><dt>Granted</dt><dd id="credit-granted">–</dd></div>
      </dl>
    </section>
${USAGE_BODY}
    <section id="batch" class="hidden">
      <div class="row head"><h2 class="grow">Batch <span id="batch-id" class="id"></span></h2>
        <span id="batch-status" class="status"></span><span id="live-badge" class="badge offline" data-state="offline">not connected</span></div>
      <p id="batch-error" class="error"></p>
      <div id="progress" class="bar" role="img" aria-label="">
        <div id="seg-completed" class="seg completed"></div><div id="seg-failed" class="seg failed"></div>
        <div id="seg-cancelled" class="seg cancelled"></div><div id="seg-running" class="seg running"></div>
        <div id="seg-pending" class="seg pending"></div>
      </div>
      <ul class="legend">
        <li><span class="swatch pending"></span>pending <b id="count-pending">0</b></li>
        <li><span class="swatch running"></span>running <b id="count-running">0</b></li>
        <li><span class="swatch completed"></span>completed <b id="count-completed">0</b></li>
        <li><span class="swatch failed"></span>failed <b id="count-failed">0</b></li>
        <li><span class="swatch cancelled"></span>cancelled <b id="count-cancelled">0</b></li>
        <li class="muted">of <b id="batch-total">0</b></li>
      </ul>
      <p id="batch-credits" class="muted"></p>
      <div class="row"><button type="button" class="danger" id="cancel-batch">Cancel batch</button><span id="cancel-result"></span></div>
      <div class="row">Download results:
        <button type="button" id="download-jsonl" class="download" data-format="ndjson">JSONL</button>
        <button type="button" id="download-csv" class="download" data-format="csv">CSV</button>
        <span id="download-status" class="muted"></span></div>
      <div id="result-box" class="hidden">
        <div class="row"><strong id="result-title" class="id grow"></strong><button type="button" id="close-result">Close</button></div>
        <pre id="result-view"></pre>
      </div>
      <table>
        <thead><tr><th>URL</th><th>Your id</th><th>Status</th><th>Attempts</th><th>Result</th></tr></thead>
        <tbody id="items"></tbody>
      </table>
      <p id="items-note" class="muted"></p>
    </section>
  </div>
</main>
`;

/** The page; `nonce` must match the Content-Security-Policy the route sends. */
export function dashboardHtml(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta name="referrer" content="no-referrer" />
<link rel="icon" href="data:," />
<title>Batch scrape dashboard</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
${BODY}
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}

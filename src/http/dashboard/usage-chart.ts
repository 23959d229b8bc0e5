/**
 * The dashboard's usage chart: GET /api/usage-stats drawn as grouped bars (credits reserved,
 * charged, refunded per day or week) in inline SVG built with DOM calls (no library, no
 * external request; the page's strict CSP holds), and the range's totals in words. Pieces
 * of page.ts: its style, its markup, and its script, which runs inside the page's script
 * (it uses that script's `api`, `$` and `describe`). No template literals in the script.
 */

export const USAGE_STYLE = `
#usage-chart { width: 100%; height: 180px; display: block; }
#usage-range { width: auto; }
#usage-chart .u-reserved { fill: var(--running); } #usage-chart .u-charged { fill: var(--completed); }
#usage-chart .u-refunded { fill: var(--cancelled); }
#usage-chart .axis { stroke: var(--line); } #usage-chart text { fill: var(--muted); font-size: 10px; }
.swatch.u-reserved { background: var(--running); } .swatch.u-charged { background: var(--completed); }
.swatch.u-refunded { background: var(--cancelled); }
`;

export const USAGE_BODY = `
    <section id="usage">
      <div class="row head"><h2 class="grow">Usage</h2>
        <select id="usage-range" aria-label="Range"><option value="7d">7 days</option><option value="30d">30 days</option><option value="weekly">7 weeks</option></select>
        <button type="button" id="refresh-usage">Refresh</button></div>
      <svg id="usage-chart" viewBox="0 0 640 180" role="img" aria-label="Credits by period"></svg>
      <ul class="legend">
        <li><span class="swatch u-reserved"></span>reserved</li>
        <li><span class="swatch u-charged"></span>charged</li>
        <li><span class="swatch u-refunded"></span>refunded</li>
      </ul>
      <p id="usage-summary" class="muted"></p>
    </section>
`;

export const USAGE_SCRIPT = `
  // ------------------------------------------------------------------ usage chart

  var SVG_NS = "http://www.w3.org/2000/svg";
  var USAGE_METRICS = [["reserved", "creditsReserved"], ["charged", "creditsCharged"], ["refunded", "creditsRefunded"]];
  var usageTimer = null;

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function drawUsage(rows) {
    var chart = $("usage-chart");
    chart.textContent = "";
    var W = 640, H = 180, top = 8, bottom = 22, left = 4;
    var max = 1;
    rows.forEach(function (r) { USAGE_METRICS.forEach(function (m) { max = Math.max(max, r[m[1]]); }); });
    var slot = (W - left) / Math.max(1, rows.length);
    var bar = Math.max(1, (slot * 0.8) / USAGE_METRICS.length);
    var every = rows.length > 10 ? 5 : 1;
    chart.appendChild(svg("line", { x1: 0, y1: H - bottom, x2: W, y2: H - bottom, "class": "axis" }));
    rows.forEach(function (r, i) {
      var x0 = left + i * slot + slot * 0.1;
      USAGE_METRICS.forEach(function (m, j) {
        var v = r[m[1]];
        var h = ((H - top - bottom) * v) / max;
        var rect = svg("rect", { x: x0 + j * bar, y: H - bottom - h, width: Math.max(1, bar - 1), height: h, "class": "u-" + m[0],
          "data-period": r.date, "data-metric": m[0], "data-value": v });
        rect.appendChild(svg("title", {}, r.label + ": " + m[0] + " " + v));
        chart.appendChild(rect);
      });
      if (i % every === 0 || i === rows.length - 1) chart.appendChild(svg("text", { x: x0, y: H - 6 }, r.label));
    });
    var sum = function (f) { return rows.reduce(function (n, r) { return n + f(r); }, 0); };
    var requests = sum(function (r) { return r.requests; });
    var timed = sum(function (r) { return r.latency * r.requests; });
    chart.setAttribute("aria-label", "Credits by period: reserved " + sum(function (r) { return r.creditsReserved; }) +
      ", charged " + sum(function (r) { return r.creditsCharged; }) + ", refunded " + sum(function (r) { return r.creditsRefunded; }));
    $("usage-summary").textContent = "In this range: reserved " + sum(function (r) { return r.creditsReserved; }) +
      " · charged " + sum(function (r) { return r.creditsCharged; }) + " · refunded " + sum(function (r) { return r.creditsRefunded; }) +
      " credits; items completed " + sum(function (r) { return r.items.completed; }) + ", failed " + sum(function (r) { return r.items.failed; }) +
      ", cancelled " + sum(function (r) { return r.items.cancelled; }) + "; " + requests + " pages fetched" +
      (requests > 0 ? ", about " + Math.round(timed / requests) + " ms each" : "") + ".";
  }

  function refreshUsage() {
    var range = $("usage-range").value;
    return api("/api/usage-stats?range=" + encodeURIComponent(range)).then(function (u) {
      if ($("usage-range").value === range) drawUsage(u.data);
    }, function (err) { $("usage-summary").textContent = "Could not load usage: " + describe(err); });
  }
  function usageSoon() {
    if (usageTimer) return;
    usageTimer = setTimeout(function () { usageTimer = null; refreshUsage(); }, 1500);
  }
  $("usage-range").addEventListener("change", function () { refreshUsage(); });
  $("refresh-usage").addEventListener("click", function () { refreshUsage(); });
`;

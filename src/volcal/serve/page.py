"""The live page at ``/``: one self-contained HTML document (no CDN).

Plotly comes from ``/static/plotly.min.js``, which the app serves from the installed
``plotly`` package. The page opens ``WS /v1/stream``, draws the full surface from the
first message and applies each patch (one expiry) as it arrives: the per-expiry table
(ATM vol, RR25, BF25 in vol points, and which fit: the arbitrage-free surface's slice,
"moved" with its RMSE cost when the conditions changed it, or the free slice and why),
smiles per expiry (bid/ask bars, mark, the arbitrage-free fit and, dashed, the free
slice, from ``/v1/quotes``), the ATM term structure, RR/BF by tenor, staleness, guard counts and
latency. Element ids (``snapshot-time``, ``stale``, ``atm-<expiry>`` ...) are stable so a
browser test can read the values the page shows.
"""

from __future__ import annotations

import html
import json

from volcal.serve.settings import ServeSettings

__all__ = ["render_page"]

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>volcal live surface</title>
<style>
 body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
 header{display:flex;gap:1.2em;align-items:baseline;flex-wrap:wrap;padding:.6em 1em;background:#1d2330;color:#fff}
 header h1{font-size:1.1em;margin:0}
 header .kv{font-size:.9em;opacity:.92}
 .badge{padding:.1em .5em;border-radius:.6em;font-weight:600}
 .fresh{background:#2e7d32}.stale{background:#c62828}.starting{background:#777}
 main{display:grid;grid-template-columns:minmax(420px,1fr) minmax(420px,1fr);gap:.8em;padding:.8em}
 section{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002;padding:.5em .8em;min-width:0}
 section h2{font-size:.95em;margin:.2em 0 .4em}
 table{border-collapse:collapse;font-size:.82em;width:100%}
 td,th{padding:.15em .4em;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}
 th:first-child,td:first-child{text-align:left}
 .smiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.4em}
 .smile{height:220px}
 .wide{grid-column:1/-1}
 .plot{height:260px}
 .note{font-size:.78em;color:#555}
 select{font-size:.9em}
</style></head>
<body>
<header>
 <h1>volcal live surface</h1>
 <label class="kv">underlying <select id="underlying"></select></label>
 <span class="kv">state <span id="stale" class="badge starting">starting</span></span>
 <span class="kv">snapshot <span id="snapshot-time">-</span></span>
 <span class="kv">age <span id="age">-</span> s</span>
 <span class="kv">updates <span id="updates">0</span></span>
 <span class="kv">ws <span id="ws-state">connecting</span></span>
 <span class="kv note" id="source">__SOURCE__</span>
</header>
<main>
 <section><h2>Expiries (vols in vol points)</h2>
  <table id="expiries"><thead><tr><th>expiry</th><th>t (y)</th><th>forward</th><th>ATM</th>
  <th>RR25</th><th>BF25</th><th>RMSE (vol pts)</th><th>n</th><th>status</th><th title="free: the free SVI slice; arb-free: its slice of the arbitrage-free surface; *: hover the cell for why the free slice is shown">fit</th></tr></thead><tbody></tbody></table>
 </section>
 <section><h2>ATM term structure</h2><div id="term" class="plot"></div></section>
 <section><h2>RR25 / BF25 by tenor</h2><div id="rrbf" class="plot"></div></section>
 <section><h2>Guards and latency</h2>
  <table id="guards"><tbody></tbody></table>
  <table id="latency"><tbody></tbody></table>
 </section>
 <section class="wide"><h2>Smiles per expiry: bid/ask bars, mark, fit</h2><div id="smiles" class="smiles"></div></section>
</main>
<script src="/static/plotly.min.js"></script>
<script>
"use strict";
const UNDERLYINGS = __UNDERLYINGS__;
const S = {snap: null, stale: false, state: null, rows: new Map(), updates: 0, ws: null, lastQuotes: new Map(), timers: new Map(), u: UNDERLYINGS[0]};
const pct = x => (x === null || x === undefined || !isFinite(x)) ? "-" : (100 * x).toFixed(2);
const num = (x, d) => (x === null || x === undefined || !isFinite(x)) ? "-" : Number(x).toFixed(d);
const sid = e => String(e).replace(/[^A-Za-z0-9]/g, "");
const $ = id => document.getElementById(id);
const layout = (ytitle, xtitle) => ({margin: {l: 48, r: 10, t: 8, b: 36}, showlegend: false,
  yaxis: {title: {text: ytitle}}, xaxis: {title: {text: xtitle}}, font: {size: 10}});

function header(m) {
  if ("snapshot_time" in m) { S.snap = m.snapshot_time; $("snapshot-time").textContent = m.snapshot_time || "-"; }
  if ("stale" in m) S.stale = !!m.stale;
  const b = $("stale");
  const st = !S.snap ? "starting" : (S.stale ? "stale" : "fresh");
  b.textContent = st; b.className = "badge " + st;
  if ("age_s" in m) $("age").textContent = num(m.age_s, 1);
  if (m.guards) guards(m.guards);
  if (m.latency) latency(m.latency);
}
function kvTable(id, obj, fmt) {
  const tb = $(id).tBodies[0]; tb.innerHTML = "";
  const flat = [];
  (function walk(p, o) { for (const [k, v] of Object.entries(o || {})) {
    if (v !== null && typeof v === "object") walk(p + k + ".", v); else flat.push([p + k, v]); } })("", obj);
  for (const [k, v] of flat) { const tr = tb.insertRow(); tr.id = id + "-" + sid(k);
    tr.insertCell().textContent = k; tr.insertCell().textContent = fmt(k, v); }
}
function guards(g) { kvTable("guards", g, (k, v) => String(v)); }
function latency(l) {
  const tb = $("latency").tBodies[0]; tb.innerHTML = "";
  const h = tb.insertRow(); for (const c of ["latency (ms)", "p50", "p99", "max", "n"]) h.insertCell().textContent = c;
  for (const [k, v] of Object.entries(l || {})) {
    if (!v || typeof v !== "object" || !v.count) continue;
    const tr = tb.insertRow(); tr.id = "latency-" + sid(k); tr.insertCell().textContent = k;
    for (const f of ["p50_ms", "p99_ms", "max_ms"]) tr.insertCell().textContent = num(v[f], 1);
    tr.insertCell().textContent = v.count;
  }
}

function fitLabel(r) {  // which fit the row shows: the arbitrage-free slice (moved or not) or the free one, and why
  if (r.fit === "surface") return "arb-free" + (r.constraint && r.constraint.moved ? " (moved " + num(r.constraint.cost_vol, 2) + ")" : "");
  return r.fit === "free" ? "free" : "-";  // why: in the cell's tooltip (see table())
}
function rowsSorted() { return [...S.rows.values()].sort((a, b) => a.t - b.t); }
function table() {
  const tb = $("expiries").tBodies[0]; tb.innerHTML = "";
  for (const r of rowsSorted()) {
    const tr = tb.insertRow(); const e = sid(r.expiry); tr.id = "row-" + e;
    const cells = [[String(r.expiry).slice(0, 16).replace("T", " "), "expiry"], [num(r.t, 4), "t"],
      [num(r.forward, 1), "fwd"], [pct(r.atm_vol), "atm"], [pct(r.rr25), "rr25"], [pct(r.bf25), "bf25"],
      [num(r.rmse_vol, 2), "rmse"], [r.n_used ?? "-", "n"], [r.status ?? "-", "status"], [fitLabel(r), "fit"]];
    for (const [v, name] of cells) { const c = tr.insertCell(); c.textContent = v; c.id = name + "-" + e; }
    if (r.fit_reason) { const c = $("fit-" + e); c.title = r.fit_reason; c.textContent += " *"; }
  }
}
function curves() {
  const rows = rowsSorted().filter(r => isFinite(r.t));
  const days = rows.map(r => 365 * r.t);
  Plotly.react("term", [{x: days, y: rows.map(r => r.atm_vol === null ? null : 100 * r.atm_vol), mode: "lines+markers", name: "ATM"}],
    layout("ATM vol (vol pts)", "days to expiry"), {displayModeBar: false});
  Plotly.react("rrbf", [
    {x: days, y: rows.map(r => r.rr25 === null ? null : 100 * r.rr25), mode: "lines+markers", name: "RR25"},
    {x: days, y: rows.map(r => r.bf25 === null ? null : 100 * r.bf25), mode: "lines+markers", name: "BF25"}],
    Object.assign(layout("vol pts", "days to expiry"), {showlegend: true, legend: {orientation: "h"}}), {displayModeBar: false});
}
function smileDiv(r) {
  const e = sid(r.expiry); let d = $("smile-" + e);
  if (!d) { d = document.createElement("div"); d.id = "smile-" + e; d.className = "smile"; $("smiles").appendChild(d); }
  return d;
}
async function loadSmile(r, force) {
  const e = sid(r.expiry), now = Date.now(), wait = 1000 - (now - (S.lastQuotes.get(e) || 0));
  if (!force && wait > 0) {  // at most one quotes fetch per expiry per second, the last one kept
    if (!S.timers.has(e)) S.timers.set(e, setTimeout(() => { S.timers.delete(e);
      const cur = S.rows.get(String(r.expiry)); if (cur) loadSmile(cur, true); }, wait));
    return;
  }
  S.lastQuotes.set(e, now);
  try {
    const resp = await fetch("/v1/quotes?underlying=" + S.u + "&expiry=" + encodeURIComponent(r.expiry));
    if (!resp.ok) return;
    const q = await resp.json(); const traces = [];
    const qs = q.quotes || [];
    const bid = qs.map(x => x.bid_iv), ask = qs.map(x => x.ask_iv);
    const mid = qs.map((x, i) => (isFinite(bid[i]) && isFinite(ask[i]) && bid[i] !== null && ask[i] !== null) ? (bid[i] + ask[i]) / 2 : null);
    if (qs.length) {
      traces.push({x: qs.map(x => x.strike), y: mid.map(v => v === null ? null : 100 * v), mode: "markers", name: "bid/ask",
        marker: {size: 2, color: "#888"}, error_y: {type: "data", symmetric: false,
          array: qs.map((x, i) => mid[i] === null ? 0 : 100 * (ask[i] - mid[i])),
          arrayminus: qs.map((x, i) => mid[i] === null ? 0 : 100 * (mid[i] - bid[i])), thickness: 1, width: 0, color: "#9aa"}});
      traces.push({x: qs.map(x => x.strike), y: qs.map(x => x.mark_iv === null || x.mark_iv === undefined ? null : 100 * x.mark_iv),
        mode: "markers", name: "mark", marker: {size: 4, color: "#1565c0"}});
    }
    if (q.fit_free) traces.push({x: q.fit_free.strike, y: q.fit_free.iv.map(v => v === null ? null : 100 * v), mode: "lines", name: "free slice", line: {color: "#e8a0a0", dash: "dash", width: 1}});
    if (q.fit) traces.push({x: q.fit.strike, y: q.fit.iv.map(v => v === null ? null : 100 * v), mode: "lines", name: "fit", line: {color: "#c62828"}});
    const L = layout("vol pts", "strike");
    L.title = {text: String(r.expiry).slice(0, 10) + "  ATM " + pct(r.atm_vol), font: {size: 11}, y: 0.97};
    L.margin.t = 22;
    Plotly.react(smileDiv(r), traces, L, {displayModeBar: false});
  } catch (err) { /* the next patch retries */ }
}
function snapshot(m) {
  S.rows.clear();
  const st = m.state || {};
  for (const r of st.expiries || []) S.rows.set(String(r.expiry), r);
  $("smiles").innerHTML = ""; S.lastQuotes.clear();
  header(Object.assign({}, st, m));
  table(); curves();
  for (const r of rowsSorted()) smileDiv(r);  // panels in expiry order
  for (const r of rowsSorted()) loadSmile(r, true);
}
function patch(m) {
  const p = m.patch || {};
  const rows = [];
  if (Array.isArray(p.expiries)) rows.push(...p.expiries);
  else if (p.expiry && typeof p.expiry === "object") rows.push(p.expiry);
  else if (p.row && typeof p.row === "object") rows.push(p.row);
  else if (p.expiry) rows.push(p);
  const live = [];
  for (const r of rows) {
    const key = String(r.expiry);
    if (r.removed) { S.rows.delete(key); const d = $("smile-" + sid(key)); if (d) d.remove(); continue; }
    S.rows.set(key, Object.assign({}, S.rows.get(key) || {}, r)); live.push(key);
  }
  if (m.snapshot_time !== undefined) header(m);
  table(); curves();
  for (const key of live) loadSmile(S.rows.get(key), false);
}
function connect() {
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + location.host + "/v1/stream?underlying=" + S.u);
  S.ws = ws;
  ws.onopen = () => { $("ws-state").textContent = "open"; };
  ws.onclose = () => { $("ws-state").textContent = "closed"; if (S.ws === ws) setTimeout(connect, 1000); };
  ws.onmessage = ev => {
    const top = JSON.parse(ev.data);
    for (const m of (top.type === "batch" ? top.messages : [top])) {
      S.updates += 1; $("updates").textContent = S.updates;
      if (m.type === "snapshot") snapshot(m); else if (m.type === "patch") patch(m);
      else if (m.type === "status") header(m);
    }
  };
}
const sel = $("underlying");
for (const u of UNDERLYINGS) { const o = document.createElement("option"); o.value = o.textContent = u; sel.appendChild(o); }
sel.onchange = () => { S.u = sel.value; const old = S.ws; S.ws = null; if (old) old.close(); connect(); };
connect();
</script>
</body></html>
"""


def render_page(settings: ServeSettings) -> str:
    """The page's HTML for the configured underlyings and source."""
    return _PAGE.replace("__UNDERLYINGS__", json.dumps(list(settings.underlyings))).replace(
        "__SOURCE__", html.escape(settings.source or "")
    )

// The CacheMax dashboard: polls /api/stats (the daemons' stats, docs/STATS.md) every
// POLL_MS, keeps the last HISTORY points of the selected directory for the charts, and fills
// every number with textContent (paths come from the file system: never HTML). Works without
// Chart.js: the charts are then replaced by a note and the numbers stay live.
"use strict";

const POLL_MS = 2000;
const HISTORY = 150;
const MB = 1e6;

// The token comes in the address once; it is kept for this tab (the API is asked with it in a
// header, which a page of another site cannot send) and taken out of the address bar.
const params = new URLSearchParams(location.search);
let token = params.get("token") || sessionStorage.getItem("cachemax_token") || "";
if (params.get("token")) {
  sessionStorage.setItem("cachemax_token", token);
  history.replaceState(null, "", location.pathname);
}

let selected = null;              // the directory the charts and files are about
const previous = new Map();       // dir -> {t, counters} of the last poll (for rates)
const series = new Map();         // dir -> arrays of chart points
let charts = null;

const $ = (id) => document.getElementById(id);

function pct(x) { return x == null || isNaN(x) ? "—" : (100 * x).toFixed(1) + "%"; }
function bytes(b) {
  if (b == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (b >= 1024 && u < units.length - 1) { b /= 1024; u++; }
  return (u ? b.toFixed(1) : b.toFixed(0)) + " " + units[u];
}
function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

async function api(path, options) {
  const r = await fetch(path, Object.assign({ headers: { "X-CacheMax-Token": token }, cache: "no-store" }, options || {}));
  if (r.status === 401 || r.status === 403)
    throw new Error("refused (" + r.status + "): open the address `cachemax web` printed; its token changes at every start");
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error((body && body.error) || ("HTTP " + r.status));
  return body;
}

async function evict(dir, path) {
  const what = path ? "the cache copy of " + path : "every cache copy of " + dir;
  if (!confirm("Drop " + what + "? The files stay as they are; only the cache copy goes.")) return;
  const q = "dir=" + encodeURIComponent(dir) + (path ? "&path=" + encodeURIComponent(path) : "");
  try {
    const r = await api("/api/evict?" + q, { method: "POST" });
    showError("");
    $("updated").textContent = "evicted " + (r.evicted ?? 0) + " cache cop" + (r.evicted === 1 ? "y" : "ies");
  } catch (e) {
    showError("evict failed: " + e.message);
  }
  poll();
}

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text;
}

function makeCharts() {
  if (typeof Chart === "undefined") {
    $("charts-missing").hidden = false;
    $("charts").hidden = true;
    return null;
  }
  const line = (id, datasets, yOptions) => new Chart($(id), {
    type: "line",
    data: { labels: [], datasets: datasets.map(([label, color, dash]) => ({
      label, data: [], borderColor: color, backgroundColor: color, borderDash: dash ? [6, 4] : [],
      pointRadius: 0, borderWidth: 2, spanGaps: false })) },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
      scales: { x: { ticks: { maxTicksLimit: 6 } }, y: Object.assign({ beginAtZero: true }, yOptions || {}) },
      plugins: { legend: { labels: { boxWidth: 12 } } } },
  });
  return {
    hit: line("chart-hit", [["by bytes", "#1f7a45"], ["by reads", "#2e90fa", true]], { max: 100 }),
    mbps: line("chart-mbps", [["from cache", "#1f7a45"], ["from original", "#b54708"]]),
    latency: line("chart-latency", [["cache p50", "#1f7a45"], ["cache p99", "#1f7a45", true],
                                    ["original p50", "#b54708"], ["original p99", "#b54708", true]]),
    occupancy: line("chart-occupancy", [["used", "#2e90fa"], ["eviction starts (95%)", "#b42318", true],
                                        ["eviction stops (85%)", "#667085", true]], { max: 100 }),
    evictions: new Chart($("chart-evictions"), {
      type: "bar",
      data: { labels: [], datasets: [{ label: "evictions/s", data: [], backgroundColor: "#b42318" }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
    }),
  };
}

// One point per poll: rates from the difference of two snapshots of the cumulative counters.
function record(d, now) {
  const s = d.stats;
  if (!s) return;
  const c = s.stats.counters;
  const prev = previous.get(d.dir);
  previous.set(d.dir, { t: now, c });
  let h = series.get(d.dir);
  if (!h) { h = { labels: [], hit: [[], []], mbps: [[], []], latency: [[], [], [], []], occupancy: [[], [], []], evictions: [[]] }; series.set(d.dir, h); }
  const dt = prev ? (now - prev.t) / 1000 : 0;
  const rate = (key) => (prev && dt > 0 ? Math.max(0, c[key] - prev.c[key]) / dt : null);
  const w = s.windows && s.windows["1m"];
  const wReads = w ? w.read_ops_cache + w.read_ops_origin : 0;
  const lat = (k, q) => (w && w.latency_us && w.latency_us[k] ? w.latency_us[k][q] : null);
  const push = (arr, v) => { arr.push(v); if (arr.length > HISTORY) arr.shift(); };
  push(h.labels, new Date(now).toLocaleTimeString());
  push(h.hit[0], wReads ? 100 * w.hit_ratio_bytes : null);
  push(h.hit[1], wReads ? 100 * w.hit_ratio_ops : null);
  const mc = rate("read_bytes_cache"), mo = rate("read_bytes_origin");
  push(h.mbps[0], mc == null ? null : mc / MB);
  push(h.mbps[1], mo == null ? null : mo / MB);
  push(h.latency[0], lat("read_cache", "p50"));
  push(h.latency[1], lat("read_cache", "p99"));
  push(h.latency[2], lat("read_origin", "p50"));
  push(h.latency[3], lat("read_origin", "p99"));
  push(h.occupancy[0], s.cache_size ? 100 * s.cache_bytes / s.cache_size : null);
  push(h.occupancy[1], 95);
  push(h.occupancy[2], 85);
  push(h.evictions[0], rate("evictions"));
  h.now = { mc, mo };
}

function drawCharts() {
  const h = selected && series.get(selected);
  if (!charts || !h) return;
  for (const [name, chart] of Object.entries(charts)) {
    chart.data.labels = h.labels.slice();
    h[name].forEach((arr, i) => { chart.data.datasets[i].data = arr.slice(); });
    chart.update("none");
  }
}

function renderDirs(dirs) {
  const tbody = $("dirs").tBodies[0];
  tbody.replaceChildren();
  if (!dirs.length) {
    const tr = tbody.insertRow();
    cell(tr, "no directory is accelerated: cachemax start DIR --cache CACHEDIR", "muted").colSpan = 10;
  }
  for (const d of dirs) {
    const s = d.stats, c = s && s.stats.counters;
    const tr = tbody.insertRow();
    tr.dataset.dir = d.dir;
    if (d.dir === selected) tr.className = "selected";
    tr.onclick = () => { selected = d.dir; render(lastReply); };
    cell(tr, d.dir, "path dir");
    cell(tr, d.health + (d.stats_error ? " (" + d.stats_error + ")" : ""), d.health === "ok" ? "health-ok" : "health-bad");
    cell(tr, s ? pct(s.stats.hit_ratio_bytes) + " / " + pct(s.stats.hit_ratio_ops) : "—", "hit");
    cell(tr, c ? bytes(c.read_bytes_cache) + " (" + c.read_ops_cache + " reads)" : "—");
    cell(tr, c ? bytes(c.read_bytes_origin) + " (" + c.read_ops_origin + " reads)" : "—");
    cell(tr, s ? bytes(s.cache_bytes) + " / " + bytes(s.cache_size) : bytes(d.cache_size));
    cell(tr, d.transport);
    cell(tr, d.passthrough ? (s && s.passthrough_counting === "bpf" ? "on (counted by BPF)" : "on") : "off: " + d.passthrough_reason);
    const cacheCell = cell(tr, d.cache, "path");
    if (s && typeof s.cache_dax === "boolean") {   // the cache device: DAX (pmem) or not, and why
      const dax = document.createElement("div");
      dax.className = s.cache_dax ? "dax" : "muted";
      dax.textContent = s.cache_dax ? "DAX" : "no DAX";
      dax.title = s.cache_dax_why;
      cacheCell.appendChild(dax);
    }
    const b = document.createElement("button");
    b.textContent = "evict all";
    b.title = "drop every cache copy of this directory";
    b.onclick = (e) => { e.stopPropagation(); evict(d.dir, ""); };
    tr.insertCell().appendChild(b);
  }
}

function renderFiles(d) {
  const tbody = $("files").tBodies[0];
  tbody.replaceChildren();
  const files = (d && d.stats && d.stats.files) || [];
  $("files-for").textContent = d ? "in " + d.dir : "";
  if (!files.length) {
    cell(tbody.insertRow(), "no file has been read yet", "muted").colSpan = 9;
    return;
  }
  for (const f of files) {
    const tr = tbody.insertRow();
    cell(tr, f.path || "(inode " + f.ino + ", no name the kernel holds)", "path");
    cell(tr, f.state);
    cell(tr, bytes(f.size));
    cell(tr, bytes(f.bytes_cached));
    cell(tr, bytes(f.bytes_served));
    cell(tr, bytes(f.read_bytes_cache));
    cell(tr, bytes(f.read_bytes_origin));
    cell(tr, bytes(f.write_bytes));
    const td = tr.insertCell();
    if (f.path && f.state !== "none") {
      const b = document.createElement("button");
      b.textContent = "evict";
      b.onclick = () => evict(d.dir, f.path);
      td.appendChild(b);
    }
  }
}

function renderHeadline(dirs, d) {
  const bad = dirs.filter((x) => x.health !== "ok" || !x.stats);
  const box = $("headline");
  box.className = "headline " + (!dirs.length ? "unknown" : bad.length ? "bad" : "ok");
  $("verdict").textContent = !dirs.length ? "Nothing accelerated" : bad.length ? "Needs attention" : "Working";
  $("verdict-why").textContent = !dirs.length ? "start one with: cachemax start DIR --cache CACHEDIR" :
    bad.length ? bad.map((x) => x.dir + ": " + x.health).join("; ") :
    dirs.length + " director" + (dirs.length === 1 ? "y" : "ies") + " served with the cache";
  const s = d && d.stats;
  const w = s && s.windows && s.windows["1m"];
  $("hit-bytes").textContent = s ? pct(s.stats.hit_ratio_bytes) : "—";
  $("hit-ops").textContent = s ? pct(s.stats.hit_ratio_ops) : "—";
  $("hit-1m").textContent = w && w.read_ops_cache + w.read_ops_origin ? pct(w.hit_ratio_bytes) : "—";
  const h = d && series.get(d.dir);
  const now = h && h.now;
  $("mbps").textContent = now && now.mc != null ? (now.mc / MB).toFixed(1) + " / " + (now.mo / MB).toFixed(1) : "—";
  $("selected-dir").textContent = d ? d.dir + (s ? " · up " + s.uptime_seconds + " s · passthrough reads " +
    (s.passthrough_counting === "bpf" ? "counted in the kernel" : "NOT counted (" + s.passthrough_counting_why + ")") : "") : "";
  $("charts-for").textContent = d ? "of " + d.dir : "";
  $("occupancy-text").textContent = s ? bytes(s.cache_bytes) + " of " + bytes(s.cache_size) : "—";
}

let lastReply = null;

function render(reply) {
  if (!reply) return;
  const dirs = reply.directories;
  if (!dirs.some((d) => d.dir === selected)) selected = dirs.length ? dirs[0].dir : null;
  const d = dirs.find((x) => x.dir === selected);
  renderHeadline(dirs, d);
  renderDirs(dirs);
  renderFiles(d);
  drawCharts();
}

async function poll() {
  try {
    const reply = await api("/api/stats");
    const now = Date.now();
    for (const d of reply.directories) record(d, now);
    lastReply = reply;
    render(reply);
    showError(reply.error || "");
    $("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
  } catch (e) {
    showError(e.message);
    $("updated").textContent = "not updated";
  }
}

window.addEventListener("DOMContentLoaded", () => {
  charts = makeCharts();
  poll();
  setInterval(poll, POLL_MS);
});

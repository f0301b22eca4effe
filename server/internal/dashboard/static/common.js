// shelfsync dashboard: what every page shares — DOM building, the API
// client, formatting, the warehouse picker and the plots, which the page
// draws itself as inline SVG from the API's JSON (no library, nothing
// fetched from elsewhere). Every value from the server goes into the page
// through textContent or an attribute.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}

function token() { return localStorage.getItem("shelfsync.token") || ""; }
function me() { const i = $("me"); return ((i && i.value) || "").trim() || "dashboard"; }

// ownerFilter is the owner the dashboard shows (header field; "" every
// owner). A token bound to an owner sees only its own anyway.
function ownerFilter() { return localStorage.getItem("shelfsync.owner") || ""; }
// ownerScoped are the reads that take ?owner= (the API's owner filter).
const ownerScoped = [/^\/api\/v1\/stock(\?|\/near-expiry|\/snapshot\.csv|$)/, /^\/api\/v1\/availability(\?|$)/,
  /^\/api\/v1\/channels\/[^/]+\/availability/, /^\/api\/v1\/alerts(\?|$)/, /^\/api\/v1\/conflicts(\?|$)/,
  /^\/api\/v1\/orders(\?|\/per-hour|$)/, /^\/api\/v1\/reorder\//];
function withOwner(path, opts) {
  const o = tokenOwner() ? "" : ownerFilter(); // a client's token sees its own owner's only
  if (!o || (opts.method && opts.method !== "GET") || /[?&]owner=/.test(path) || !ownerScoped.some((re) => re.test(path))) return path;
  return path + (path.includes("?") ? "&" : "?") + "owner=" + encodeURIComponent(o);
}

async function api(path, opts = {}) {
  path = withOwner(path, opts);
  const headers = Object.assign({ "Accept": "application/json" }, opts.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (opts.body && typeof opts.body !== "string") { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.body); }
  const resp = await fetch(path, Object.assign({}, opts, { headers }));
  if (resp.status === 401) { status("the server wants an API token: click Token"); throw new Error("unauthorized"); }
  const text = await resp.text();
  const body = text ? JSON.parse(text) : {};
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

// who is the token the dashboard uses (GET /api/v1/whoami, loadWho):
// one bound to an owner (a 3PL's client) sees only that owner's data, and
// the dashboard leaves out what it may not use rather than show 403s.
let who = {};
async function loadWho() {
  try { who = await api("/api/v1/whoami"); } catch (e) { who = {}; }
  return who;
}
function tokenOwner() { return who.owner || ""; }
const notForClients = "not available to client tokens";

// ownerLimits hides, for a token bound to an owner, each element marked
// data-not-for-owner (its value names what it is) and puts a short note
// in its place; the pages call it after loadWho.
function ownerLimits() {
  const o = tokenOwner();
  document.body.dataset.tokenOwner = o;
  if (!o) return;
  for (const e of document.querySelectorAll("[data-not-for-owner]")) {
    if (e.hidden) continue;
    e.hidden = true;
    const what = e.dataset.notForOwner;
    if (!what) continue;
    const tag = e.tagName === "A" || e.tagName === "LABEL" || e.tagName === "SPAN" ? "span" : "p";
    e.after(el(tag, { class: "muted owner-note", dataset: { ownerNote: what } }, `${what}: ${notForClients} (this token is owner ${o}'s).`));
  }
  const of = $("owner-filter");
  if (of) { of.value = o; of.disabled = true; of.title = `this token is bound to owner ${o}: it shows that owner's data only`; }
}

function status(msg) { const s = $("status-line"); if (s) s.textContent = msg; }
function ago(ms) {
  if (!ms) return "never";
  return duration((Date.now() - ms) / 1000) + " ago";
}
// duration formats seconds as "42 s", "5 min", "3 h 10 min" or "2 d 4 h".
function duration(sec) {
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.round((s % 86400) / 3600) + " h";
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
function numCell(n) { return el("td", { class: "num" + (n < 0 ? " neg" : "") }, n); }
function hhmm(ms) { return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); }

// table fills tbody with one row per item (row returns a <tr>), or one
// row saying empty when there is none.
function fillTable(tbody, items, row, empty) {
  clear(tbody);
  for (const it of items) tbody.append(row(it));
  if (!items.length) {
    const cols = tbody.closest("table").querySelectorAll("thead th").length || 1;
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: cols, class: "muted" }, empty)));
  }
}

// progress returns a cell with a labelled <progress> bar and its figure.
function progressCell(done, total, label) {
  const pct = total > 0 ? Math.round((100 * done) / total) : 0;
  return el("td", { class: "progress" },
    el("progress", { max: String(Math.max(total, 1)), value: String(Math.min(done, Math.max(total, 1))), "aria-label": label }),
    ` ${done} / ${total} (${pct}%)`);
}

// debounce(f) coalesces bursts of live events into one reload.
function debounce(f, ms = 300) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(() => f().catch((e) => status(e.message)), ms); };
}

// warehousePicker fills the <select> with the warehouses the server knows
// and keeps the choice (URL ?warehouse=, then the last one used); onChange
// runs on a change. It returns the chosen warehouse.
async function warehousePicker(sel, onChange) {
  const { items } = await api("/api/v1/warehouses");
  const names = items.map((w) => w.warehouse);
  const want = new URLSearchParams(location.search).get("warehouse") || localStorage.getItem("shelfsync.wh") || "";
  clear(sel);
  for (const n of names) sel.append(el("option", { value: n }, n));
  sel.value = names.includes(want) ? want : (names[0] || "");
  if (!sel.dataset.bound) {
    sel.dataset.bound = "1";
    sel.addEventListener("change", () => { localStorage.setItem("shelfsync.wh", sel.value); onChange().catch((e) => status(e.message)); });
  }
  return sel.value;
}

// ---- plots: inline SVG drawn from JSON ----
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

// chart draws into box a plot over x (Unix ms): bars (one rect.bar per
// point) and/or a line (one circle.pt per point whose y is not null; with
// step, it holds each value until the next point). Each mark carries its
// figures in data-x and data-y and a <title> tooltip. opts: name (the
// svg's data-plot), label (its accessible name), bars, line, step, xfmt,
// barLabel, lineLabel, width, height.
function chart(box, opts) {
  const W = opts.width || 640, H = opts.height || 170, L = 44, R = 10, T = 10, B = 24;
  const bars = opts.bars || [], line = opts.line || [];
  const xs = bars.concat(line).map((p) => p.x);
  const ys = bars.map((p) => p.y).concat(line.filter((p) => p.y != null).map((p) => p.y));
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const yMax = Math.max(1, ...ys), yMin = Math.min(0, ...ys);
  const step = bars.length > 1 ? (bars[1].x - bars[0].x) : 0;
  const span = (x1 - x0) + step || 1;
  const px = (x) => L + ((x - x0) / span) * (W - L - R);
  const py = (y) => T + (1 - (y - yMin) / (yMax - yMin)) * (H - T - B);
  const s = svg("svg", { class: "plot", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label, "data-plot": opts.name, preserveAspectRatio: "xMinYMin meet" },
    svg("title", {}, opts.label));
  // axes: 0 and the top value, the first and last time
  s.append(svg("line", { class: "axis", x1: L, y1: py(0), x2: W - R, y2: py(0) }));
  s.append(svg("text", { class: "tick", x: L - 4, y: py(yMax) + 4, "text-anchor": "end" }, yMax));
  s.append(svg("text", { class: "tick", x: L - 4, y: py(yMin) + 4, "text-anchor": "end" }, yMin));
  const fmt = opts.xfmt || hhmm;
  if (xs.length) {
    s.append(svg("text", { class: "tick", x: L, y: H - 6 }, fmt(x0)));
    s.append(svg("text", { class: "tick", x: W - R, y: H - 6, "text-anchor": "end" }, fmt(x1)));
  }
  const bw = bars.length ? Math.max(1, ((W - L - R) / bars.length) - 1) : 0;
  for (const p of bars) {
    const y = py(Math.max(p.y, 0)), h = Math.max(py(0) - y, p.y > 0 ? 1 : 0);
    s.append(svg("rect", { class: "bar", x: px(p.x), y, width: bw, height: h, "data-x": p.x, "data-y": p.y },
      svg("title", {}, `${fmt(p.x)}: ${p.y}${opts.barLabel ? " " + opts.barLabel : ""}`)));
  }
  const pts = line.filter((p) => p.y != null);
  if (pts.length) {
    let d = "";
    pts.forEach((p, i) => {
      const x = px(p.x) + bw / 2, y = py(p.y);
      if (i === 0) d = `M${x},${y}`;
      else d += opts.step ? ` H${x} V${y}` : ` L${x},${y}`;
    });
    if (opts.step && pts.length) d += ` H${W - R}`;
    s.append(svg("path", { class: "line", d }));
    for (const p of pts) {
      s.append(svg("circle", { class: "pt", cx: px(p.x) + bw / 2, cy: py(p.y), r: 2.5, "data-x": p.x, "data-y": p.y },
        svg("title", {}, `${fmt(p.x)}: ${p.y}${opts.lineLabel ? " " + opts.lineLabel : ""}`)));
    }
  }
  clear(box);
  box.append(s);
  return s;
}

// ---- live updates (server-sent events) ----
// live reads the server-sent events (over fetch, so that a token can be
// sent) and hands each to onEvent(type, data); after a lost connection it
// waits 2 s, calls resync (events were missed) and connects again. The
// #live marker shows whether it is connected.
async function live(onEvent, resync) {
  for (;;) {
    try {
      const headers = token() ? { Authorization: "Bearer " + token() } : {};
      const resp = await fetch("/api/v1/events", { headers });
      if (!resp.ok || !resp.body) throw new Error("events: " + resp.status);
      if ($("live")) $("live").className = "live on";
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let type = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) { try { onEvent(type, JSON.parse(data)); } catch (e) { console.error(e); } }
        }
      }
    } catch (e) { console.warn(e); }
    if ($("live")) $("live").className = "live off";
    await new Promise((r) => setTimeout(r, 2000));
    resync();
  }
}

// views are the dashboard's pages, in the order of the navigation.
const views = [["./", "Overview"], ["work.html?view=orders", "Orders"], ["work.html?view=tasks", "Tasks"],
  ["work.html?view=receiving", "Receiving"], ["work.html?view=reorder", "Reorder"], ["work.html?view=masterdata", "Master data"]];
// clientViews are the pages a token bound to an owner may use (the
// others read every owner's data: the API answers such a token 403).
const clientViews = new Set(["./", "work.html?view=orders", "work.html?view=reorder", "work.html?view=masterdata"]);

// header fills what every page's header has: the navigation (without the
// pages a client's token may not use), the token button and the person's
// name. Call it after loadWho.
function header() {
  const nav = $("nav");
  const here = location.pathname.endsWith("/") ? "./" : "work.html?view=" + (new URLSearchParams(location.search).get("view") || "orders");
  for (const [href, label] of views) {
    if (tokenOwner() && !clientViews.has(href)) continue;
    const a = el("a", { href }, label);
    if (href === here) a.setAttribute("aria-current", "page");
    nav.append(a, " ");
  }
  const m = $("me");
  if (m) {
    m.value = localStorage.getItem("shelfsync.me") || "";
    m.addEventListener("change", () => localStorage.setItem("shelfsync.me", m.value));
  }
  const of = $("owner-filter");
  if (of) {
    of.value = ownerFilter();
    of.addEventListener("change", () => { localStorage.setItem("shelfsync.owner", of.value.trim()); location.reload(); });
  }
  // a token changed in another tab: what this page may show changed too
  window.addEventListener("storage", (e) => { if (e.key === "shelfsync.token") location.reload(); });
  $("token-btn").addEventListener("click", () => {
    const t = prompt("API token (empty to clear)", token());
    if (t !== null) { localStorage.setItem("shelfsync.token", t.trim()); location.reload(); }
  });
}

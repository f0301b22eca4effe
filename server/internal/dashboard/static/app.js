// shelfsync dashboard: plain JavaScript over the JSON API, no build step.
// Every value from the server goes into the page through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { stockOffset: 0, stockLimit: 50, stockNext: null, historyKey: null, channels: [] };

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
function me() { return ($("me").value || "").trim() || "dashboard"; }

async function api(path, opts = {}) {
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

function status(msg) { $("status-line").textContent = msg; }
function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
function numCell(n) { return el("td", { class: "num" + (n < 0 ? " neg" : "") }, n); }

// debounce(f) coalesces bursts of live events into one reload.
function debounce(f, ms = 300) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(() => f().catch((e) => status(e.message)), ms); };
}

// ---- warehouses ----
async function loadWarehouses() {
  const { items } = await api("/api/v1/warehouses");
  const box = $("wh-cards");
  clear(box);
  if (!items.length) box.append(el("p", { class: "muted" }, "No warehouse has reported yet."));
  for (const w of items) {
    box.append(el("div", { class: "card", dataset: { warehouse: w.warehouse } },
      el("h3", {}, w.warehouse),
      el("dl", {},
        el("dt", {}, "SKUs"), el("dd", {}, w.skus),
        el("dt", {}, "On hand"), el("dd", {}, w.on_hand),
        el("dt", {}, "Reserved"), el("dd", {}, w.reserved),
        el("dt", {}, "Available"), el("dd", {}, w.available),
        el("dt", {}, "Gateways online"), el("dd", {}, w.gateways_online + " / " + w.gateways),
        el("dt", {}, "Backlog"), el("dd", {}, w.backlog),
        el("dt", {}, "Open conflicts"), el("dd", { class: w.open_conflicts ? "neg" : "" }, w.open_conflicts))));
  }
  const sel = $("stock-wh");
  const cur = sel.value;
  const names = items.map((w) => w.warehouse);
  if (names.join() !== Array.from(sel.options).map((o) => o.value).join()) {
    clear(sel);
    for (const n of names) sel.append(el("option", { value: n }, n));
    if (names.includes(cur)) sel.value = cur;
    else if (names.length) { sel.value = names[0]; await loadStock(); }
  }
}

// ---- gateways ----
async function loadGateways() {
  const { items } = await api("/api/v1/gateways");
  const body = $("gw-body");
  clear(body);
  for (const g of items) {
    const backlog = Math.max(g.lag_ops || 0, g.outbox_depth || 0);
    body.append(el("tr", { dataset: { gateway: g.warehouse + "/" + g.gateway } },
      el("td", {}, g.warehouse), el("td", {}, g.gateway),
      el("td", {}, el("span", { class: "dot " + (g.online ? "on" : "off") }), g.online ? "online" : "offline"),
      el("td", {}, ago(g.last_seen_ms)),
      el("td", { class: "num" + (backlog > 0 ? " neg" : "") }, backlog),
      el("td", { class: "num" }, g.watermark),
      el("td", { class: "muted" }, g.agent_version || "")));
  }
  if (!items.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No gateway yet.")));
}

// ---- stock ----
async function loadStock() {
  const wh = $("stock-wh").value;
  if (!wh) return;
  const q = new URLSearchParams({ warehouse: wh, limit: state.stockLimit, offset: state.stockOffset });
  if ($("stock-sku").value.trim()) q.set("sku", $("stock-sku").value.trim());
  if ($("stock-loc").value.trim()) q.set("location", $("stock-loc").value.trim());
  const resp = await api("/api/v1/stock?" + q);
  const body = $("stock-body");
  const before = new Map(Array.from(body.rows).map((r) => [r.dataset.key, r.dataset.onhand]));
  clear(body);
  for (const s of resp.items) {
    const key = [s.warehouse, s.location, s.sku, s.lot].join("|");
    const tr = el("tr", { class: "clickable", dataset: { key, onhand: String(s.on_hand) }, onclick: () => showHistory(s) },
      el("td", {}, s.location), el("td", {}, s.sku), el("td", { class: "muted" }, s.lot || ""), numCell(s.on_hand));
    tr.cells[3].classList.add("onhand");
    if (before.size && before.get(key) !== String(s.on_hand)) tr.classList.add("flash");
    if (key === state.historyKey) tr.classList.add("selected");
    body.append(tr);
  }
  if (!resp.items.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No stock matches.")));
  state.stockNext = resp.next_offset ?? null;
  $("stock-prev").disabled = state.stockOffset === 0;
  $("stock-next").disabled = state.stockNext === null;
  $("stock-page").textContent = resp.items.length ? `${state.stockOffset + 1}–${state.stockOffset + resp.items.length}` : "";
}

async function showHistory(s) {
  state.historyKey = [s.warehouse, s.location, s.sku, s.lot].join("|");
  for (const r of $("stock-body").rows) r.classList.toggle("selected", r.dataset.key === state.historyKey);
  const q = new URLSearchParams({ warehouse: s.warehouse, location: s.location, sku: s.sku, lot: s.lot || "" });
  const h = await api("/api/v1/stock/history?" + q);
  const box = $("history");
  clear(box);
  box.append(el("h3", {}, `${s.sku} at ${s.location}${s.lot ? " lot " + s.lot : ""} — ${h.items.length} op(s)`));
  const tb = el("tbody");
  for (const e of h.items) {
    tb.append(el("tr", {},
      el("td", {}, new Date(e.at).toLocaleString()), el("td", {}, e.kind + (e.count ? " (count)" : "")),
      el("td", { class: "num" }, e.count ? "=" + e.qty : (e.qty > 0 ? "+" : "") + e.qty), numCell(e.on_hand),
      el("td", { class: "muted" }, `${e.gateway}#${e.seq}`), el("td", { class: "muted" }, [e.device, e.operator, (e.raw || []).join(" ")].filter(Boolean).join(" · "))));
  }
  box.append(el("table", {}, el("thead", {}, el("tr", {}, ...["When", "Op", "Qty", "On hand", "Gateway#seq", "Device · operator · scan"].map((t) => el("th", {}, t)))), tb));
}

// ---- conflicts ----
async function loadConflicts() {
  const st = $("cf-status").value;
  const { items } = await api("/api/v1/conflicts" + (st ? "?status=" + st : ""));
  const body = $("cf-body");
  clear(body);
  for (const c of items) {
    const where = [c.warehouse, c.location, c.sku, c.order ? "order " + c.order : ""].filter(Boolean).join(" / ");
    const actions = el("td", { class: "actions" });
    if (c.status !== "resolved") {
      const acts = ["accept"];
      if (c.location && c.sku) acts.push("adjust");
      if (c.location) acts.push("recount");
      for (const a of acts) actions.append(el("button", { type: "button", dataset: { action: a }, onclick: (ev) => resolve(c, a, ev.target) }, a), " ");
    } else {
      actions.append(el("span", { class: "muted" }, `${c.resolution} by ${c.resolved_by}`));
    }
    body.append(el("tr", { dataset: { conflictId: c.id } },
      el("td", {}, c.kind), el("td", {}, where), el("td", {}, c.detail),
      el("td", {}, el("span", { class: "badge status " + c.status }, c.status)), actions));
  }
  if (!items.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No conflict.")));
}

async function resolve(c, action, btn) {
  btn.disabled = true;
  try {
    await api("/api/v1/conflicts/" + encodeURIComponent(c.id) + "/resolve", { method: "POST", body: { action, by: me() } });
    status(`conflict ${c.kind} resolved (${action})`);
    await loadConflicts();
  } catch (e) { status("resolve failed: " + e.message); btn.disabled = false; }
}

// ---- alerts ----
async function loadAlerts() {
  const st = $("al-status").value;
  const { items } = await api("/api/v1/alerts?limit=50" + (st ? "&status=" + st : ""));
  const body = $("al-body");
  clear(body);
  for (const a of items) {
    const ack = a.status === "open"
      ? el("button", { type: "button", onclick: (ev) => acknowledge(a, ev.target) }, "ack")
      : el("span", { class: "muted" }, "ack by " + a.ack_by);
    body.append(el("tr", { dataset: { alertId: a.id } },
      el("td", { class: "muted" }, ago(a.created_ms)), el("td", {}, el("span", { class: "badge" }, a.kind)),
      el("td", {}, a.message), el("td", {}, ack)));
  }
  if (!items.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No alert.")));
}

async function acknowledge(a, btn) {
  btn.disabled = true;
  try {
    await api("/api/v1/alerts/" + encodeURIComponent(a.id) + "/ack", { method: "POST", body: { by: me() } });
    await loadAlerts();
  } catch (e) { status("ack failed: " + e.message); btn.disabled = false; }
}

// ---- availability ----
async function loadAvailability() {
  const [av, ch] = await Promise.all([api("/api/v1/availability"), api("/api/v1/channels")]);
  const snaps = await Promise.all(ch.items.map((c) => api("/api/v1/channels/" + encodeURIComponent(c.channel) + "/availability")));
  const whs = [...new Set(av.items.map((a) => a.warehouse))].sort();
  const per = new Map();
  for (const a of av.items) per.set(a.sku + "|" + a.warehouse, a);
  const head = $("av-head");
  clear(head);
  head.append(el("tr", {}, el("th", {}, "SKU"), ...whs.map((w) => el("th", { class: "num" }, "ATS " + w)),
    el("th", { class: "num" }, "Reserved"), el("th", { class: "num" }, "Pool"),
    ...ch.items.map((c) => el("th", { class: "num", title: allocation(c) }, c.channel + " (" + allocation(c) + ")"))));
  const body = $("av-body");
  clear(body);
  for (const t of av.totals) {
    const cells = whs.map((w) => { const a = per.get(t.sku + "|" + w); return a ? numCell(a.available) : el("td", { class: "num muted" }, "–"); });
    const chans = snaps.map((s) => { const it = s.items.find((i) => i.sku === t.sku); return numCell(it ? it.available : 0); });
    body.append(el("tr", { dataset: { sku: t.sku } }, el("td", {}, t.sku), ...cells, numCell(t.reserved), numCell(t.available), ...chans));
  }
  if (!av.totals.length) body.append(el("tr", {}, el("td", { class: "muted" }, "No stock yet.")));
}

function allocation(c) {
  let s = c.share_pct + "%";
  if (c.cap != null) s += ", cap " + c.cap;
  if (c.warehouses && c.warehouses.length) s += ", " + c.warehouses.join("+");
  return s;
}

// ---- live updates (server-sent events over fetch, so a token can be sent) ----
const reload = {
  warehouses: debounce(loadWarehouses, 400), gateways: debounce(loadGateways, 400), stock: debounce(loadStock, 150),
  conflicts: debounce(loadConflicts, 200), alerts: debounce(loadAlerts, 200), availability: debounce(loadAvailability, 300),
};

function onEvent(type, data) {
  switch (type) {
    case "batch": {
      feed(data);
      if (data.warehouse === $("stock-wh").value || !$("stock-wh").value) reload.stock();
      reload.warehouses(); reload.gateways();
      if (state.historyKey && state.historyKey.startsWith(data.warehouse + "|")) {
        const [w, l, s, lot] = state.historyKey.split("|");
        if (data.changes.some((c) => c.location === l && c.sku === s && (c.lot || "") === lot)) showHistory({ warehouse: w, location: l, sku: s, lot }).catch(() => {});
      }
      break;
    }
    case "conflict": reload.conflicts(); reload.warehouses(); break;
    case "alert": reload.alerts(); break;
    case "availability": case "order": reload.availability(); reload.warehouses(); break;
  }
}

function feed(b) {
  const list = $("feed");
  if (list.firstChild && list.firstChild.classList.contains("muted")) clear(list);
  const what = b.changes.slice(0, 4).map((c) => `${c.location}/${c.sku}${c.lot ? "/" + c.lot : ""} → ${c.on_hand}`).join(", ") + (b.changes.length > 4 ? ", …" : "");
  list.prepend(el("li", { class: "flash" }, el("b", {}, `${b.warehouse}/${b.gateway}`), ` ${b.applied} op(s): ${what}`));
  while (list.children.length > 30) list.lastChild.remove();
}

async function live() {
  for (;;) {
    try {
      const headers = token() ? { Authorization: "Bearer " + token() } : {};
      const resp = await fetch("/api/v1/events", { headers });
      if (!resp.ok || !resp.body) throw new Error("events: " + resp.status);
      $("live").className = "live on";
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
    $("live").className = "live off";
    await new Promise((r) => setTimeout(r, 2000));
    refreshAll();
  }
}

function refreshAll() {
  return Promise.allSettled([loadWarehouses(), loadGateways(), loadStock(), loadConflicts(), loadAlerts(), loadAvailability()]);
}

document.addEventListener("DOMContentLoaded", () => {
  $("me").value = localStorage.getItem("shelfsync.me") || "";
  $("me").addEventListener("change", () => localStorage.setItem("shelfsync.me", $("me").value));
  $("token-btn").addEventListener("click", () => {
    const t = prompt("API token (empty to clear)", token());
    if (t !== null) { localStorage.setItem("shelfsync.token", t.trim()); refreshAll(); }
  });
  $("stock-form").addEventListener("submit", (ev) => { ev.preventDefault(); state.stockOffset = 0; loadStock().catch((e) => status(e.message)); });
  $("stock-wh").addEventListener("change", () => { state.stockOffset = 0; loadStock().catch((e) => status(e.message)); });
  $("stock-prev").addEventListener("click", () => { state.stockOffset = Math.max(0, state.stockOffset - state.stockLimit); loadStock(); });
  $("stock-next").addEventListener("click", () => { if (state.stockNext !== null) { state.stockOffset = state.stockNext; loadStock(); } });
  $("cf-status").addEventListener("change", () => loadConflicts());
  $("al-status").addEventListener("change", () => loadAlerts());
  setInterval(() => { loadGateways().catch(() => {}); }, 10000);
  refreshAll().then(() => { document.body.dataset.ready = "1"; });
  live();
});

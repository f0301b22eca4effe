// shelfsync dashboard, overview page: plain JavaScript over the JSON API,
// no build step. Every value from the server goes into the page through
// textContent.
"use strict";

// Helpers (el, api, chart, …) are in common.js, loaded first.
const state = { stockOffset: 0, stockLimit: 50, stockNext: null, historyKey: null, channels: [] };

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
        ...(tokenOwner() ? [] : [ // a client's token is told nothing of the gateways
          el("dt", {}, "Gateways online"), el("dd", {}, w.gateways_online + " / " + w.gateways),
          el("dt", {}, "Backlog"), el("dd", {}, w.backlog)]),
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

// ---- ingest rate and backlog per gateway over the last hour ----
async function loadIngest() {
  const { items } = await api("/api/v1/gateways/series");
  const box = $("ingest");
  clear(box);
  for (const g of items) {
    const applied = g.points.reduce((n, p) => n + p.applied, 0);
    const fig = el("figure", { class: "ingest", dataset: { gateway: g.warehouse + "/" + g.gateway } },
      el("figcaption", {}, `${g.warehouse}/${g.gateway}: ${applied} op(s) applied in the last hour`));
    const plotBox = el("div", {});
    fig.append(plotBox);
    box.append(fig);
    chart(plotBox, { name: "ingest", label: `Ops applied per minute (bars) and backlog (line) of ${g.warehouse}/${g.gateway} over the last hour`,
      bars: g.points.map((p) => ({ x: p.at_ms, y: p.applied })), barLabel: "op(s) applied",
      line: g.points.map((p) => ({ x: p.at_ms, y: p.backlog })), lineLabel: "op(s) in backlog", height: 120 });
  }
  if (!items.length) box.append(el("p", { class: "muted" }, "No gateway heard from in the last hour."));
}

// ---- stock ----
async function loadStock() {
  const wh = $("stock-wh").value;
  if (!wh) return;
  const q = new URLSearchParams({ warehouse: wh, limit: state.stockLimit, offset: state.stockOffset });
  if ($("stock-sku").value.trim()) q.set("sku", $("stock-sku").value.trim());
  if ($("stock-loc").value.trim()) q.set("location", $("stock-loc").value.trim());
  if (!$("stock-zero").checked) q.set("nonzero", "true");
  const resp = await api("/api/v1/stock?" + q);
  const body = $("stock-body");
  const before = new Map(Array.from(body.rows).map((r) => [r.dataset.key, r.dataset.onhand]));
  clear(body);
  for (const s of resp.items) {
    const key = stockKey(s);
    const sku = el("td", {}, s.sku);
    if (s.owner) sku.append(" ", el("span", { class: "badge" }, s.owner));
    if (s.status && s.status !== "available") sku.append(" ", el("span", { class: "badge status " + s.status }, s.status));
    const tr = el("tr", { class: "clickable", dataset: { key, onhand: String(s.on_hand) }, onclick: () => showHistory(s) },
      el("td", {}, s.location), sku, el("td", { class: "muted" }, s.lot || ""), numCell(s.on_hand));
    tr.cells[3].classList.add("onhand");
    if (before.size && before.get(key) !== String(s.on_hand)) tr.classList.add("flash");
    if (key === state.historyKey) tr.classList.add("selected");
    body.append(tr);
  }
  if (!resp.items.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, $("stock-zero").checked ? "No stock matches." : "No stock matches (rows at 0 hidden).")));
  state.stockNext = resp.next_offset ?? null;
  $("stock-prev").disabled = state.stockOffset === 0;
  $("stock-next").disabled = state.stockNext === null;
  $("stock-page").textContent = resp.items.length ? `${state.stockOffset + 1}–${state.stockOffset + resp.items.length}` : "";
}

// stockKey names a stock row: wh|location|sku|lot, then |owner|status for
// a key with an owner or a status other than available.
function stockKey(s) {
  const k = [s.warehouse, s.location, s.sku, s.lot || ""].join("|");
  return (s.owner || (s.status && s.status !== "available")) ? k + "|" + (s.owner || "") + "|" + (s.status || "") : k;
}

async function showHistory(s) {
  state.historyKey = stockKey(s);
  for (const r of $("stock-body").rows) r.classList.toggle("selected", r.dataset.key === state.historyKey);
  const q = new URLSearchParams({ warehouse: s.warehouse, location: s.location, sku: s.sku, lot: s.lot || "", owner: s.owner || "", status: s.status || "" });
  const h = await api("/api/v1/stock/history?" + q);
  const box = $("history");
  clear(box);
  box.append(el("h3", {}, `${s.sku} at ${s.location}${s.lot ? " lot " + s.lot : ""}${s.owner ? " of " + s.owner : ""}${s.status && s.status !== "available" ? " (" + s.status + ")" : ""} — ${h.items.length} op(s)`));
  const plotBox = el("div", { class: "plot-box" });
  box.append(plotBox);
  chart(plotBox, { name: "history", label: `On hand of ${s.sku} at ${s.location} over time, ${h.items.length} op(s)`, step: true, lineLabel: "on hand",
    line: h.items.map((e) => ({ x: Date.parse(e.at), y: e.on_hand })), xfmt: (ms) => new Date(ms).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }) });
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
    if (c.status !== "resolved" && tokenOwner()) {
      actions.append(el("span", { class: "muted" }, "the warehouse resolves it")); // resolving is not for client tokens
    } else if (c.status !== "resolved") {
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

// ---- live updates (common.js: live) ----
const reload = {
  warehouses: debounce(loadWarehouses, 400), gateways: debounce(loadGateways, 400), stock: debounce(loadStock, 150), ingest: debounce(loadIngest, 2000),
  conflicts: debounce(loadConflicts, 200), alerts: debounce(loadAlerts, 200), availability: debounce(loadAvailability, 300),
};

function onEvent(type, data) {
  switch (type) {
    case "batch": {
      feed(data);
      if (data.warehouse === $("stock-wh").value || !$("stock-wh").value) reload.stock();
      reload.warehouses();
      if (!tokenOwner()) { reload.gateways(); reload.ingest(); }
      if (state.historyKey && state.historyKey.startsWith(data.warehouse + "|")) {
        const [w, l, s, lot, owner, st] = state.historyKey.split("|");
        if (data.changes.some((c) => c.location === l && c.sku === s && (c.lot || "") === lot)) showHistory({ warehouse: w, location: l, sku: s, lot, owner, status: st }).catch(() => {});
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

// refreshAll reloads every panel; a client's token (bound to an owner)
// has no gateway or ingest panel (ownerLimits hid them: every owner's).
function refreshAll() {
  const gw = tokenOwner() ? [] : [loadGateways(), loadIngest()];
  return Promise.allSettled([loadWarehouses(), ...gw, loadStock(), loadConflicts(), loadAlerts(), loadAvailability()]);
}

document.addEventListener("DOMContentLoaded", async () => {
  await loadWho();
  header();
  ownerLimits();
  $("stock-form").addEventListener("submit", (ev) => { ev.preventDefault(); state.stockOffset = 0; loadStock().catch((e) => status(e.message)); });
  $("stock-wh").addEventListener("change", () => { state.stockOffset = 0; loadStock().catch((e) => status(e.message)); });
  $("stock-zero").addEventListener("change", () => { state.stockOffset = 0; loadStock().catch((e) => status(e.message)); });
  $("stock-prev").addEventListener("click", () => { state.stockOffset = Math.max(0, state.stockOffset - state.stockLimit); loadStock(); });
  $("stock-next").addEventListener("click", () => { if (state.stockNext !== null) { state.stockOffset = state.stockNext; loadStock(); } });
  $("cf-status").addEventListener("change", () => loadConflicts());
  $("al-status").addEventListener("change", () => loadAlerts());
  if (!tokenOwner()) {
    setInterval(() => { loadGateways().catch(() => {}); }, 10000);
    setInterval(() => { loadIngest().catch(() => {}); }, 30000);
  }
  refreshAll().then(() => { document.body.dataset.ready = "1"; });
  live(onEvent, refreshAll);
});

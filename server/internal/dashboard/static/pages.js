// shelfsync dashboard: the pages of the day's work (orders, tasks,
// receiving, reorder, master data), one view each of work.html chosen by
// ?view=. A view reads its JSON from the API, reloads on the live events
// (and every minute), and
// sets body[data-ready] once it has drawn.
"use strict";

const pages = {
  orders: loadOrders,
  tasks: loadTasks,
  receiving: loadReceiving,
  reorder: loadReorder,
  masterdata: loadMasterdata,
};

function wh() { return $("wh").value; }
function enc(s) { return encodeURIComponent(s); }

// ---- orders: by status, channel and owner, and per hour ----
async function loadOrders() {
  const w = wh();
  if (!$("f-channel").dataset.filled) {
    const { items } = await api("/api/v1/channels");
    for (const c of items) $("f-channel").append(el("option", { value: c.channel }, c.channel));
    $("f-channel").dataset.filled = "1";
  }
  const q = new URLSearchParams({ warehouse: w, limit: 1000 });
  if ($("f-status").value) q.set("status", $("f-status").value);
  if ($("f-channel").value) q.set("channel", $("f-channel").value);
  const owner = $("f-owner").value.trim();
  if (owner) q.set("owner", owner);
  let all = [];
  for (let off = 0; off < 10000;) { // at most 10 pages
    q.set("offset", off);
    const page = await api("/api/v1/orders?" + q);
    all = all.concat(page.items);
    if (page.next_offset == null) break;
    off = page.next_offset;
  }
  if (owner) all = all.filter((o) => (o.owner || "") === owner);
  const ph = new URLSearchParams({ warehouse: w, hours: 24 });
  if ($("f-channel").value) ph.set("channel", $("f-channel").value);
  const hours = await api("/api/v1/orders/per-hour?" + ph);
  chart($("per-hour-plot"), { name: "orders-per-hour", label: `Orders taken per hour in ${w}, last ${hours.hours} hours: ${hours.total} in all`,
    bars: hours.items.map((b) => ({ x: b.at_ms, y: b.orders })), barLabel: "order(s)", height: 150 });

  const count = (key) => {
    const m = new Map();
    for (const o of all) {
      const k = key(o) || "";
      const c = m.get(k) || { n: 0, open: 0 };
      c.n++; if (o.status === "open") c.open++;
      m.set(k, c);
    }
    return [...m.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  };
  fillTable($("by-status").tBodies[0], count((o) => o.status), ([k, c]) => el("tr", { dataset: { status: k } }, el("td", {}, k), numCell(c.n)), "No order.");
  fillTable($("by-channel").tBodies[0], count((o) => o.channel), ([k, c]) => el("tr", { dataset: { channel: k } }, el("td", {}, k), numCell(c.n), numCell(c.open)), "No order.");
  fillTable($("by-owner").tBodies[0], count((o) => o.owner), ([k, c]) => el("tr", { dataset: { owner: k } }, el("td", { class: k ? "" : "muted" }, k || "(none)"), numCell(c.n), numCell(c.open)), "No order.");
  $("orders-count").textContent = `${all.length} order(s)`;
  fillTable($("orders-body"), all.slice().sort((a, b) => b.created_ms - a.created_ms), (o) => {
    const qty = o.lines.reduce((n, l) => n + l.qty, 0), picked = o.lines.reduce((n, l) => n + l.picked, 0);
    return el("tr", { dataset: { order: o.warehouse + "/" + o.id } },
      el("td", {}, o.id), el("td", {}, o.channel), el("td", {}, o.owner || ""),
      el("td", {}, el("span", { class: "badge " + o.status }, o.status)), numCell(o.lines.length),
      progressCell(picked, qty, `picked of order ${o.id}`), el("td", { class: "muted" }, new Date(o.created_ms).toLocaleString()));
  }, "No order matches.");
}

// ---- tasks: per zone and gateway, with progress ----
async function loadTasks() {
  const s = await api("/api/v1/tasks/summary?warehouse=" + enc(wh()));
  fillTable($("groups-body"), s.groups, (g) => {
    const closed = g.done + g.short + g.cancelled;
    return el("tr", { dataset: { kind: g.kind, zone: g.zone } },
      el("td", {}, g.kind), el("td", {}, g.zone || "(no zone)"), el("td", { class: g.gateway ? "" : "muted" }, g.gateway || "(none)"),
      numCell(g.tasks), numCell(g.open), numCell(g.done), numCell(g.short),
      g.kind === "pick" ? progressCell(g.picked, g.qty, `units picked in zone ${g.zone}`) : progressCell(closed, g.tasks, `${g.kind} tasks closed in zone ${g.zone}`));
  }, "No task.");
  const showClosed = $("f-closed").checked;
  const tasks = s.tasks.filter((t) => showClosed || !t.status || t.status === "open");
  fillTable($("tasks-body"), tasks, (t) => el("tr", { dataset: { task: t.id } },
    el("td", {}, t.id), el("td", {}, t.kind), el("td", {}, t.location || ""), el("td", {}, t.sku || ""),
    el("td", {}, t.order ? `${t.order}#${t.order_line || ""}` : ""), el("td", { class: "muted" }, t.reason || ""),
    t.kind === "pick" ? progressCell(t.picked || 0, t.qty || 0, `picked of task ${t.id}`) : el("td", { class: "muted" }, t.status === "done" ? "counted" : "to count"),
    el("td", {}, el("span", { class: "badge " + (t.status || "open") }, t.status || "open"))), showClosed ? "No task." : "No open task.");
}

// ---- receiving: purchase orders and the dock queue ----
async function loadReceiving() {
  const w = enc(wh());
  const [pos, dock] = await Promise.all([api(`/api/v1/receiving/${w}/pos`), api(`/api/v1/receiving/${w}/dock`)]);
  fillTable($("pos-body"), pos.items, (p) => el("tr", { dataset: { po: p.id } },
    el("td", {}, p.id), el("td", {}, p.supplier || ""), el("td", {}, p.dock || ""),
    el("td", {}, el("span", { class: "badge " + (p.status || "open") }, p.status || "open")),
    progressCell(p.received_qty, p.ordered, `units received of PO ${p.id}`),
    el("td", { class: "num" + (p.over ? " neg" : "") }, p.over), el("td", { class: "num" + (p.unexpected_qty ? " neg" : "") }, p.unexpected_qty),
    el("td", { class: "muted" }, p.lines.map((l) => `${l.line}: ${l.sku} ${(p.received || {})[l.line] || 0}/${l.qty}`).join(" · "))), "No purchase order.");
  $("dock-names").textContent = dock.docks.length ? "(" + dock.docks.join(", ") + ")" : "(no dock location: give locations the type dock, or name a dock on a PO)";
  fillTable($("dock-body"), dock.items, (d) => el("tr", { dataset: { key: [d.location, d.sku, d.lot].join("|") } },
    el("td", {}, d.location), el("td", {}, d.sku), el("td", { class: "muted" }, d.lot || ""), numCell(d.on_hand),
    el("td", { class: "muted" }, d.since_ms ? new Date(d.since_ms).toLocaleString() : ""),
    el("td", { class: "num age" + (d.age_seconds > 4 * 3600 ? " neg" : ""), dataset: { seconds: String(Math.round(d.age_seconds)) } }, duration(d.age_seconds))),
  "Nothing waiting at the docks.");
}

// ---- the reorder list ----
async function loadReorder() {
  const r = await api("/api/v1/reorder/" + enc(wh()));
  $("reorder-day").textContent = "(" + r.day + ")";
  fillTable($("reorder-body"), r.items, (x) => el("tr", { dataset: { sku: x.sku } },
    el("td", {}, x.sku), numCell(x.on_hand), numCell(x.reorder_point), numCell(x.on_order), el("td", { class: "num" }, x.max || "–"),
    el("td", { class: "num suggested" }, x.suggested_qty), el("td", { class: "muted" }, x.seasonal ? "seasonal" : "standard")), "Nothing to reorder.");
}

// ---- master data, read-only, and a CSV import ----
const mdColumns = {
  items: [["sku", "SKU"], ["description", "Description"], ["gtins", "GTINs"], ["velocity", "Velocity"], ["track_lot", "Lots"], ["track_expiry", "Expiry"], ["serialized", "Serialized"], ["owner", "Owner"]],
  locations: [["code", "Code"], ["zone", "Zone"], ["type", "Type"], ["sellable", "Sellable"], ["rank", "Rank"], ["owner", "Owner"]],
  zones: [["zone", "Zone"], ["gateway", "Gateway"]],
  thresholds: [["sku", "SKU"], ["reorder_point", "Reorder point"], ["reorder_qty", "Reorder qty"], ["max", "Max"], ["safety_stock", "Safety stock"], ["seasonal", "Seasonal"]],
  pos: [["id", "PO"], ["supplier", "Supplier"], ["dock", "Dock"], ["status", "Status"], ["lines", "Lines"]],
};

function mdValue(k, v) {
  if (v == null || v === "") return "";
  if (typeof v === "boolean") return v ? "yes" : "";
  if (Array.isArray(v)) {
    if (k === "lines") return v.map((l) => `${l.line}: ${l.sku}${l.lot ? " lot " + l.lot : ""} × ${l.qty}`).join(" · ");
    if (k === "seasonal") return v.map((s) => `${s.from}..${s.to}: point ${s.reorder_point}`).join(" · ");
    return v.join(", ");
  }
  return String(v);
}

async function loadMasterdata() {
  const kind = $("f-kind").value, w = wh();
  const { items } = await api(`/api/v1/masterdata/${enc(w)}/${kind}`);
  const cols = mdColumns[kind];
  $("md-title").textContent = $("f-kind").selectedOptions[0].textContent.replace(/^./, (c) => c.toUpperCase());
  $("md-count").textContent = `(${items.length})`;
  $("md-export").setAttribute("href", `/api/v1/masterdata/${enc(w)}/${kind}?format=csv`);
  $("import-kind").value = kind;
  const head = $("md-head");
  clear(head);
  head.append(el("tr", {}, ...cols.map(([, t]) => el("th", { scope: "col" }, t))));
  fillTable($("md-body"), items, (it) => el("tr", { dataset: { id: String(it[cols[0][0]]) } }, ...cols.map(([k]) => el("td", {}, mdValue(k, it[k])))), "None yet.");
}

async function importCSV(ev) {
  ev.preventDefault();
  const file = $("import-file").files[0], kind = $("import-kind").value, out = $("import-result");
  if (!file) return;
  out.textContent = `importing ${file.name}…`;
  const headers = { "Content-Type": "text/csv" };
  if (token()) headers["Authorization"] = "Bearer " + token();
  const resp = await fetch(`/api/v1/masterdata/${enc(wh())}/${kind}/import`, { method: "POST", headers, body: file });
  const text = await resp.text();
  if (!resp.ok) { out.textContent = "import refused: " + ((() => { try { return JSON.parse(text).error; } catch { return text; } })()); return; }
  const lines = text.trim().split("\n").map((l) => JSON.parse(l));
  const last = lines.filter((l) => l.done).pop() || lines[lines.length - 1] || {};
  const errs = lines.filter((l) => l.row && l.error).map((l) => `line ${l.row}: ${l.error}`);
  out.textContent = `${file.name}: ${last.imported || 0} imported, ${last.errors || 0} refused` + (errs.length ? "\n" + errs.join("\n") : "") + (last.error ? "\n" + last.error : "");
  out.dataset.imported = String(last.imported || 0);
  $("f-kind").value = kind;
  await loadMasterdata();
}

document.addEventListener("DOMContentLoaded", async () => {
  let view = new URLSearchParams(location.search).get("view") || "orders";
  if (!pages[view]) view = "orders";
  document.body.dataset.page = view;
  for (const e of document.querySelectorAll("[data-view]")) e.hidden = e.dataset.view !== view;
  const label = views.find(([h]) => h.endsWith("=" + view))[1];
  document.title = label + " · shelfsync dashboard";
  await loadWho();
  header();
  ownerLimits();
  if (tokenOwner() && !clientViews.has("work.html?view=" + view)) {
    // a page of every owner's work (tasks, receiving): a note, no 403s
    for (const e of document.querySelectorAll("[data-view]")) e.hidden = true;
    $("filters").hidden = true;
    const note = $("view-note");
    note.textContent = `${label}: ${notForClients} (this token is owner ${tokenOwner()}'s). This page shows the whole warehouse's work, every owner's.`;
    note.hidden = false;
    document.body.dataset.ready = "1";
    return;
  }
  if (tokenOwner()) { // of master data a client's token reads its items only
    for (const o of [...$("f-kind").options]) if (o.value !== "items") o.remove();
  }
  const load = pages[view];
  const run = () => load().catch((e) => status(e.message));
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  for (const id of ["f-status", "f-channel", "f-kind", "f-closed"]) if ($(id)) $(id).addEventListener("change", run);
  if ($("f-owner")) $("f-owner").addEventListener("change", run);
  if ($("import-form")) $("import-form").addEventListener("submit", (ev) => importCSV(ev).catch((e) => { $("import-result").textContent = "import failed: " + e.message; }));
  try {
    await warehousePicker($("wh"), load);
    await load();
    document.body.dataset.ready = "1";
  } catch (e) { status(e.message); }
  // any committed change (a scan, an order, a conflict) may change what
  // the view shows: reload it, at most once a second
  const reload = debounce(load, 1000);
  live(() => reload(), run);
  setInterval(run, 60000);
});

// The store dashboard: reads the gateway's API (same origin), follows /v1/alerts/stream for
// live alerts and stock changes, and draws the forecast-vs-sales chart (chart.js).
// Plain JavaScript, no build step, nothing loaded from outside the gateway.
"use strict";

(() => {
  const TOKEN_KEY = "shelfcast.apiToken";
  const PAGE = 1000; // /v1/stock's largest page
  const MAX_SKUS = 20000; // a store's assortment; beyond it, search narrows the list
  const ROWS_SHOWN = 150; // rows rendered at a time (a tablet stays responsive)
  const MAX_ALERTS = 300;
  const STOCK_REFRESH_MS = 2000; // at most one stock re-read this often, however busy the store
  const HEALTH_EVERY_MS = 10000;
  const LOW_CONFIDENCE = 0.5;
  const KIND_LABEL = { stockout: "Stock-out", replenishment: "Reorder", anomaly: "Suspicion", conflict: "Conflict" };

  const state = {
    token: localStorage.getItem(TOKEN_KEY),
    stock: new Map(), // sku -> StockState
    total: 0,
    alerts: [], // newest first
    seen: new Set(), // message_id: the stream may resend after a reconnect
    latestBySku: new Map(), // sku -> {kind -> newest alert}
    sortKey: "available",
    sortDir: 1,
    view: "all",
    query: "",
    shown: ROWS_SHOWN,
    kinds: new Set(["stockout", "replenishment", "anomaly", "conflict"]),
    chartSku: null,
    forecasts: true, // false when the API reads a state directory (no model, no sales view)
    lastEventId: null,
  };

  // ---- small DOM helpers (text only: SKUs and reasons come from outside) -------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") n.className = v;
      else if (k.startsWith("data-")) n.setAttribute(k, v);
      else if (k in n) n[k] = v;
      else n.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      n.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return n;
  }

  const fmtTime = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  const when = (iso) => (iso ? fmtTime.format(new Date(iso)) : "—");
  const num = (x, digits = 0) =>
    x === null || x === undefined ? "—" : Number(x).toLocaleString(undefined, { maximumFractionDigits: digits });
  const pct = (p) => (p === null || p === undefined ? "—" : `${Math.round(p * 100)} %`);

  // ---- the API, with the token when reads are closed ---------------------------------------

  class AuthNeeded extends Error {}

  function headers(extra) {
    const h = { Accept: "application/json", ...(extra || {}) };
    if (state.token) h.Authorization = `Bearer ${state.token}`;
    return h;
  }

  async function api(path, okStatuses = [200]) {
    const res = await fetch(path, { headers: headers() });
    if (res.status === 401 || res.status === 403) throw new AuthNeeded(path);
    if (!okStatuses.includes(res.status)) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  }

  function askToken(message) {
    const dialog = $("token-dialog");
    $("token-error").hidden = !message;
    $("token-error").textContent = message || "";
    return new Promise((resolve) => {
      $("token-form").onsubmit = () => {
        state.token = $("token-input").value.trim();
        localStorage.setItem(TOKEN_KEY, state.token);
        resolve();
      };
      if (!dialog.open) dialog.showModal();
    });
  }

  // Runs `load`; when the gateway refuses the token, asks for one and runs it again.
  async function withToken(load) {
    for (;;) {
      try {
        return await load();
      } catch (err) {
        if (!(err instanceof AuthNeeded)) throw err;
        await askToken(state.token ? "That token was refused; enter the gateway's API token." : null);
      }
    }
  }

  // ---- stock -------------------------------------------------------------------------------

  async function loadStock() {
    const fresh = new Map();
    let total = 0;
    for (let offset = 0; offset < MAX_SKUS; offset += PAGE) {
      const page = await api(`/v1/stock?offset=${offset}&limit=${PAGE}`);
      total = page.total;
      for (const s of page.items) fresh.set(s.sku, s);
      if (page.items.length < PAGE) break;
    }
    state.stock = fresh;
    state.total = total;
    renderStock();
    renderKpis();
    fillSkuOptions();
  }

  // Stock is re-read when the ledger moves, but never back to back: the pause is at least
  // STOCK_REFRESH_MS and four times the last read (a big store's pages stay cheap to serve).
  let stockTimer = null;
  let stockDue = false;
  let stockReadMs = 0;
  function refreshStockSoon() {
    if (stockTimer) {
      stockDue = true;
      return;
    }
    stockTimer = setTimeout(async () => {
      const started = performance.now();
      try {
        await loadStock();
      } catch (err) {
        console.warn("stock refresh failed:", err);
      } finally {
        stockReadMs = performance.now() - started;
        setTimeout(() => {
          stockTimer = null;
          if (stockDue) {
            stockDue = false;
            refreshStockSoon();
          }
        }, Math.max(STOCK_REFRESH_MS, 4 * stockReadMs));
      }
    }, 100);
  }

  // Short tags (a tablet's column is narrow); the title carries the whole sentence.
  function statusOf(s) {
    const latest = state.latestBySku.get(s.sku) || {};
    const tags = [];
    if (s.available <= 0) tags.push(["out", "Out of stock", "available-to-promise is 0"]);
    else if (latest.stockout) {
      const p = latest.stockout.probability;
      tags.push(["risk", `Risk ${pct(p)}`, `stock-out probability ${pct(p)} (${(latest.stockout.reason_codes || []).join(", ")})`]);
    }
    if (latest.replenishment) {
      const q = latest.replenishment.recommended_qty;
      tags.push(["reorder", `Reorder ${num(q)}`, `replenishment triggered: order ${num(q)} units`]);
    }
    if (latest.anomaly) {
      const a = latest.anomaly;
      tags.push(["suspect", `${cap(a.anomaly_type)}?`, `${a.anomaly_type} suspected (${(a.reason_codes || []).join(", ")})`]);
    }
    if (latest.conflict) tags.push(["conflict", "Conflict", latest.conflict.rule]);
    return tags;
  }

  const cap = (t) => (t ? t[0].toUpperCase() + t.slice(1) : "");
  const severity = (s) => (s.available <= 0 ? 0 : state.latestBySku.has(s.sku) ? 1 : 2);

  function visibleRows() {
    const q = state.query.toLowerCase();
    const rows = [...state.stock.values()].filter((s) => {
      if (q && !s.sku.toLowerCase().includes(q)) return false;
      if (state.view === "out") return s.available <= 0;
      if (state.view === "alerts") return state.latestBySku.has(s.sku);
      if (state.view === "doubt") return s.confidence < LOW_CONFIDENCE;
      return true;
    });
    const key = state.sortKey;
    const value = key === "status" ? severity : (s) => s[key];
    rows.sort((a, b) => {
      const va = value(a), vb = value(b);
      const c = va === vb ? 0 : va === null ? 1 : vb === null ? -1 : va < vb ? -1 : 1;
      return c * state.sortDir || a.sku.localeCompare(b.sku);
    });
    return rows;
  }

  function confidenceCell(c) {
    const level = c >= 0.8 ? "high" : c >= LOW_CONFIDENCE ? "mid" : "low";
    return el("td", {},
      el("div", { class: "confidence" },
        el("span", { class: `meter ${level}`, title: `confidence ${pct(c)}` },
          el("span", { class: "meter-fill", style: `width:${Math.round(c * 100)}%` })),
        el("span", { class: "meter-text" }, pct(c))));
  }

  function stockRow(s) {
    const tags = statusOf(s).map(([cls, text, title]) => el("span", { class: `tag ${cls}`, title }, text));
    return el("tr", { "data-sku": s.sku, class: s.available <= 0 ? "is-out" : "", tabIndex: 0 },
      el("th", { scope: "row", class: "sku" }, s.sku),
      el("td", { class: "num", "data-col": "on_hand" }, num(s.on_hand)),
      el("td", { class: "num", "data-col": "reserved" }, num(s.reserved)),
      el("td", { class: "num atp", "data-col": "available" }, num(s.available)),
      confidenceCell(s.confidence),
      el("td", { class: "wide-only muted" }, when(s.last_event_time)),
      el("td", {}, el("div", { class: "status" }, tags.length ? tags : el("span", { class: "tag ok" }, "OK"))));
  }

  function renderStock() {
    const rows = visibleRows();
    $("stock-rows").replaceChildren(...rows.slice(0, state.shown).map(stockRow));
    $("stock-empty").hidden = rows.length > 0;
    $("stock-more").hidden = rows.length <= state.shown;
    const loaded = state.stock.size < state.total ? ` (first ${num(state.stock.size)} loaded)` : "";
    $("stock-count").textContent = `${num(rows.length)} of ${num(state.total)} SKUs${loaded}`;
    for (const th of document.querySelectorAll("#stock-table th[data-key]")) {
      const on = th.dataset.key === state.sortKey;
      th.setAttribute("aria-sort", on ? (state.sortDir > 0 ? "ascending" : "descending") : "none");
    }
  }

  function renderKpis() {
    const all = [...state.stock.values()];
    // SKUs, not alerts: a SKU re-triggered three times is still one SKU to act on
    const skusWith = (kind) => new Set(state.alerts.filter((a) => a.kind === kind && a.sku).map((a) => a.sku)).size;
    const tiles = [
      ["SKUs", num(state.total), ""],
      ["Out of stock", num(all.filter((s) => s.available <= 0).length), "bad"],
      ["SKUs to reorder", num(skusWith("replenishment")), "warn"],
      ["Shrink & phantom SKUs", num(skusWith("anomaly")), "warn"],
      ["Low confidence", num(all.filter((s) => s.confidence < LOW_CONFIDENCE).length), "info"],
    ];
    $("kpis").replaceChildren(...tiles.map(([label, value, tone]) =>
      el("div", { class: `kpi ${tone}` }, el("div", { class: "kpi-value" }, value), el("div", { class: "kpi-label" }, label))));
  }

  function fillSkuOptions() {
    const skus = [...state.stock.keys()].sort().slice(0, 2000);
    $("sku-options").replaceChildren(...skus.map((s) => el("option", { value: s })));
  }

  // ---- alerts ------------------------------------------------------------------------------

  function headline(a) {
    switch (a.kind) {
      case "stockout":
        return [`ATP ${num(a.atp)}`, `P(stock-out) ${pct(a.probability)}` + (a.horizon_hours ? ` within ${num(a.horizon_hours)} h` : ""),
          a.expected_stockout_time ? `expected ${when(a.expected_stockout_time)}` : null];
      case "replenishment":
        return [`order ${num(a.recommended_qty)} units`, `ATP ${num(a.atp)}`,
          a.reorder_point !== null && a.reorder_point !== undefined ? `reorder point ${num(a.reorder_point, 1)}` : null,
          a.order_up_to !== null && a.order_up_to !== undefined ? `order-up-to ${num(a.order_up_to, 1)}` : null];
      case "anomaly":
        return [a.units !== null && a.units !== undefined ? `${num(a.units, 1)} units unexplained` : null,
          `score ${num(a.score, 2)}`, a.atp !== null && a.atp !== undefined ? `ATP ${num(a.atp)}` : null];
      case "conflict":
        return [a.rule, `requested ${num(a.qty_requested)}`, `granted ${num(a.qty_granted)}`];
      default:
        return [];
    }
  }

  function alertItem(a) {
    const label = a.kind === "anomaly" ? `${cap(a.anomaly_type)}?` : KIND_LABEL[a.kind] || a.kind;
    const evidence = Object.entries(a.evidence || {});
    return el("li", { class: `alert kind-${a.kind}`, "data-kind": a.kind, "data-sku": a.sku || "" },
      el("div", { class: "alert-top" },
        el("span", { class: `badge kind-${a.kind}` }, label),
        el("button", { type: "button", class: "alert-sku link", "data-sku": a.sku || "" }, a.sku || "store"),
        el("time", { class: "muted", dateTime: a.event_time || a.created_at, title: `created ${when(a.created_at)}` }, when(a.event_time || a.created_at))),
      el("div", { class: "alert-numbers" }, headline(a).filter(Boolean).join(" · ")),
      el("div", { class: "reasons" }, (a.reason_codes || []).map((r) => el("span", { class: "reason" }, r))),
      evidence.length
        ? el("details", { class: "evidence" }, el("summary", {}, "numbers behind it"),
          el("dl", {}, evidence.map(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "number" ? num(v, 3) : String(v))])))
        : null,
      el("div", { class: "muted small" }, `model ${a.model_version}`));
  }

  function addAlert(a) {
    if (state.seen.has(a.message_id)) return false;
    state.seen.add(a.message_id);
    state.alerts.unshift(a);
    if (state.alerts.length > MAX_ALERTS) state.seen.delete(state.alerts.pop().message_id);
    if (a.sku) {
      const latest = state.latestBySku.get(a.sku) || {};
      latest[a.kind] = a;
      state.latestBySku.set(a.sku, latest);
    }
    return true;
  }

  function renderAlerts() {
    const shown = state.alerts.filter((a) => state.kinds.has(a.kind));
    $("alert-list").replaceChildren(...shown.slice(0, 100).map(alertItem));
    $("alerts-empty").hidden = shown.length > 0;
    $("alerts-count").textContent = `${num(shown.length)} shown`;
    const suspicions = state.alerts.filter((a) => a.kind === "anomaly");
    $("shrink-list").replaceChildren(...suspicions.slice(0, 50).map(alertItem));
    $("shrink-empty").hidden = suspicions.length > 0;
    $("shrink-count").textContent = suspicions.length ? `${num(suspicions.length)} raised` : "";
  }

  // ---- live updates: /v1/alerts/stream read with fetch, so the token goes in a header ---------

  function setLive(which, text) {
    $("live").dataset.state = which;
    $("live-text").textContent = text;
  }

  // Frames of one read are applied together, then the views are drawn once.
  function onFrame(frame, dirty) {
    let event = "message", data = "", id = null;
    for (const line of frame.split("\n")) {
      if (line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data += (data ? "\n" : "") + value;
      else if (field === "id") id = value;
    }
    if (id !== null) state.lastEventId = id;
    if (event === "alert") {
      const a = JSON.parse(data);
      if (addAlert(a)) {
        dirty.alerts = dirty.stock = true;
        if (a.sku && a.sku === state.chartSku) dirty.chart = true;
      }
    } else if (event === "ledger") {
      dirty.stock = true;
    }
  }

  function redraw(dirty) {
    if (dirty.alerts) {
      renderAlerts();
      renderKpis();
    }
    if (dirty.stock) refreshStockSoon();
    if (dirty.chart) loadChart(state.chartSku).catch(report);
  }

  async function readStream(res) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    setLive("live", "live");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      const dirty = {};
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        onFrame(buffer.slice(0, end), dirty);
        buffer = buffer.slice(end + 2);
      }
      redraw(dirty);
    }
  }

  async function follow() {
    for (;;) {
      try {
        const extra = { Accept: "text/event-stream" };
        if (state.lastEventId) extra["Last-Event-ID"] = state.lastEventId;
        const res = await fetch("/v1/alerts/stream?backlog=100", { headers: headers(extra), cache: "no-store" });
        if (res.status === 401 || res.status === 403) await askToken("That token was refused; enter the gateway's API token.");
        else if (res.ok) await readStream(res);
      } catch (err) {
        // the gateway restarted or the network dropped: reconnect below
        console.warn("live updates interrupted:", err);
      }
      setLive("down", "reconnecting…");
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  // ---- health --------------------------------------------------------------------------------

  async function loadHealth() {
    try {
      const [health, ready, bundle] = await Promise.all([
        api("/health"), api("/ready", [200, 503]), api("/v1/bundle"),
      ]);
      $("store").textContent = `store ${health.store_id} · v${health.version}`;
      const items = Object.entries(ready.checks).map(([name, text]) => {
        const tone = text.startsWith("ok") ? "ok" : text.startsWith("optional") ? "warn" : "bad";
        const label = name === "mqtt" ? "broker" : name;
        return el("li", { class: `pill ${tone}`, title: `${name}: ${text}`, "data-check": name }, el("span", { class: "dot" }), label);
      });
      const model = !state.forecasts ? "read-only view" : bundle.loaded ? `model ${bundle.model_version}` : "rules (no model)";
      items.push(el("li", { class: "pill neutral", title: "model bundle in use" }, model));
      $("health").replaceChildren(...items);
    } catch (err) {
      if (err instanceof AuthNeeded) throw err;
      $("health").replaceChildren(el("li", { class: "pill bad" }, el("span", { class: "dot" }), "gateway unreachable"));
    }
  }

  // ---- forecast vs sales ---------------------------------------------------------------------

  async function loadChart(sku) {
    state.chartSku = sku;
    $("forecast-sku").value = sku;
    const view = await api(`/v1/sales/${encodeURIComponent(sku)}?days=28`, [200, 404, 503]);
    if (view.error) {
      $("chart").replaceChildren(el("p", { class: "empty" }, view.message));
      $("outlook").replaceChildren();
      return;
    }
    window.ShelfcastChart.draw($("chart"), view);
    const o = view.outlook;
    const facts = o
      ? [["next 7 days", `${num(o.demand_over_horizon, 1)} units`], ["per day", `${num(o.mean_daily, 1)} (P90 ${num(o.p90_daily, 1)})`],
        ["ATP", num(o.atp)], ["P(stock-out)", pct(o.stockout_probability)],
        ["stock lasts", o.expected_days_to_stockout === null ? "—" : `${num(o.expected_days_to_stockout, 1)} days`]]
      : [];
    $("outlook").replaceChildren(...facts.map(([k, v]) => el("div", { class: "fact" }, el("span", { class: "muted" }, k), el("strong", {}, v))));
    $("forecast-note").textContent = view.forecast_problem || (o ? `model ${o.model_version}` : "");
  }

  function pickDefaultSku() {
    const rows = [...state.stock.values()].sort((a, b) => b.sold - a.sold);
    return rows.length ? rows[0].sku : null;
  }

  // ---- wiring --------------------------------------------------------------------------------

  function wire() {
    for (const th of document.querySelectorAll("#stock-table th[data-key]")) {
      th.tabIndex = 0;
      const sort = () => {
        state.sortDir = state.sortKey === th.dataset.key ? -state.sortDir : 1;
        state.sortKey = th.dataset.key;
        renderStock();
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => e.key === "Enter" && sort());
    }
    $("stock-search").addEventListener("input", (e) => {
      state.query = e.target.value.trim();
      state.shown = ROWS_SHOWN;
      renderStock();
    });
    for (const b of document.querySelectorAll("#stock-view button")) {
      b.addEventListener("click", () => {
        state.view = b.dataset.view;
        state.shown = ROWS_SHOWN;
        for (const o of document.querySelectorAll("#stock-view button")) o.setAttribute("aria-pressed", String(o === b));
        renderStock();
      });
    }
    $("stock-more").addEventListener("click", () => {
      state.shown += ROWS_SHOWN;
      renderStock();
    });
    $("stock-rows").addEventListener("click", (e) => {
      const row = e.target.closest("tr[data-sku]");
      if (row) showChart(row.dataset.sku);
    });
    $("alert-list").addEventListener("click", (e) => {
      const b = e.target.closest("button.alert-sku");
      if (b && b.dataset.sku) showChart(b.dataset.sku);
    });
    for (const chip of document.querySelectorAll("#alert-kinds .chip")) {
      chip.addEventListener("click", () => {
        const k = chip.dataset.kind;
        if (state.kinds.has(k)) state.kinds.delete(k);
        else state.kinds.add(k);
        chip.setAttribute("aria-pressed", String(state.kinds.has(k)));
        renderAlerts();
      });
    }
    $("forecast-sku").addEventListener("change", (e) => {
      const sku = e.target.value.trim();
      if (sku) loadChart(sku).catch(report);
    });
  }

  function showChart(sku) {
    loadChart(sku).catch(report);
    $("forecast-title").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function report(err) {
    $("forecast-note").textContent = `Could not load: ${err.message}`;
  }

  async function start() {
    wire();
    const config = await api("/ui/config.json");
    $("store").textContent = `store ${config.store_id}`;
    state.forecasts = config.forecasts;
    if (!config.reads_open && !state.token) await askToken(null);
    await withToken(async () => {
      await loadHealth();
      await loadStock();
    });
    if (config.forecasts) {
      const sku = pickDefaultSku();
      if (sku) await loadChart(sku).catch(report);
    } else {
      state.chartSku = null;
      $("forecast-sku").disabled = true;
      $("forecast-note").textContent =
        "Forecasts are served by the running gateway; this API reads its state directory only.";
    }
    follow();
    setInterval(() => loadHealth().catch(() => {}), HEALTH_EVERY_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((err) => setLive("down", `error: ${err.message}`));
  });
})();

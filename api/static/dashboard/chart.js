// Forecast-vs-sales chart: daily sales as bars, the model's daily forecast as a line with its
// P90 band, drawn as inline SVG (no library: the page is served offline by the gateway).
// Input is GET /v1/sales/{sku} (api.schemas.SalesView).
"use strict";

window.ShelfcastChart = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 640, H = 260;
  const PAD = { left: 50, right: 24, top: 18, bottom: 40 };
  const DAY_MS = 86400000;

  function node(tag, attrs, text) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function tip(n, text) {
    n.appendChild(node("title", {}, text));
    return n;
  }

  // A "nice" axis step (1, 2 or 5 times a power of ten) giving about `count` ticks.
  function niceStep(max, count) {
    const raw = Math.max(max, 1) / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    return power * (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10);
  }

  const dayOf = (iso) => Date.parse(iso + "T00:00:00Z");
  const fmtDay = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
  const round1 = (x) => (Math.round(x * 10) / 10).toLocaleString();

  function scales(view) {
    const first = view.days.length ? dayOf(view.days[0].date) : dayOf(view.open_day);
    const lastForecast = view.forecast.length ? dayOf(view.forecast[view.forecast.length - 1].date) : 0;
    const last = Math.max(dayOf(view.open_day), lastForecast);
    const slots = Math.round((last - first) / DAY_MS) + 1;
    const top = Math.max(
      view.open_units,
      ...view.days.map((d) => d.units),
      ...view.forecast.map((f) => f.p90),
      1,
    );
    const step = niceStep(top, 5);
    const yMax = Math.ceil(top / step) * step;
    const slot = (W - PAD.left - PAD.right) / slots;
    return {
      first, slots, step, yMax, slot,
      x: (iso) => PAD.left + (Math.round((dayOf(iso) - first) / DAY_MS) + 0.5) * slot,
      y: (v) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / yMax),
    };
  }

  function axes(svg, s) {
    for (let v = 0; v <= s.yMax + 1e-9; v += s.step) {
      const y = s.y(v);
      svg.appendChild(node("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
      svg.appendChild(node("text", { x: PAD.left - 8, y: y + 4, class: "tick", "text-anchor": "end" }, v.toLocaleString()));
    }
    const mid = (PAD.top + H - PAD.bottom) / 2;
    svg.appendChild(node("text", { x: 14, y: mid, class: "axis-title", transform: `rotate(-90 14 ${mid})`, "text-anchor": "middle" }, "units / day"));
    // A date label every week, counted back from the last slot so the newest one is shown.
    const every = s.slots > 21 ? 7 : s.slots > 10 ? 3 : 1;
    for (let i = s.slots - 1; i >= 0; i -= every) {
      const iso = new Date(s.first + i * DAY_MS).toISOString().slice(0, 10);
      const x = s.x(iso);
      const anchor = x > W - PAD.right - 20 ? "end" : "middle";
      svg.appendChild(node("text", { x, y: H - PAD.bottom + 18, class: "tick", "text-anchor": anchor }, fmtDay.format(dayOf(iso))));
    }
    svg.appendChild(node("line", { x1: PAD.left, x2: W - PAD.right, y1: s.y(0), y2: s.y(0), class: "baseline" }));
  }

  function bars(svg, s, view) {
    const width = Math.max(2, s.slot * 0.72);
    for (const d of view.days) {
      const y = s.y(d.units);
      svg.appendChild(tip(node("rect", { x: s.x(d.date) - width / 2, y, width, height: s.y(0) - y, class: "bar sales", "data-date": d.date }),
        `${fmtDay.format(dayOf(d.date))}: ${round1(d.units)} sold`));
    }
    const y = s.y(view.open_units);
    svg.appendChild(tip(node("rect", { x: s.x(view.open_day) - width / 2, y, width, height: Math.max(s.y(0) - y, 0), class: "bar today" }),
      `today (${fmtDay.format(dayOf(view.open_day))}) so far: ${round1(view.open_units)} sold`));
    const x = s.x(view.open_day) - s.slot / 2;
    svg.appendChild(node("line", { x1: x, x2: x, y1: PAD.top, y2: s.y(0), class: "today-line" }));
    svg.appendChild(node("text", { x: x + 4, y: PAD.top + 10, class: "today-label" }, "today"));
  }

  function band(svg, s, view) {
    if (!view.forecast.length) return;
    const upper = view.forecast.map((f) => `${s.x(f.date)},${s.y(f.p90)}`);
    const lower = view.forecast.map((f) => `${s.x(f.date)},${s.y(f.mean)}`).reverse();
    svg.appendChild(node("polygon", { points: [...upper, ...lower].join(" "), class: "band" }));
  }

  function meanLine(svg, s, view) {
    if (!view.forecast.length) return;
    svg.appendChild(node("polyline", { points: view.forecast.map((f) => `${s.x(f.date)},${s.y(f.mean)}`).join(" "), class: "mean" }));
    for (const f of view.forecast) {
      svg.appendChild(tip(node("circle", { cx: s.x(f.date), cy: s.y(f.mean), r: 3.5, class: "mean-dot" }),
        `${fmtDay.format(dayOf(f.date))}: forecast ${round1(f.mean)} (P90 ${round1(f.p90)})`));
    }
  }

  function draw(container, view) {
    const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, class: "sales-chart", preserveAspectRatio: "xMidYMid meet" });
    const s = scales(view);
    axes(svg, s);
    band(svg, s, view);
    bars(svg, s, view);
    meanLine(svg, s, view);
    container.replaceChildren(svg);
  }

  return { draw };
})();

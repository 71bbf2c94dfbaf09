// Leaderboard page: reads this service's /v1/leaderboard, draws a table and an SVG chart.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const pct = (x) => `${(100 * x).toFixed(1)} %`;
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Horizontal bars of win-rate with the Wilson 95 % interval as a whisker.
  function chart(models) {
    const rowH = 28, left = 150, width = 460, top = 24;
    const root = svg("svg", { width: left + width + 60, height: top + rowH * models.length + 22,
      role: "img", "data-testid": "winrate-chart" });
    root.append(svg("text", { x: left, y: 14, "font-size": 12, fill: "#666" }, "win-rate with 95 % CI"));
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      const x = left + t * width;
      root.append(svg("line", { x1: x, x2: x, y1: top - 4, y2: top + rowH * models.length, stroke: "#eee" }));
      root.append(svg("text", { x: x - 8, y: top + rowH * models.length + 10, "font-size": 9, fill: "#999" }, `${t * 100}%`));
    }
    models.forEach((m, i) => {
      const y = top + i * rowH;
      root.append(svg("text", { x: left - 8, y: y + 17, "text-anchor": "end", "font-size": 13 }, m.model));
      root.append(svg("rect", { class: "bar", x: left, y: y + 5, height: rowH - 10,
        width: Math.max(1, m.win_rate * width), fill: "#b0306a", "data-model": m.model }));
      const lo = left + m.ci_low * width, hi = left + m.ci_high * width, cy = y + rowH / 2;
      root.append(svg("line", { x1: lo, x2: hi, y1: cy, y2: cy, stroke: "#222", "stroke-width": 1.5 }));
      root.append(svg("line", { x1: lo, x2: lo, y1: cy - 5, y2: cy + 5, stroke: "#222" }));
      root.append(svg("line", { x1: hi, x2: hi, y1: cy - 5, y2: cy + 5, stroke: "#222" }));
      root.append(svg("text", { x: left + width + 6, y: y + 17, "font-size": 12 }, pct(m.win_rate)));
    });
    return root;
  }

  async function load() {
    const cat = $("catalogue").value;
    const q = cat ? `?catalogue=${encodeURIComponent(cat)}` : "";
    $("csv").href = `/v1/leaderboard.csv${q}`;
    $("json").href = `/v1/leaderboard${q}`;
    const res = await fetch(`/v1/leaderboard${q}`);
    if (!res.ok) { FR.toast(`Leaderboard failed: ${res.status}`); return; }
    const board = await res.json();
    const known = Array.from($("catalogue").options).map((o) => o.value);
    for (const c of board.catalogues) {
      if (!known.includes(c)) $("catalogue").append(FR.el("option", { value: c }, c));
    }
    $("summary").textContent = `${board.votes} votes (${board.none_votes} "none is similar") ` +
      `from ${board.annotators} annotator(s)`;
    $("chart").replaceChildren(chart(board.models));
    $("board").tBodies[0].replaceChildren(...board.models.map((m) => FR.el("tr", { "data-model": m.model },
      FR.el("td", {}, String(m.rank)), FR.el("td", {}, m.model), FR.el("td", { class: "wins" }, String(m.wins)),
      FR.el("td", {}, String(m.shown)), FR.el("td", {}, pct(m.win_rate)),
      FR.el("td", {}, `${pct(m.ci_low)} – ${pct(m.ci_high)}`), FR.el("td", {}, m.bt_strength.toFixed(3)))));
    const a = board.agreement;
    $("agreement").textContent = a.shared_queries
      ? `Agreement on ${a.shared_queries} shared queries: pairwise ${pct(a.pairwise_agreement)}, ` +
        `unanimous ${pct(a.unanimous_share)}` +
        (a.fleiss_kappa === null ? "" : `, Fleiss' kappa ${a.fleiss_kappa.toFixed(2)}`)
      : "No query has been judged by two annotators yet.";
  }

  $("catalogue").addEventListener("change", load);
  $("refresh").addEventListener("click", load);
  load();
  setInterval(load, 15000);
})();

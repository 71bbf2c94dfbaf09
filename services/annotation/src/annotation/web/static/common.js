// Shared helpers: gateway reads (no key: a page holds no secret), item cards, option lists.
"use strict";
const FR = (() => {
  const cfg = window.FASHIONREC || {};
  const gw = (cfg.gatewayUrl || "").replace(/\/$/, "");

  async function gateway(path, opts) {
    const res = await fetch(gw + path, opts || {});
    if (!res.ok) {
      const err = new Error(`${res.status} ${res.statusText} from ${path}`);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }

  // Lists may come bare or wrapped ({"models": [...]}), as strings or objects with a name.
  function names(body, key) {
    const list = Array.isArray(body) ? body : (body && body[key]) || [];
    return list.map((x) => (typeof x === "string" ? x : x.name || x.id)).filter(Boolean);
  }

  // Catalogue name -> its model names, when the gateway lists them ([{name, models}]).
  function catalogueModels(body) {
    const list = Array.isArray(body) ? body : (body && body.catalogues) || [];
    const out = {};
    for (const c of list) if (c && typeof c === "object" && Array.isArray(c.models)) out[c.name] = c.models;
    return out;
  }

  // Query string without empty values (the gateway treats model="" as a model name).
  function qs(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    return q.toString();
  }

  function imageSrc(item) {
    const url = item.image_url || "";
    return url.startsWith("/") ? gw + url : url;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function title(item) {
    const m = item.metadata || {};
    return m.title || [m.colour, m.class].filter(Boolean).join(" ") || item.id;
  }

  function card(item, onclick) {
    const score = typeof item.score === "number" ? `score ${item.score.toFixed(3)}` : "";
    return el("div", { class: "card", "data-item-id": item.id, onclick },
      el("img", { src: imageSrc(item), alt: title(item), loading: "lazy" }),
      el("div", { class: "t", title: title(item) }, title(item)),
      score ? el("div", { class: "s" }, score) : null);
  }

  function fill(select, values, selected) {
    select.replaceChildren(...values.map((v) => el("option", { value: v }, v)));
    if (selected && values.includes(selected)) select.value = selected;
  }

  function toast(msg) {
    const t = document.getElementById("toast");
    if (t) t.textContent = msg;
  }

  return { cfg, gateway, gw, names, catalogueModels, qs, imageSrc, el, card, title, fill, toast };
})();

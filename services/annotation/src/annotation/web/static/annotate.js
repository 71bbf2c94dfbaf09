// Annotator page (paper Fig. 8.9): query left, one blinded row per model right.
// Keys 1-9 pick a row, 0 = none is similar. A vote that fails with 503 or a network
// error (or 429/502/504) is retried with backoff (and kept in localStorage across reloads) so none is lost.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "fashionrec.annotatorToken";
  const PENDING_KEY = "fashionrec.pendingVote";
  const RETRYABLE = new Set([429, 502, 503, 504]);
  const state = { token: null, compare: null, shownAt: 0, busy: false, votes: 0, shown: 0, models: [], byCatalogue: {}, seen: new Set(), total: null };

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const setRetry = (msg) => { $("retry-note").hidden = !msg; $("retry-note").textContent = msg || ""; };

  async function whoami(token) {
    const res = await fetch("/v1/annotators/me", { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return null;
    return (await res.json()).name;
  }

  async function signIn(token) {
    const name = await whoami(token);
    if (!name) { $("signin-error").textContent = "Unknown annotator token."; return false; }
    state.token = token;
    localStorage.setItem(TOKEN_KEY, token);
    $("annotator-name").textContent = name;
    $("signin").hidden = true;
    $("workspace").hidden = false;
    return true;
  }

  function signOut() {
    localStorage.removeItem(TOKEN_KEY);
    state.token = null;
    $("workspace").hidden = true;
    $("signin").hidden = false;
  }

  // Every service answers {"error": {"code", "message"}}; the code decides what to do.
  async function errorCode(res) {
    try { const e = (await res.json()).error; return (e && e.code) || null; } catch (e) { return null; }
  }

  // POST the vote through the gateway until it gets a definite answer.
  async function send(vote) {
    localStorage.setItem(PENDING_KEY, JSON.stringify(vote));
    let delay = 500;
    for (let attempt = 1; ; attempt++) {
      let status = 0;
      let res = null;
      try {
        res = await fetch(`${FR.gw}/v1/votes`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
          body: JSON.stringify(vote),
        });
        status = res.status;
      } catch (e) {
        status = 0; // network error: the gateway or the annotation service is restarting
      }
      if (status !== 0 && !RETRYABLE.has(status)) {
        localStorage.removeItem(PENDING_KEY);
        setRetry("");
        return { status, error: await errorCode(res) };
      }
      setRetry(`Saving your vote failed (${status || "network error"}); retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})…`);
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
  }

  async function vote(choice) {
    if (state.busy || !state.compare) return;
    if (choice > state.compare.rows.length) return;
    state.busy = true;
    const row = document.querySelector(`.row[data-row="${choice}"]`);
    if (row) row.classList.add("chosen");
    const { status, error } = await send({ token: state.compare.token, choice, duration_ms: Math.round(performance.now() - state.shownAt) });
    if (status === 201 || error === "token_replayed") {
      // A replay after a retry means the first attempt was stored: count it once.
      state.votes += 1;
      $("vote-count").textContent = String(state.votes);
      FR.toast(status === 201 ? "Vote saved" : "Vote was already recorded");
    } else if (error === "double_vote") {
      FR.toast("You already voted on this product; here is another one");
    } else if (status === 401) {
      state.busy = false;
      signOut();
      $("signin-error").textContent = "Your annotator token was rejected; sign in again.";
      return;
    } else {
      FR.toast(`Vote rejected (${status}); skipping this query`);
    }
    // Stay busy until the next query is shown: a key pressed meanwhile must not
    // vote again on the comparison just answered.
    state.compare = null;
    await next();
    state.busy = false;
  }

  // Models to compare in this catalogue: those indexed for it, when the gateway says.
  function compareModels(catalogue) {
    const allowed = state.byCatalogue[catalogue];
    const list = allowed ? state.models.filter((m) => allowed.includes(m)) : state.models;
    return list.slice(0, 8);
  }

  async function randomItem(catalogue) {
    const model = compareModels(catalogue)[0] || "";
    if (state.total === null) {
      const first = await FR.gateway(`/v1/items?${FR.qs({ catalogue, model, offset: 0, limit: 100 })}`);
      if (typeof first.total !== "number") {
        const items = first.items || [];
        return items[Math.floor(Math.random() * items.length)];
      }
      state.total = first.total;
    }
    // Prefer a product this annotator has not judged yet (a repeat is a double vote).
    let item = null;
    for (let tries = 0; tries < 5; tries++) {
      const offset = Math.floor(Math.random() * state.total);
      const page = await FR.gateway(`/v1/items?${FR.qs({ catalogue, model, offset, limit: 1 })}`);
      item = (page.items || [])[0];
      if (!item || !state.seen.has(item.id)) break;
    }
    return item;
  }

  function render(cmp) {
    $("query").replaceChildren(
      FR.el("img", { src: FR.imageSrc(cmp.query), alt: FR.title(cmp.query), "data-item-id": cmp.query.id }),
      FR.el("p", {}, FR.title(cmp.query)));
    $("rows").replaceChildren(...cmp.rows.map((r) => FR.el("div", { class: "row", "data-row": r.row, onclick: () => vote(r.row) },
      FR.el("span", { class: "key" }, String(r.row)),
      ...r.items.map((it) => FR.el("img", { src: FR.imageSrc(it), alt: FR.title(it), title: FR.title(it) })))));
    state.shown += 1;
    $("rows").dataset.seq = String(state.shown);
    state.shownAt = performance.now();
  }

  async function next() {
    const catalogue = $("catalogue").value;
    for (let delay = 1000; ; delay = Math.min(delay * 2, 8000)) {
      try {
        const item = await randomItem(catalogue);
        if (!item) throw new Error("the catalogue is empty");
        const q = FR.qs({ item_id: item.id, catalogue, models: compareModels(catalogue).join(","), k: 5 });
        state.compare = await FR.gateway(`/v1/compare?${q}`);
        state.seen.add(item.id);
        render(state.compare);
        setRetry("");
        return;
      } catch (e) {
        state.compare = null;
        setRetry(`Could not load the next query (${e.message}); retrying…`);
        await sleep(delay);
      }
    }
  }

  function onKey(ev) {
    if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (!/^[0-9]$/.test(ev.key) || $("workspace").hidden) return;
    ev.preventDefault();
    vote(parseInt(ev.key, 10));
  }

  async function start() {
    const pending = localStorage.getItem(PENDING_KEY);
    if (pending) {
      const { status } = await send(JSON.parse(pending));
      FR.toast(`A vote left from the last visit was sent (${status})`);
    }
    try {
      const [cats, models] = await Promise.all([FR.gateway("/v1/catalogues"), FR.gateway("/v1/models")]);
      FR.fill($("catalogue"), FR.names(cats, "catalogues"), new URLSearchParams(location.search).get("catalogue"));
      state.models = FR.names(models, "models");
      state.byCatalogue = FR.catalogueModels(cats);
    } catch (e) {
      setRetry(`Gateway unreachable (${FR.gw}): ${e.message}`);
      return;
    }
    await next();
  }

  async function init() {
    document.addEventListener("keydown", onKey);
    $("none").addEventListener("click", () => vote(0));
    $("signout").addEventListener("click", signOut);
    $("catalogue").addEventListener("change", () => { if (!state.busy) { state.total = null; next(); } });
    $("signin-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (await signIn($("annotator-token").value.trim())) await start();
    });
    const saved = localStorage.getItem(TOKEN_KEY);
    if (saved && (await signIn(saved))) await start();
  }

  init();
})();

// Shop page: browse a catalogue, click an item for its top-k similar items, search by photo.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const LIMIT = 24;
  const state = { offset: 0, total: null, models: [], byCatalogue: {} };

  const catalogue = () => $("catalogue").value;
  const model = () => $("model").value;
  const k = () => Math.max(1, Math.min(50, parseInt($("k").value, 10) || 8));

  function showResults(heading, body) {
    $("results").hidden = false;
    $("results-title").textContent = heading;
    const bits = [`model ${body.model || model()}`];
    if (body.model_version) bits.push(`version ${body.model_version}`);
    if (body.partial) bits.push("partial results (a shard did not answer)");
    $("results-meta").textContent = bits.join(" · ");
    $("results-grid").replaceChildren(...(body.items || []).map((it) => FR.card(it, () => similar(it))));
    $("results").scrollIntoView({ block: "start" });
  }

  async function similar(item) {
    try {
      const q = FR.qs({ model: model(), k: k(), catalogue: catalogue() });
      const body = await FR.gateway(`/v1/items/${encodeURIComponent(item.id)}/similar?${q}`);
      showResults(`Similar to ${FR.title(item)}`, body);
    } catch (e) {
      FR.toast(`Search failed: ${e.message}`);
    }
  }

  async function browse() {
    try {
      const q = FR.qs({ catalogue: catalogue(), model: model(), offset: state.offset, limit: LIMIT });
      const body = await FR.gateway(`/v1/items?${q}`);
      const items = body.items || [];
      state.total = typeof body.total === "number" ? body.total : null;
      $("browse").replaceChildren(...items.map((it) => FR.card(it, () => similar(it))));
      const end = state.offset + items.length;
      $("browse-count").textContent = state.total === null
        ? `${state.offset + 1}-${end}` : `${state.offset + 1}-${end} of ${state.total}`;
      $("prev").disabled = state.offset === 0;
      $("next").disabled = state.total !== null ? end >= state.total : items.length < LIMIT;
    } catch (e) {
      FR.toast(`Could not load the catalogue: ${e.message}`);
    }
  }

  async function upload(ev) {
    ev.preventDefault();
    const file = $("photo").files[0];
    if (!file) { FR.toast("Choose a photo first"); return; }
    const form = new FormData();
    form.append("image", file);
    form.append("catalogue", catalogue());
    form.append("model", model());
    form.append("k", String(k()));
    try {
      const body = await FR.gateway("/v1/search", { method: "POST", body: form });
      showResults(`Similar to your photo (${file.name})`, body);
    } catch (e) {
      FR.toast(`Photo search failed: ${e.message}`);
    }
  }

  // Only the models indexed for the chosen catalogue, when the gateway says which.
  function fillModels(selected) {
    const allowed = state.byCatalogue[catalogue()];
    const list = allowed ? state.models.filter((m) => allowed.includes(m)) : state.models;
    FR.fill($("model"), list.length ? list : state.models, selected);
  }

  async function init() {
    $("upload").addEventListener("submit", upload);
    $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - LIMIT); browse(); });
    $("next").addEventListener("click", () => { state.offset += LIMIT; browse(); });
    $("model").addEventListener("change", () => { state.offset = 0; browse(); });
    $("catalogue").addEventListener("change", () => { fillModels(model()); state.offset = 0; browse(); });
    try {
      const [cats, models] = await Promise.all([FR.gateway("/v1/catalogues"), FR.gateway("/v1/models")]);
      const params = new URLSearchParams(location.search);
      FR.fill($("catalogue"), FR.names(cats, "catalogues"), params.get("catalogue"));
      state.models = FR.names(models, "models");
      state.byCatalogue = FR.catalogueModels(cats);
      fillModels(params.get("model"));
    } catch (e) {
      FR.toast(`Gateway unreachable (${FR.gw}): ${e.message}`);
      return;
    }
    await browse();
  }

  init();
})();

"use strict";
// The upload page's teach panel: name a taught model and its classes, drop photos on a
// class, see each class's count and latest photos, delete an example or a class, and read
// the honest accuracy of the last fit. Everything goes through the admin routes
// /v1/models/NAME/examples[/CLASS[/ID]] with the admin token typed here (kept in this
// page only, like the inference token). Uses app.js's loadModels() and choose() so the
// taught model appears among the model cards once it answers.
// One closure: nothing here is global beside app.js and the page's other scripts.
(() => {
  const teach = { name: "", classes: [], thumbs: new Map() };
  const SHOWN = 6; // the latest examples of a class shown as thumbnails
  const $t = (id) => document.getElementById(id);

  function tag(name, attrs = {}, text = "") {
    const node = document.createElement(name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  }

  class TeachError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function teachCall(method, path = "", body = undefined) {
    // One admin request on the open model; its JSON, or a TeachError with the box's words.
    const url = `/v1/models/${encodeURIComponent(teach.name)}/examples${path}`;
    const token = $t("admin-token").value.trim();
    const response = await fetch(url, { method, body, headers: { Authorization: "Bearer " + token } });
    if (response.ok && !(response.headers.get("Content-Type") || "").includes("json")) {
      return response.blob();
    }
    const json = await response.json().catch(() => ({}));
    if (!response.ok) {
      const words = json.error ? json.error.message : `${response.status} ${response.statusText}`;
      throw new TeachError(response.status, response.status === 401
        ? "The admin token is missing or wrong: it is in STATE_DIR/admin-token on the box" : words);
    }
    return json;
  }

  const part = (text) => "/" + encodeURIComponent(text);

  function say(text, error = false) {
    const status = $t("teach-status");
    status.textContent = text;
    status.className = error ? "error" : "muted";
    status.setAttribute("role", error ? "alert" : "status");
  }

  function typedClasses() {
    // The class names typed, comma-separated, each once (Cat and cat are one class).
    const seen = new Set();
    return $t("teach-class-names").value.split(",").map((s) => s.trim()).filter((s) => {
      const key = s.toLowerCase();
      if (!s || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  async function openModel(event) {
    event.preventDefault();
    teach.name = $t("teach-name").value.trim();
    const typed = typedClasses();
    let known = [], report = null;
    try {
      const body = await teachCall("GET");
      known = body.classes.map((c) => c.name);
      report = body.report;
    } catch (err) {
      if (err.status !== 404) return say(err.message, true);
      if (typed.length < 2) return say("A new taught model needs two or more classes: type their names, separated by commas", true);
    }
    const lower = new Set(known.map((c) => c.toLowerCase()));
    teach.classes = [...known, ...typed.filter((c) => !lower.has(c.toLowerCase()))];
    say(known.length ? `${teach.name}: ${known.length} classes taught so far` : `${teach.name} is new: drop a few photos on each class`);
    $t("teach-board").textContent = "";
    for (const cls of teach.classes) $t("teach-board").append(classCard(cls));
    showReport(report, known.length >= 2);
    await Promise.all(known.map(refreshClass));
  }

  function classCard(cls) {
    const card = tag("article", { class: "teach-class", "data-class": cls });
    const head = tag("div", { class: "teach-head" });
    const remove = tag("button", { type: "button", class: "remove-class" }, "Delete class");
    remove.addEventListener("click", () => removeClass(cls));
    head.append(tag("h3", {}, cls), tag("span", { class: "count" }, "no examples yet"), remove);
    const drop = tag("label", { class: "drop teach-drop" });
    const input = tag("input", { type: "file", multiple: "", "aria-label": `photos of ${cls}`,
      accept: "image/jpeg,image/png,image/webp,image/bmp,image/gif" });
    input.addEventListener("change", () => addPhotos(cls, [...input.files]).finally(() => { input.value = ""; }));
    drop.append(input, tag("img", { class: "latest", alt: `the latest photo of ${cls}`, hidden: "" }),
      tag("span", { class: "drop-words" }, `Drop photos of ${cls} here`));
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      addPhotos(cls, [...e.dataTransfer.files]);
    });
    card.append(head, drop, tag("ul", { class: "examples", "aria-label": `examples of ${cls}` }));
    return card;
  }

  const cardOf = (cls) => [...document.querySelectorAll(".teach-class")].find((c) => c.dataset.class === cls);

  async function addPhotos(cls, files) {
    // One photo at a time (the box fits one change of a model at a time); each answers
    // with the refit's report.
    let body = null;
    for (const [i, file] of files.entries()) {
      say(`Adding ${file.name} to ${cls} (${i + 1} of ${files.length})…`);
      const form = new FormData();
      form.append("image", file);
      try {
        body = await teachCall("POST", part(cls), form);
      } catch (err) {
        say(`${file.name}: ${err.message}`, true);
        break;
      }
    }
    if (body) await changed(body, `${cls}: added`);
    await refreshClass(cls);
  }

  async function changed(body, what) {
    // After a change: the report, and the model cards (the taught model answers from its
    // second class on, and stops answering with one).
    showReport(body.report || null, body.serving, body.reason);
    const fit = body.fit_ms !== undefined ? ` (fitted in ${body.fit_ms} ms)` : "";
    say(body.serving ? `${what}${fit}: ${teach.name} answers now: drop a photo above to try it` : `${what}: ${body.reason || ""}`);
    await loadModels();
    if (state.models.some((m) => m.name === teach.name && m.status === "ready")) choose(teach.name);
  }

  async function refreshClass(cls) {
    const card = cardOf(cls);
    if (!card) return;
    let ids = [];
    try {
      ids = (await teachCall("GET", part(cls))).examples.map((e) => e.id);
    } catch (err) {
      if (err.status !== 404) return say(err.message, true);
    }
    card.querySelector(".count").textContent = ids.length === 1 ? "1 example" : `${ids.length || "no"} examples`;
    card.dataset.count = String(ids.length);
    const list = card.querySelector(".examples");
    list.textContent = "";
    const latest = ids.slice(-SHOWN).reverse();
    const urls = await Promise.all(latest.map((id) => thumb(cls, id)));
    latest.forEach((id, i) => list.append(exampleItem(cls, id, urls[i])));
    const big = card.querySelector(".latest");
    big.hidden = !urls.length;
    if (urls.length) big.src = urls[0];
    card.querySelector(".drop-words").textContent = urls.length ? `Drop more photos of ${cls}` : `Drop photos of ${cls} here`;
  }

  async function thumb(cls, id) {
    // An example's photo as an object URL (an <img> cannot send the admin token itself).
    if (!teach.thumbs.has(id)) {
      try {
        teach.thumbs.set(id, URL.createObjectURL(await teachCall("GET", part(cls) + part(id))));
      } catch {
        return "";
      }
    }
    return teach.thumbs.get(id);
  }

  function exampleItem(cls, id, url) {
    const item = tag("li", { "data-id": id });
    item.append(tag("img", { src: url, alt: `an example of ${cls}` }));
    const remove = tag("button", { type: "button", class: "remove-example", "aria-label": `delete this example of ${cls}` }, "×");
    remove.addEventListener("click", () => removeExample(cls, id));
    item.append(remove);
    return item;
  }

  async function removeExample(cls, id) {
    try {
      const body = await teachCall("DELETE", part(cls) + part(id));
      URL.revokeObjectURL(teach.thumbs.get(id));
      teach.thumbs.delete(id);
      await changed(body, `${cls}: one example deleted`);
    } catch (err) {
      say(err.message, true);
    }
    await refreshClass(cls);
  }

  async function removeClass(cls) {
    const card = cardOf(cls);
    if (Number(card.dataset.count || 0) > 0) {
      if (!window.confirm(`Delete the class ${cls} and its ${card.dataset.count} examples?`)) return;
      try {
        await changed(await teachCall("DELETE", part(cls)), `${cls} deleted`);
      } catch (err) {
        return say(err.message, true);
      }
    }
    teach.classes = teach.classes.filter((c) => c !== cls);
    card.remove();
  }

  const percent = (x) => `${Math.round(x * 100)}%`;

  function showReport(report, serving, reason = "") {
    // The honest accuracy: each example judged by a model fitted without it.
    const box = $t("teach-report");
    box.textContent = "";
    if (!report) {
      if (reason || teach.classes.length) box.append(tag("p", { class: "muted" }, reason || "A taught model answers once two classes have an example."));
      return;
    }
    const overall = report.loo_accuracy === null ? "not measured yet (one example per class)" : percent(report.loo_accuracy);
    box.append(tag("p", { id: "teach-accuracy" }, `Accuracy on its own examples, each left out in turn: ${overall}, from ${report.examples} photos`));
    const rows = tag("ul", { class: "teach-scores" });
    for (const [name, c] of Object.entries(report.classes)) {
      const taken = Object.entries(c.taken_for).map(([o, n]) => `taken for ${o} ${n}×`).join(", ");
      const score = c.loo_accuracy === null ? "not measured" : percent(c.loo_accuracy);
      rows.append(tag("li", {}, `${name}: ${score} of ${c.examples}${taken ? ` · ${taken}` : ""}`));
    }
    box.append(rows);
    for (const warning of report.warnings) box.append(tag("p", { class: "warning" }, warning));
    if (serving === false) box.append(tag("p", { class: "muted" }, "It does not answer now: it needs two classes with an example."));
  }

  async function onTheScreen() {
    // The box's own teach screen for this model and its classes: its buttons then choose
    // a class and add the camera's picture (POST /v1/standalone/teach).
    if (!teach.name) return say("Open a model first: its name and classes", true);
    const token = $t("admin-token").value.trim();
    const response = await fetch("/v1/standalone/teach", { method: "POST",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ model: teach.name, classes: teach.classes }) });
    const json = await response.json().catch(() => ({}));
    if (!response.ok) return say(json.error ? json.error.message : response.statusText, true);
    say(`The box's screen teaches ${json.teaching} now: next and previous choose a class, `
      + "capture adds the camera's picture, holding capture finishes");
  }

  $t("teach-form").addEventListener("submit", openModel);
  $t("teach-screen").addEventListener("click", () => onTheScreen().catch((err) => say(String(err), true)));
  $t("add-class").addEventListener("click", () => {
    for (const cls of typedClasses()) {
      if (!teach.name || teach.classes.some((c) => c.toLowerCase() === cls.toLowerCase())) continue;
      teach.classes.push(cls);
      $t("teach-board").append(classCard(cls));
    }
  });
})();

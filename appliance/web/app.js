"use strict";
// The upload page: list models as cards, post the dropped image, show the result.
const state = { models: [], chosen: null, file: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: "Bearer " + token } : {};
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: authHeaders() });
  const body = await response.json();
  state.models = body.models;
  const box = $("models");
  box.textContent = "";
  if (!state.models.length) box.append(el("p", { class: "muted" }, "No models installed."));
  for (const m of state.models) box.append(card(m));
  const first = state.models.find((m) => m.active && m.status === "ready")
    || state.models.find((m) => m.status === "ready");
  if (first) choose(first.name);
}

function card(m) {
  const ready = m.status === "ready";
  const node = el("button", { class: "card" + (ready ? "" : " failed"), role: "radio",
    "aria-checked": "false", "data-name": m.name, type: "button" });
  node.append(el("h3", {}, m.name), el("span", { class: "task" }, m.task || "failed"));
  const meta = ready
    ? `${m.input_size[1]}×${m.input_size[0]} · ${m.precision} · ${m.attribution.author} · ${m.license}`
    : m.error;
  node.append(el("div", { class: "meta" }, meta));
  if (ready) node.addEventListener("click", () => choose(m.name));
  else node.disabled = true;
  return node;
}

function choose(name) {
  state.chosen = state.models.find((m) => m.name === name);
  for (const c of document.querySelectorAll(".card")) {
    c.setAttribute("aria-checked", String(c.dataset.name === name));
  }
  const a = state.chosen.attribution;
  $("footer-credit").textContent = `${name}: ${a.author}, ${a.license}`;
  showCurl();
  if (state.file) run();
}

function showCurl() {
  if (!state.chosen) return;
  const url = `${location.origin}/v1/models/${state.chosen.name}/infer`;
  const out = state.chosen.task === "image-to-image" ? " -o result.png" : "";
  const auth = $("token").value.trim() ? " -H 'Authorization: Bearer TOKEN'" : "";
  $("curl").textContent = `curl -F image=@photo.jpg${auth} ${url}${out}`;
}

function pick(file) {
  if (!file) return;
  state.file = file;
  $("drop-text").textContent = file.name;
  $("input-preview").src = URL.createObjectURL(file);
  run();
}

async function run() {
  if (!state.chosen || !state.file) return;
  $("result-section").hidden = false;
  const output = $("output");
  output.textContent = "Working…";
  const form = new FormData();
  form.append("image", state.file);
  const image = state.chosen.task === "image-to-image";
  const url = `/v1/models/${state.chosen.name}/infer${image ? "?format=json" : ""}`;
  try {
    const response = await fetch(url, { method: "POST", body: form, headers: authHeaders() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    render(body);
  } catch (err) {
    output.textContent = "";
    output.append(el("p", { class: "error", role: "alert" }, err.message));
  }
}

function render(body) {
  const output = $("output");
  output.textContent = "";
  if (body.predictions) {
    for (const p of body.predictions) output.append(prediction(p));
  } else if (body.image) {
    const src = `data:${body.mime};base64,${body.image}`;
    output.append(el("img", { src, alt: `${body.model} result`, id: "output-image" }));
    output.append(el("a", { href: src, download: `${body.model}.png`, class: "download" },
      "Download"));
  } else if (body.detections) {
    output.append(boxes(body.detections));
  } else if (body.embedding) {
    output.append(el("p", {}, `A ${body.dim}-dimensional embedding:`));
    output.append(el("pre", {}, "[" + body.embedding.slice(0, 8).map((v) => v.toFixed(4))
      .join(", ") + ", …]"));
  }
  const t = body.timing_ms;
  $("timings").textContent = `${body.model} ${body.version} · decode ${t.decode} ms · `
    + `preprocess ${t.preprocess} ms · inference ${t.inference} ms · `
    + `postprocess ${t.postprocess} ms · ${body.attribution.author}, ${body.attribution.license}`;
}

function boxes(detections) {
  // The input image with each box drawn over it, in the image's own pixels.
  const canvas = el("canvas", { id: "output-boxes", "aria-label": `${detections.length} found` });
  const image = $("input-preview");
  const draw = () => {
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0);
    ctx.lineWidth = Math.max(2, canvas.width / 200);
    ctx.font = `${Math.max(14, canvas.width / 30)}px system-ui, sans-serif`;
    for (const d of detections) {
      const [x0, y0, x1, y1] = d.box;
      ctx.strokeStyle = "#f97316";
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.fillStyle = "#f97316";
      ctx.fillText(`${d.label} ${(d.score * 100).toFixed(0)}%`, x0, Math.max(16, y0 - 6));
    }
  };
  if (image.complete) draw(); else image.addEventListener("load", draw, { once: true });
  const wrap = el("div");
  wrap.append(canvas, el("p", { class: "muted" },
    detections.length ? `${detections.length} found` : "Nothing found."));
  return wrap;
}

function prediction(p) {
  const node = el("div", { class: "pred" });
  const row = el("div", { class: "row" });
  row.append(el("span", {}, p.label), el("span", {}, `${(p.score * 100).toFixed(1)}%`));
  const bar = el("div", { class: "bar" });
  const fill = el("span");
  fill.style.width = `${Math.max(1, p.score * 100)}%`;
  bar.append(fill);
  node.append(row, bar);
  return node;
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => pick(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    pick(e.dataTransfer.files[0]);
  });
  $("token").addEventListener("change", () => { showCurl(); loadModels(); });
  $("copy").addEventListener("click", () => navigator.clipboard.writeText($("curl").textContent));
}

wire();
loadModels().catch((err) => { $("models-status").textContent = "Cannot list models: " + err; });

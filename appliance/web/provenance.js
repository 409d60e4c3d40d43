"use strict";
// "Made here, by this model, by these people": a card under every result (a picture's
// Content Credentials read back through POST /v1/verify), and the owner's usage chart
// (GET /v1/usage with the admin token). app.js announces each result with the
// "appliance:result" event; this file only listens and draws.
// `$` and `el` are app.js's (loaded first).
(() => {
  function bearer(id) {
    const field = $(id);
    const token = field ? field.value.trim() : "";
    return token ? { Authorization: "Bearer " + token } : {};
  }

  // -- the card under each result ------------------------------------------------------

  let ticket = 0;

  async function onResult(event) {
    const { body } = event.detail;
    const box = $("provenance");
    if (!box || !body) return;
    const mine = ++ticket;
    box.textContent = "";
    const card = el("aside", { class: "made-here", id: "made-here", "aria-label": "made here" });
    card.append(el("h3", {}, "Made here, by this model, by these people"));
    const a = body.attribution || {};
    card.append(line("Model", `${body.model} ${body.version}`),
      line("By", a.author), line("From", a.source), line("Licence", a.license));
    if (body.result_id) card.append(line("Result", body.result_id.slice(0, 16) + "…"));
    const seal = el("p", { class: "seal muted", id: "made-here-seal" },
      body.image ? "Reading the picture's Content Credentials…"
        : "An answer in words carries no signature; pictures from this box do.");
    card.append(seal);
    box.append(card);
    if (body.image) showSeal(seal, await verify(body), mine);
  }

  function line(label, value) {
    const row = el("p", { class: "made-line" });
    row.append(el("span", { class: "muted" }, label + " "), el("span", {}, value || "—"));
    return row;
  }

  async function verify(body) {
    const bytes = Uint8Array.from(atob(body.image), (c) => c.charCodeAt(0));
    const form = new FormData();
    form.append("image", new Blob([bytes], { type: body.mime }), "result");
    try {
      const response = await fetch("/v1/verify", { method: "POST", body: form,
        headers: bearer("token") });
      const report = await response.json();
      return response.ok ? report : { error: report.error ? report.error.message : "" };
    } catch (err) {
      return { error: String(err) };
    }
  }

  function showSeal(seal, report, mine) {
    if (mine !== ticket) return;
    seal.classList.remove("muted");
    if (report.error !== undefined) {
      seal.textContent = "Its Content Credentials could not be read: " + report.error;
      seal.dataset.state = "unknown";
    } else if (!report.signed) {
      seal.textContent = "Not signed: " + report.message;
      seal.dataset.state = "unsigned";
    } else if (report.valid && report.from_box) {
      seal.textContent = "✓ Signed on " + report.box + ": " + report.message;
      seal.dataset.state = "valid";
    } else {
      // Not valid, or signed by a key this box does not know: what it says is a claim only.
      seal.textContent = "✗ " + report.message;
      seal.dataset.state = report.valid ? "unknown-key" : "invalid";
    }
  }

  // -- the owner's usage chart ----------------------------------------------------------

  async function showUsage(event) {
    event.preventDefault();
    const out = $("usage-out");
    out.textContent = "Loading…";
    const month = $("usage-month").value;
    const query = month ? "?month=" + encodeURIComponent(month) : "";
    try {
      const response = await fetch("/v1/usage" + query, { headers: bearer("usage-token") });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
      out.textContent = "";
      out.append(chart(body.rows), totals(body), status(body));
    } catch (err) {
      out.textContent = "";
      out.append(el("p", { class: "error", role: "alert" }, err.message));
    }
  }

  function chart(rows) {
    // Requests answered per day, one bar a day (a rolled-up month is one bar too).
    const byDay = new Map();
    for (const r of rows) byDay.set(r.period, (byDay.get(r.period) || 0) + r.answered);
    const days = [...byDay.keys()].sort();
    const top = Math.max(1, ...byDay.values());
    const W = 600, H = 160, gap = 2;
    const bar = days.length ? Math.min(40, Math.max(2, W / days.length - gap)) : 0;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H + 24}`);
    svg.setAttribute("id", "usage-chart");
    svg.setAttribute("role", "img");
    const total = [...byDay.values()].reduce((s, n) => s + n, 0);
    svg.setAttribute("aria-label", `${total} requests answered over ${days.length} days`);
    days.forEach((day, i) => {
      const h = Math.round((byDay.get(day) / top) * H);
      const rect = document.createElementNS(ns, "rect");
      for (const [k, v] of Object.entries({ x: i * (bar + gap), y: H - h, width: bar,
        height: Math.max(h, 1), class: "usage-bar", "data-day": day })) rect.setAttribute(k, v);
      const tip = document.createElementNS(ns, "title");
      tip.textContent = `${day}: ${byDay.get(day)} answered`;
      rect.append(tip);
      svg.append(rect);
    });
    if (days.length) {
      const span = days.length > 1 ? `${days[0]} … ${days[days.length - 1]}` : days[0];
      svg.append(text(0, H + 20, `${span} · highest ${top.toLocaleString()} a day`));
    }
    return svg;
  }

  function text(x, y, words) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", "text");
    node.setAttribute("x", x);
    node.setAttribute("y", y);
    node.textContent = words;
    return node;
  }

  function totals(body) {
    const table = el("table", { id: "usage-totals" });
    const head = el("tr");
    for (const h of ["model", "answered", "not answered"]) head.append(el("th", {}, h));
    table.append(head);
    const month = $("usage-month").value;
    for (const [model, t] of Object.entries(body.totals)) {
      const row = el("tr");
      const link = el("button", { type: "button", class: "link" }, "statement");
      link.addEventListener("click", () => statement(model, month));
      const name = el("td", {}, model + " ");
      name.append(link);
      row.append(name, el("td", {}, t.answered.toLocaleString()),
        el("td", {}, t.failed.toLocaleString()));
      table.append(row);
    }
    if (!Object.keys(body.totals).length) {
      const row = el("tr");
      row.append(el("td", { colspan: "3", class: "muted" }, "No requests counted yet."));
      table.append(row);
    }
    return table;
  }

  function status(body) {
    return el("p", { class: body.recording ? "muted" : "error", id: "usage-status" },
      body.recording ? `Counted in ${body.file}.`
        : `The ledger is not recording: ${body.problem}`);
  }

  async function statement(model, month) {
    const query = month ? "?month=" + encodeURIComponent(month) : "";
    const response = await fetch(`/v1/usage/${encodeURIComponent(model)}/statement${query}`,
      { headers: bearer("usage-token") });
    const pre = $("usage-statement");
    pre.hidden = false;
    pre.textContent = await response.text();
  }

  document.addEventListener("appliance:result", onResult);
  const form = $("usage-form");
  if (form) form.addEventListener("submit", showUsage);
})();

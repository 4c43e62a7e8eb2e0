// hearing start: prepare a meeting (meeting.yaml), run it, then go on into the review and the delivery.
// Plain JavaScript, nothing from a network. Every word the page shows comes from the server (the
// organiser's Danish, pipeline/texts/start.py) and is set as text, never as HTML.
"use strict";

// The session's token, which the server asks of every request: in a header of each call, and in the
// address of each still and recording (an image or video element sends no header of its own).
const TOKEN = document.querySelector('meta[name="start-token"]').content;
const Q = "?token=" + encodeURIComponent(TOKEN);
const POLL_MS = 1000;

const page = { state: null, T: {}, errors: {}, polling: false };

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "X-Review-Token": TOKEN, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  return { status: response.status, data };
}

// ------------------------------------------------------------------------------------------ building

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function fieldId(key) {
  return "f-" + key.replace(/[^A-Za-z0-9]+/g, "-");
}

// A labelled text field; its error (in Danish, from the server) stands under it and is read with it.
function field(key, label, value, options = {}) {
  const id = fieldId(key);
  const input = el(options.multiline ? "textarea" : "input", {
    id, "data-field": key, type: options.multiline ? null : options.type || "text",
    inputmode: options.inputmode, autocomplete: options.autocomplete || "off",
    "aria-describedby": options.hint ? id + "-hint" : null,
  });
  input.value = value || "";
  input.addEventListener("input", changed);
  return el("div", { class: "field" + (options.wide ? " wide" : "") },
    el("label", { for: id, text: label }), input,
    options.hint ? el("p", { class: "hint", id: id + "-hint", text: options.hint }) : null,
    el("p", { class: "error", id: id + "-error", hidden: true }));
}

function changed() {
  const state = document.getElementById("save-state");
  if (state) state.textContent = page.T.unsaved;
}

// -------------------------------------------------------------------------------------------- render

function render() {
  const S = page.state;
  const T = (page.T = S.texts);
  document.getElementById("page-title").textContent = `${T.title}: ${S.folder}`;
  document.title = `${T.title}: ${S.folder}`;
  document.getElementById("intro").textContent = T.intro;
  const nav = document.getElementById("steps-nav");
  nav.replaceChildren(el("ol", {}, ...[
    ["meeting", T.step_meeting], ["statements", T.step_statements], ["follow-up", T.step_follow_up],
    ["run", T.step_run], ["review", T.step_review], ["delivery", T.step_delivery],
  ].map(([id, text]) => el("li", {}, el("a", { href: "#" + id, text })))));

  const main = document.getElementById("main");
  const V = S.values;
  const form = el("form", { id: "meeting-form", novalidate: true, on: { submit: (e) => { e.preventDefault(); save(); } } });
  if (S.refused) form.append(el("p", { class: "problem", role: "alert", text: S.refused }));
  if (S.model_problem) form.append(el("p", { class: "problem", id: "model-problem", text: S.model_problem }));

  const facts = el("section", { id: "meeting", "aria-labelledby": "meeting-h" }, el("h2", { id: "meeting-h", text: T.meeting }));
  const grid = el("div", { class: "grid" });
  for (const [name, label, date] of [
    ["title", T.title_field], ["date", T.date, true], ["place", T.place], ["organiser", T.organiser],
    ["committee", T.committee], ["committee_meeting", T.committee_meeting, true],
  ]) {
    grid.append(field("meeting." + name, label, V.meeting[name], date ? { hint: T.date_hint, inputmode: "numeric" } : { wide: name === "title" }));
  }
  facts.append(grid);
  form.append(facts);

  const statements = el("section", { id: "statements", "aria-labelledby": "statements-h" },
    el("h2", { id: "statements-h", text: T.statements }), el("p", { text: T.statements_intro }));
  const list = el("ol", { id: "rows", class: "rows" });
  const byId = new Map(S.recordings.map((r) => [r.id, r]));
  for (const values of V.statements) list.append(row(byId.get(values.id), values));
  if (!V.statements.length) statements.append(el("p", { class: "problem", text: T.recordings_none }));
  statements.append(list);
  for (const file of S.missing) statements.append(el("p", { class: "problem" }, el("strong", { text: file + ": " }), T.missing_file));
  for (const other of S.unnamed) statements.append(el("p", { class: "problem" }, el("strong", { text: other.file + ": " }), other.reason));
  form.append(statements);

  form.append(followUp(V.follow_up));
  form.append(el("div", { class: "actions" },
    el("button", { type: "submit", id: "save", text: T.save }),
    el("button", { type: "button", id: "start", text: T.start, on: { click: startRun } }),
    el("p", { id: "save-state", role: "status" })));
  main.replaceChildren(form, runSection(), reviewSection(), deliverySection());
  numberRows();
  showErrors(page.errors);
  showJob(S.job, S.review_url, S.delivery);
  document.body.dataset.ready = "true";
}

function row(recording, values) {
  const T = page.T;
  const id = values.id;
  const head = el("h3", { id: `${id}-h` }, el("span", { class: "number" }), " ", el("span", { class: "file", text: recording.file }));
  const media = el("div", { class: "media" });
  // A video shows its still until it is played; the preview is made only when it is.
  if (recording.video) {
    media.append(el("video", { controls: true, preload: "none", poster: `/still/${id}${Q}`, src: `/media/${id}${Q}`,
      width: 320, height: 180, "aria-label": `${T.still_of} ${recording.file}` }));
  } else {
    media.append(el("p", { class: "sound", text: T.sound_only }));
    if (recording.playable) media.append(el("audio", { controls: true, preload: "none", src: `/media/${id}${Q}`, "aria-label": recording.file }));
  }
  const facts = el("p", { class: recording.usable ? "note" : "note problem" },
    recording.length ? `${T.length}: ${recording.length}. ` : "", recording.note);
  const key = (name) => `statements.${id}.${name}`;
  const consents = el("fieldset", { class: "consents" }, el("legend", { text: T.consents }));
  for (const name of ["committee", "archive", "name_on_screen", "publish"]) {
    const box = el("input", { type: "checkbox", id: fieldId(key("consent." + name)), "data-field": key("consent." + name), "data-consent": name });
    box.checked = !!values.consent[name];
    box.addEventListener("change", changed);
    consents.append(el("div", { class: "check" }, box, el("label", { for: box.id, text: T["consent_" + name] })));
  }
  consents.append(el("p", { class: "hint", text: T.no_committee }));
  const fields = el("div", { class: "grid" },
    field(key("speaker"), T.speaker, values.speaker, { autocomplete: "off" }),
    field(key("group"), T.group, values.group),
    field(key("topic"), T.topic, values.topic, { wide: true }),
    field(key("trim_start"), T.trim_in, values.trim_start, { inputmode: "decimal", hint: T.trim_hint }),
    field(key("trim_end"), T.trim_out, values.trim_end, { inputmode: "decimal" }));
  const moves = el("div", { class: "moves" },
    el("button", { type: "button", class: "up", "aria-label": `${T.move_up}: ${recording.file}`, text: "↑ " + T.move_up, on: { click: () => move(id, -1) } }),
    el("button", { type: "button", class: "down", "aria-label": `${T.move_down}: ${recording.file}`, text: "↓ " + T.move_down, on: { click: () => move(id, 1) } }));
  return el("li", { class: "recording", "data-id": id, "aria-labelledby": `${id}-h` }, head,
    el("div", { class: "body" }, media, el("div", { class: "inputs" }, facts, fields, consents, moves)));
}

function move(id, by) {
  const list = document.getElementById("rows");
  const item = list.querySelector(`li[data-id="${id}"]`);
  const rows = [...list.children];
  const at = rows.indexOf(item);
  const to = at + by;
  if (to < 0 || to >= rows.length) return;
  if (by < 0) list.insertBefore(item, rows[to]);
  else list.insertBefore(item, rows[to].nextSibling);
  numberRows();
  changed();
  item.querySelector(by < 0 ? "button.up" : "button.down").focus();
}

function numberRows() {
  const rows = [...document.querySelectorAll("#rows > li")];
  rows.forEach((item, n) => {
    item.querySelector(".number").textContent = `${n + 1}.`;
    item.querySelector("button.up").disabled = n === 0;
    item.querySelector("button.down").disabled = n === rows.length - 1;
  });
}

function followUp(F) {
  const T = page.T;
  const section = el("section", { id: "follow-up", "aria-labelledby": "follow-up-h" }, el("h2", { id: "follow-up-h", text: T.follow_up }));
  const contact = el("fieldset", {}, el("legend", { text: T.contact }));
  const grid = el("div", { class: "grid" });
  for (const [name, type, auto] of [["name", "text", "off"], ["role", "text", "off"], ["email", "email", "off"], ["phone", "tel", "off"]]) {
    grid.append(field("follow_up.contact." + name, T["contact_" + name], F.contact[name], { type, autocomplete: auto }));
  }
  contact.append(grid);
  section.append(contact);
  section.append(repeated("groups", T.groups, F.groups,
    [["name", T.group_name], ["coordinator", T.coordinator], ["meets", T.meets], ["costs", T.costs], ["costs_covered_by", T.costs_covered_by]],
    T.add_group, T.remove_group));
  section.append(repeated("agreements", T.agreements, F.agreements,
    [["who", T.who], ["what", T.what], ["by", T.by]], T.add_agreement, T.remove_agreement));
  const next = el("div", { class: "grid" },
    field("follow_up.next_meeting", T.next_meeting, F.next_meeting, { hint: T.date_hint, inputmode: "numeric" }),
    field("follow_up.next_meeting_place", T.next_meeting_place, F.next_meeting_place));
  section.append(next);
  return section;
}

// A list of like rows (groups, agreements): each a fieldset; rows are added and removed on the page.
function repeated(kind, title, items, names, addText, removeText) {
  const box = el("fieldset", { id: kind }, el("legend", { text: title }));
  const list = el("div", { class: "repeated" });
  const add = (values, n) => {
    const grid = el("div", { class: "grid" });
    for (const [name, label] of names) {
      const options = name === "by" ? { hint: page.T.date_hint, inputmode: "numeric" } : { wide: name === "what" || name === "meets" };
      grid.append(field(`follow_up.${kind}.${n}.${name}`, label, values[name], options));
    }
    const item = el("div", { class: "item", "data-kind": kind }, grid,
      el("button", { type: "button", class: "remove", text: removeText, "aria-label": `${removeText} ${n + 1}`,
        on: { click: () => { const kept = collectRepeated(kind, names).filter((_, i) => i !== n); box.replaceWith(repeated(kind, title, kept, names, addText, removeText)); changed(); } } }));
    list.append(item);
  };
  items.forEach((values, n) => add(values, n));
  box.append(list, el("button", { type: "button", class: "add", id: `add-${kind}`, text: addText,
    on: { click: () => { add({}, list.children.length); changed(); list.lastChild.querySelector("input").focus(); } } }));
  return box;
}

function collectRepeated(kind, names) {
  return [...document.querySelectorAll(`.item[data-kind="${kind}"]`)].map((item) => {
    const values = {};
    const inputs = item.querySelectorAll("[data-field]");
    names.forEach(([name], i) => { values[name] = inputs[i].value; });
    return values;
  });
}

function value(key) {
  const input = document.querySelector(`[data-field="${CSS.escape(key)}"]`);
  return input ? input.value : "";
}

function collect() {
  const meeting = {};
  for (const name of ["title", "date", "place", "organiser", "committee", "committee_meeting"]) meeting[name] = value("meeting." + name);
  const statements = [...document.querySelectorAll("#rows > li")].map((item) => {
    const id = item.dataset.id;
    const key = (name) => `statements.${id}.${name}`;
    const consent = {};
    for (const box of item.querySelectorAll("input[data-consent]")) consent[box.dataset.consent] = box.checked;
    return { id, speaker: value(key("speaker")), group: value(key("group")), topic: value(key("topic")),
      trim_start: value(key("trim_start")), trim_end: value(key("trim_end")), consent };
  });
  const contact = {};
  for (const name of ["name", "role", "email", "phone"]) contact[name] = value("follow_up.contact." + name);
  return {
    meeting, statements,
    follow_up: {
      contact,
      groups: collectRepeated("groups", [["name"], ["coordinator"], ["meets"], ["costs"], ["costs_covered_by"]]),
      agreements: collectRepeated("agreements", [["who"], ["what"], ["by"]]),
      next_meeting: value("follow_up.next_meeting"), next_meeting_place: value("follow_up.next_meeting_place"),
    },
  };
}

function showErrors(errors) {
  for (const shown of document.querySelectorAll(".error:not([hidden])")) {
    shown.hidden = true;
    shown.textContent = "";
  }
  for (const input of document.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const hint = input.getAttribute("aria-describedby") || "";
    input.setAttribute("aria-describedby", hint.split(" ").filter((id) => !id.endsWith("-error")).join(" "));
  }
  let first = null;
  for (const [key, message] of Object.entries(errors || {})) {
    const input = document.querySelector(`[data-field="${CSS.escape(key)}"]`);
    const error = input && document.getElementById(input.id + "-error");
    if (!error) {
      const state = document.getElementById("save-state");
      state.textContent = `${state.textContent} ${message}`;
      continue;
    }
    error.textContent = `${page.T.field_problem} ${message}`;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby") || ""} ${error.id}`.trim());
    first = first || input;
  }
  return first;
}

// ------------------------------------------------------------------------------------- save and run

async function save() {
  const T = page.T;
  const state = document.getElementById("save-state");
  state.textContent = T.saving;
  const { status, data } = await api("POST", "/api/save", { version: page.state.version, values: collect() });
  if (status === 200 && data && data.saved) {
    page.errors = {};
    page.state = data.state;
    render();
    document.getElementById("save-state").textContent = data.message;
    return true;
  }
  if (status === 422 && data) {
    page.errors = data.errors || {};
    state.textContent = data.message;
    const first = showErrors(page.errors);
    if (first) first.focus();
    return false;
  }
  state.textContent = (data && data.error) || T.load_failed;
  return false;
}

async function startRun() {
  if (!(await save())) return;
  const { data } = await api("POST", "/api/run");
  showJob(data, null, page.state.delivery);
  document.getElementById("run").scrollIntoView();
  poll();
}

function runSection() {
  const T = page.T;
  return el("section", { id: "run", "aria-labelledby": "run-h" }, el("h2", { id: "run-h", text: T.step_run.replace(/^\d+\.\s*/, "") }),
    el("ul", { id: "job-steps", class: "job-steps" }),
    el("p", { id: "job-message", role: "status" }),
    el("ul", { id: "job-rejected", class: "problems" }),
    el("details", {}, el("summary", { text: T.details }), el("pre", { id: "job-log", lang: "en" })),
    el("p", { class: "command" }, T.command_line + " ", el("code", { text: page.state.command })));
}

function reviewSection() {
  const T = page.T;
  return el("section", { id: "review", "aria-labelledby": "review-h" }, el("h2", { id: "review-h", text: T.review }),
    el("p", { text: T.review_intro }),
    el("p", {}, el("a", { id: "review-link", class: "button", target: "_blank", rel: "noopener", hidden: true, text: T.open_review })));
}

function deliverySection() {
  const T = page.T;
  return el("section", { id: "delivery", "aria-labelledby": "delivery-h" }, el("h2", { id: "delivery-h", text: T.delivery }),
    el("p", { id: "delivery-none", text: T.no_delivery }),
    el("div", { id: "delivery-made", hidden: true },
      el("p", { text: T.delivery_intro }), el("p", {}, el("code", { id: "delivery-folder" })),
      el("div", { class: "actions" },
        el("button", { type: "button", id: "open-folder", text: T.open_folder, on: { click: openFolder } }),
        el("button", { type: "button", id: "make-zip", text: T.make_zip, on: { click: makeZip } })),
      el("p", { id: "delivery-state", role: "status" })));
}

function showJob(job, reviewUrl, delivery) {
  const T = page.T;
  if (!job) return;
  const steps = document.getElementById("job-steps");
  steps.replaceChildren(...job.steps.map((step) => el("li", { class: step.ended ? "ended" : "" },
    el("span", { text: step.label }), " ",
    el("progress", { max: 1, value: step.fraction, "aria-label": step.label }),
    " ", el("span", { class: "left", text: step.ended ? T.done_step : step.left || "" }))));
  const message = job.state === "running" ? T.running : job.message;
  document.getElementById("job-message").textContent = message || "";
  document.getElementById("job-rejected").replaceChildren(...(job.rejected || []).map((r) => el("li", {}, el("strong", { text: r.file + ": " }), r.reason)));
  document.getElementById("job-log").textContent = (job.lines || []).join("\n");
  document.getElementById("start").disabled = job.state === "running";
  document.body.dataset.job = `${job.kind}:${job.state}:${job.exit_code ?? ""}`;
  const link = document.getElementById("review-link");
  if (reviewUrl) {
    link.href = reviewUrl;
    link.hidden = false;
  }
  if (delivery) {
    document.getElementById("delivery-none").hidden = delivery.made;
    document.getElementById("delivery-made").hidden = !delivery.made;
    document.getElementById("delivery-folder").textContent = delivery.folder || "";
    if (delivery.zip) document.getElementById("delivery-state").textContent = T.zip_made.replace("{name}", delivery.zip);
    document.body.dataset.delivery = delivery.made ? (delivery.zip ? "zip" : "made") : "none";
  }
}

async function poll() {
  if (page.polling) return;
  page.polling = true;
  try {
    for (;;) {
      const { status, data } = await api("GET", "/api/job");
      if (status === 200 && data) showJob(data.job, data.review_url, data.delivery);
      await new Promise((resolve) => setTimeout(resolve, data && data.job.state === "running" ? POLL_MS : 3 * POLL_MS));
    }
  } finally {
    page.polling = false;
  }
}

async function openFolder() {
  const { data } = await api("POST", "/api/open-folder");
  document.getElementById("delivery-state").textContent = data && data.opened ? page.T.folder_opened : page.T.folder_not_opened;
}

async function makeZip() {
  const { data } = await api("POST", "/api/zip");
  showJob(data, null, null);
  document.getElementById("delivery-state").textContent = page.T.running;
}

async function load() {
  // The folder looked at again: a recording copied in since the server started is listed too.
  const { status, data } = await api("POST", "/api/rescan");
  if (status !== 200 || !data) {
    document.getElementById("load-state").textContent = (data && data.error) || "Siden kunne ikke hente mødet; genindlæs siden.";
    return;
  }
  page.state = data;
  render();
  poll();
}

load();

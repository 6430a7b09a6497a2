// The mipomersen-cds playground. Plain script, no libraries, nothing fetched from elsewhere.
// Every text from the input or the answer is set with textContent; the only HTML inserted is
// what the server rendered and escaped (card detail from Markdown, the timeline SVG).
"use strict";

const OVERRIDE_SYSTEM_FIELDS = ["system", "code", "display"];
const LABS = {
  ALT: {loinc: "1742-6", display: "Alanine aminotransferase", units: ["U/L", "ukat/L"]},
  AST: {loinc: "1920-8", display: "Aspartate aminotransferase", units: ["U/L", "ukat/L"]},
  "total bilirubin": {loinc: "1975-2", display: "Bilirubin.total", units: ["mg/dL", "umol/L"]},
  ALP: {loinc: "6768-6", display: "Alkaline phosphatase", units: ["U/L", "ukat/L"]},
};
const ICONS = {info: "i", warning: "!", critical: "!!"};
let last = null;  // the last answer from /playground/api/evaluate

function $(id) { return document.getElementById(id); }

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  return {status: response.status, body};
}

function showSource(value) {
  for (const name of ["example", "paste", "builder"]) $("source-" + name).hidden = name !== value;
}

async function loadExamples() {
  const {body} = await getJson("/playground/api/examples");
  const select = $("example");
  for (const example of body.examples) {
    const option = element("option", `${example.name} (${example.service || example.kind})`);
    option.value = example.name;
    option.dataset.service = example.service || "";
    select.append(option);
  }
  if (!body.examples.length) select.append(element("option", "no examples/ folder found"));
}

function addLabRow(analyte, value, unit, uln, date) {
  const row = document.createElement("tr");
  const index = $("labs").tBodies[0].rows.length + 1;
  const test = document.createElement("select");
  test.setAttribute("aria-label", `Test of result ${index}`);
  for (const name of Object.keys(LABS)) test.append(new Option(name, name, false, name === analyte));
  const units = document.createElement("select");
  units.setAttribute("aria-label", `Unit of result ${index}`);
  const fillUnits = () => {
    units.replaceChildren(...LABS[test.value].units.map((u) => new Option(u, u, false, u === unit)));
  };
  test.addEventListener("change", fillUnits);
  fillUnits();
  const number = document.createElement("input");
  number.type = "number"; number.step = "any"; number.value = value ?? "";
  number.setAttribute("aria-label", `Value of result ${index}`);
  const high = document.createElement("input");
  high.type = "number"; high.step = "any"; high.value = uln ?? "";
  high.setAttribute("aria-label", `ULN of result ${index} (from the lab's reference range)`);
  const when = document.createElement("input");
  when.type = "date"; when.value = date || "2026-11-20";
  when.setAttribute("aria-label", `Date of result ${index}`);
  const remove = element("button", "Remove");
  remove.type = "button";
  remove.setAttribute("aria-label", `Remove result ${index}`);
  remove.addEventListener("click", () => row.remove());
  for (const control of [test, number, units, high, when, remove]) {
    const cell = document.createElement("td");
    cell.append(control);
    row.append(cell);
  }
  $("labs").tBodies[0].append(row);
}

function builtBundle() {
  const patientId = $("patient-id").value.trim() || "playground-patient";
  const entry = [{resource: {resourceType: "Patient", id: patientId}}];
  let index = 0;
  for (const row of $("labs").tBodies[0].rows) {
    const [test, number, units, high, when] = row.querySelectorAll("select, input");
    if (number.value === "") continue;
    index += 1;
    const lab = LABS[test.value];
    const quantity = (v) => ({value: Number(v), unit: units.value, system: "http://unitsofmeasure.org", code: units.value});
    const observation = {
      resourceType: "Observation", id: `lab-${index}`, status: "final",
      category: [{coding: [{system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "laboratory"}]}],
      code: {coding: [{system: "http://loinc.org", code: lab.loinc, display: lab.display}], text: lab.display},
      subject: {reference: `Patient/${patientId}`},
      effectiveDateTime: `${when.value}T08:00:00Z`,
      valueQuantity: quantity(number.value),
    };
    if (high.value !== "") observation.referenceRange = [{high: quantity(high.value)}];
    entry.push({resource: observation});
  }
  return {resourceType: "Bundle", type: "collection", entry};
}

async function currentInput() {
  const source = document.querySelector('input[name="source"]:checked').value;
  if (source === "example") {
    const name = $("example").value;
    const {status, body} = await getJson(`/playground/api/examples/${encodeURIComponent(name)}`);
    if (status !== 200) throw new Error(`example ${name} could not be loaded`);
    return body;
  }
  if (source === "builder") return builtBundle();
  const text = $("input-json").value;
  if (!text.trim()) throw new Error("the input is empty: paste a hook request or a FHIR Bundle");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`the input is not valid JSON: ${error.message}`);
  }
}

async function run() {
  $("input-error").textContent = "";
  let input;
  try {
    input = await currentInput();
  } catch (error) {
    $("input-error").textContent = error.message;
    return;
  }
  const form = {
    input,
    service: $("service").value || null,
    addDraftOrder: $("add-draft").checked,
    now: $("pin-now").checked ? $("now").value.trim() : null,
  };
  $("status").textContent = "Calling the service…";
  const {status, body} = await getJson("/playground/api/evaluate", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(form),
  });
  if (status !== 200) {
    $("status").textContent = "";
    $("input-error").textContent = (body.issue || []).map((i) => i.diagnostics).join("; ") || `HTTP ${status}`;
    return;
  }
  last = body;
  render(body);
}

function render(answer) {
  $("feedback-answer").replaceChildren();
  $("request-json").textContent = JSON.stringify(answer.request, null, 2);
  $("response-json").textContent = JSON.stringify(answer.response, null, 2);
  const cards = $("cards");
  cards.replaceChildren();
  document.body.dataset.decision = answer.decision ? (answer.decision.kind || "not-involved") : "error";
  if (answer.status !== 200) {
    $("status").textContent = `The service answered ${answer.status} (${answer.service}).`;
    const issues = element("ul", null, "issues");
    for (const issue of answer.response.issue || []) {
      const where = issue.expression ? ` (at ${issue.expression.join(", ")})` : "";
      issues.append(element("li", issue.diagnostics + where));
    }
    cards.append(issues);
    renderWhy(null);
    renderTimeline(null);
    return;
  }
  const count = answer.response.cards.length;
  $("status").textContent = `${answer.service} answered 200 with ${count} card${count === 1 ? "" : "s"}` +
    ` at ${answer.now}; audit record ${answer.auditRecordId ?? "not written"}.`;
  if (!count) cards.append(element("p", "No card: " + answer.decision.explanation + ".", "no-card"));
  answer.response.cards.forEach((card, index) => cards.append(renderCard(card, answer.cards[index])));
  renderWhy(answer);
  renderTimeline(answer.timeline);
}

function renderCard(card, rendered) {
  const box = element("article", null, `card ${card.indicator}`);
  box.dataset.indicator = card.indicator;
  const heading = element("h3", null, "summary");
  const icon = element("span", ICONS[card.indicator] || "•", "icon");
  icon.setAttribute("aria-hidden", "true");
  heading.append(icon, element("span", card.indicator, "visually-hidden"), element("span", card.summary));
  box.append(heading);
  const detail = element("div", null, "detail");
  detail.innerHTML = rendered.detailHtml;  // rendered server-side with raw HTML escaped
  box.append(detail);
  const source = element("p", "Source: ", "source");
  if (card.source.url) {
    const link = element("a", card.source.label);
    link.href = card.source.url; link.target = "_blank"; link.rel = "noopener noreferrer";
    source.append(link);
  } else {
    source.append(element("span", card.source.label));
  }
  box.append(source);
  const suggestions = element("div", null, "suggestions");
  for (const suggestion of card.suggestions || []) {
    const wrap = element("div", null, "suggestion");
    const button = element("button", suggestion.label, suggestion.isRecommended ? "recommended" : "");
    button.type = "button";
    button.addEventListener("click", () => sendFeedback(card, {outcome: "accepted", acceptedSuggestions: [{id: suggestion.uuid}]}));
    const actions = element("details");
    actions.append(element("summary", "FHIR action" + ((suggestion.actions || []).length === 1 ? "" : "s")));
    for (const action of suggestion.actions || []) {
      actions.append(element("p", `${action.type}: ${action.description}` + (action.resourceId ? ` (${action.resourceId})` : "")));
      if (action.resource) actions.append(element("pre", JSON.stringify(action.resource, null, 2)));
    }
    wrap.append(button, actions);
    suggestions.append(wrap);
  }
  box.append(suggestions);
  if ((card.overrideReasons || []).length) {
    const form = element("div", null, "override");
    const id = `override-${card.uuid}`;
    const label = element("label", "Override reason");
    label.htmlFor = id;
    const select = document.createElement("select");
    select.id = id;
    card.overrideReasons.forEach((reason, index) => select.append(new Option(reason.display, String(index))));
    const commentLabel = element("label", "Comment (optional)");
    commentLabel.htmlFor = id + "-comment";
    const comment = document.createElement("input");
    comment.id = id + "-comment";
    const button = element("button", "Override");
    button.type = "button";
    button.addEventListener("click", () => {
      const chosen = card.overrideReasons[Number(select.value)];
      const reason = {};
      for (const field of OVERRIDE_SYSTEM_FIELDS) if (chosen[field]) reason[field] = chosen[field];
      const overrideReason = {reason};
      if (comment.value.trim()) overrideReason.userComment = comment.value.trim();
      sendFeedback(card, {outcome: "overridden", overrideReason});
    });
    form.append(label, select, commentLabel, comment, button);
    box.append(form);
  }
  return box;
}

async function sendFeedback(card, item) {
  const feedback = {card: card.uuid, ...item, outcomeTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z")};
  const {status, body} = await getJson(`/cds-services/${last.service}/feedback`, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({feedback: [feedback]}),
  });
  const box = $("feedback-answer");
  box.replaceChildren(
    element("p", `Feedback (${item.outcome}) sent to /cds-services/${last.service}/feedback: HTTP ${status}`, "feedback-status"),
    element("pre", JSON.stringify(body, null, 2)),
  );
  box.dataset.status = String(status);
}

function renderWhy(answer) {
  const why = $("why");
  why.replaceChildren();
  const table = $("why-values");
  table.tBodies[0].replaceChildren();
  table.hidden = true;
  if (!answer) return;
  const decision = answer.decision;
  const add = (term, value) => { if (value !== undefined && value !== null) why.append(element("dt", term), element("dd", value)); };
  add("Decision", decision.kind || "none (mipomersen not involved)");
  add("Reason", decision.reason);
  add("Rule", decision.rule);
  add("Source", decision.source);
  add("Profile", decision.profile);
  add("Explanation", decision.explanation);
  add("Evaluated at", answer.now);
  add("Audit record id", answer.auditRecordId);
  for (const value of decision.values || []) {
    const row = document.createElement("tr");
    const result = value.reported && value.reported !== value.result ? `${value.result} (sent as ${value.reported})` : value.result;
    for (const cell of [value.role, value.analyte, result, value.multiple === null ? "" : `${value.multiple}×`, value.uln === null ? "" : `${value.uln} ${value.unit}`, value.date]) {
      row.append(element("td", cell));
    }
    table.tBodies[0].append(row);
    table.hidden = false;
  }
}

function renderTimeline(timeline) {
  const holder = $("timeline-svg");
  const rows = $("timeline-table").tBodies[0];
  rows.replaceChildren();
  const link = $("timeline-download");
  if (link.href) URL.revokeObjectURL(link.href);
  if (!timeline) { holder.replaceChildren(); link.hidden = true; return; }
  holder.innerHTML = timeline.svg;  // built server-side; every text in it is escaped
  for (const point of timeline.points) {
    const row = document.createElement("tr");
    if (point.deciding) row.className = "deciding";
    for (const cell of [point.date, point.analyte + (point.deciding ? " (deciding)" : ""), `${point.value} ${point.unit}`, `${point.uln} ${point.unit}`, `${point.multiple}×`, point.resource]) {
      row.append(element("td", cell));
    }
    rows.append(row);
  }
  link.href = URL.createObjectURL(new Blob([timeline.svg], {type: "image/svg+xml"}));
  link.hidden = false;
}

function readFile(file) {
  file.text().then((text) => {
    $("input-json").value = text;
    document.querySelector('input[name="source"][value="paste"]').checked = true;
    showSource("paste");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const radio of document.querySelectorAll('input[name="source"]')) {
    radio.addEventListener("change", () => showSource(radio.value));
  }
  $("run").addEventListener("click", run);
  $("add-lab").addEventListener("click", () => addLabRow("ALT"));
  $("build-bundle").addEventListener("click", () => {
    $("input-json").value = JSON.stringify(builtBundle(), null, 2);
    document.querySelector('input[name="source"][value="paste"]').checked = true;
    showSource("paste");
    $("input-json").focus();
  });
  $("pin-now").addEventListener("change", () => { $("now").disabled = !$("pin-now").checked; });
  $("input-file").addEventListener("change", (event) => { if (event.target.files[0]) readFile(event.target.files[0]); });
  const area = $("input-json");
  area.addEventListener("dragover", (event) => { event.preventDefault(); area.classList.add("dropping"); });
  area.addEventListener("dragleave", () => area.classList.remove("dropping"));
  area.addEventListener("drop", (event) => {
    event.preventDefault();
    area.classList.remove("dropping");
    if (event.dataTransfer.files[0]) readFile(event.dataTransfer.files[0]);
  });
  addLabRow("ALT", 45, "U/L", 40, "2026-08-20");
  addLabRow("ALT", 130, "U/L", 40, "2026-11-13");
  addLabRow("ALT", 210, "U/L", 40, "2026-11-20");
  addLabRow("total bilirubin", 0.8, "mg/dL", 1.2, "2026-11-20");
  loadExamples();
});

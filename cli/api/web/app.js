// The bertsearch search page: calls the same JSON API as any client (POST /ask, POST /search,
// GET /documents/{id}). Text from documents is only ever inserted as text nodes, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "bertsearch-api-key";
const CONTEXT_CHARS = 160;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function call(method, url, body) {
  const response = await fetch(url, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401 || response.status === 403) {
    const error = new Error((data && data.detail) || "This server needs an API key");
    error.auth = true;
    throw error;
  }
  if (!response.ok) {
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : "the server answered " + response.status);
  }
  return data;
}

function showError(error) {
  if (error.auth) {
    $("key-row").hidden = false;
    setStatus(error.message + ". Enter it and ask again.");
    $("api-key").focus();
  } else {
    setStatus("Error: " + error.message);
  }
}

function setStatus(text) { $("status").textContent = text; }

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// `text` with [start, end) wrapped in <mark>, as text nodes.
function highlighted(tag, className, text, start, end) {
  const node = el(tag, className);
  start = Math.max(0, Math.min(start, text.length));
  end = Math.max(start, Math.min(end, text.length));
  node.append(document.createTextNode(text.slice(0, start)));
  node.append(el("mark", "", text.slice(start, end)));
  node.append(document.createTextNode(text.slice(end)));
  return node;
}

function documentLink(id, start, end, label) {
  const a = el("a", "", label);
  a.href = "#/documents/" + encodeURIComponent(id) + "?start=" + start + "&end=" + end;
  return a;
}

function source(item) {
  const p = el("p", "source");
  const name = item.title && item.title !== item.path ? item.title + " (" + item.path + ")" : item.path;
  p.append(document.createTextNode("Source: "));
  p.append(documentLink(item.document_id, item.start, item.end, name));
  p.append(document.createTextNode(", characters " + item.start + "\u2013" + item.end));
  return p;
}

function renderAnswers(result) {
  const list = $("answer-list");
  list.replaceChildren();
  const good = result.answers.filter((a) => !a.below_threshold);
  $("answers").hidden = false;
  $("no-answer").hidden = good.length > 0;
  if (!good.length) {
    $("no-answer").textContent = "No answer found in the documents" +
      (result.reason ? " (" + result.reason + ")" : "") + ". The best passages are below.";
  }
  for (const a of good) {
    const li = el("li", "answer");
    li.append(el("p", "answer-text", a.text));
    // The answer in about three lines of its passage: the sentence around it, not the whole chunk.
    const at = a.start - a.context_start;
    const from = Math.max(0, a.context.lastIndexOf("\n\n", Math.max(0, at - 1)) + 1, at - CONTEXT_CHARS);
    const upto = Math.min(a.context.length, at + (a.end - a.start) + CONTEXT_CHARS);
    const shown = (from > 0 ? "\u2026" : "") + a.context.slice(from, upto).trim() + (upto < a.context.length ? "\u2026" : "");
    const lead = (from > 0 ? 1 : 0) + (at - from) - (a.context.slice(from, upto).length - a.context.slice(from, upto).trimStart().length);
    li.append(highlighted("p", "context", shown, lead, lead + (a.end - a.start)));
    li.append(el("p", "confidence", "Confidence " + Math.round(a.confidence * 100) + "%" +
      (a.source === "definition" ? " \u00b7 from a definition list" : "")));
    li.append(source(a));
    list.append(li);
  }
}

function renderPassages(result) {
  const list = $("passage-list");
  list.replaceChildren();
  $("passages").hidden = false;
  if (!result.hits.length) {
    list.append(el("li", "", "No passage matches."));
  }
  for (const h of result.hits) {
    const li = el("li", "passage");
    li.append(el("p", "context", h.text));
    li.append(source(h));
    list.append(li);
  }
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const key = $("api-key").value.trim();
  if (key) sessionStorage.setItem(KEY, key);
  const mode = $("mode").value;
  let where;
  const filter = $("where").value.trim();
  if (filter) {
    try {
      where = JSON.parse(filter);
    } catch (error) {
      setStatus("Error: the filter is not JSON (" + error.message + ")");
      return;
    }
  }
  setStatus("Searching\u2026");
  $("answers").hidden = true;
  $("passages").hidden = true;
  // Both requests finish before anything is shown: one answer for the page, not two races.
  const [answers, passages] = await Promise.allSettled([
    call("POST", "/ask", { question, mode, top_k: 3, where }),
    call("POST", "/search", { query: question, mode, top_k: 5, where }),
  ]);
  const failed = [answers, passages].find((r) => r.status === "rejected");
  if (failed) {
    showError(failed.reason);
    return;
  }
  renderAnswers(answers.value);
  renderPassages(passages.value);
  setStatus("Answered in " + Math.round(answers.value.took_ms) + " ms.");
}

async function showDocument(id, start, end) {
  $("search-view").hidden = true;
  $("document-view").hidden = false;
  setStatus("");
  try {
    const doc = await call("GET", "/documents/" + encodeURIComponent(id));
    $("document-title").textContent = doc.title || doc.path;
    $("document-meta").textContent = doc.path + " \u00b7 " + doc.text.length + " characters";
    const pre = $("document-text");
    const text = highlighted("span", "", doc.text, start, end);
    pre.replaceChildren(...text.childNodes);
    const mark = pre.querySelector("mark");
    if (mark && end > start) mark.scrollIntoView({ block: "center" });
    pre.focus({ preventScroll: true });
  } catch (e) {
    $("document-title").textContent = e.auth ? "This server needs an API key" : "Error: " + e.message;
    showError(e);
  }
}

function route() {
  const match = location.hash.match(/^#\/documents\/(\d+)(?:\?start=(\d+)&end=(\d+))?$/);
  if (match) {
    showDocument(match[1], Number(match[2] || 0), Number(match[3] || 0));
  } else {
    $("document-view").hidden = true;
    $("search-view").hidden = false;
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  $("ask-form").addEventListener("submit", ask);
  if (sessionStorage.getItem(KEY)) {
    $("key-row").hidden = false;
    $("api-key").value = sessionStorage.getItem(KEY);
  }
  route();
  if (!location.hash) $("question").focus();
});

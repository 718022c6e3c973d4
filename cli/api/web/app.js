// The bertsearch search page: calls the same JSON API as any client (POST /ask, POST /search,
// GET /documents/{id}). Text from documents is only ever inserted as text nodes, never as HTML.
// Its words come from the server with the page (strings.json, in the page's language).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "bertsearch-api-key";
const CONTEXT_CHARS = 160;
let STRINGS = {};

// The page's text for `key`, with each {name} replaced by values[name].
function t(key, values) {
  return (STRINGS[key] || key).replace(/\{(\w+)\}/g, (whole, name) => (values && name in values ? String(values[name]) : whole));
}

// The API counts characters as Python does, by code point; a JS string indexes UTF-16 units, and an
// astral character (an emoji, CJK Extension B) is two of them. The unit index of code point `points`:
function units(text, points) {
  let i = 0;
  for (let n = 0; n < points && i < text.length; n++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c < 0xdc00 && i + 1 < text.length ? 2 : 1;
  }
  return i;
}

// `i` moved past the second half of a surrogate pair, so that a slice there never cuts a character.
function whole(text, i) {
  const c = text.charCodeAt(i);
  return c >= 0xdc00 && c < 0xe000 ? i + 1 : i;
}

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
    const error = new Error((data && data.detail) || t("needs_key"));
    error.auth = true;
    throw error;
  }
  if (!response.ok) {
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : t("server_answered", { status: response.status }));
  }
  return data;
}

function showError(error) {
  if (error.auth) {
    $("key-row").hidden = false;
    setStatus(t("enter_key", { detail: error.message }), "error");
    $("api-key").focus();
  } else {
    setStatus(t("error", { detail: error.message }), "error");
  }
}

// `state` (busy, done, error) lets a script wait for the page in any language.
function setStatus(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state || "";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// `text` with [start, end) (UTF-16 units) wrapped in <mark>, as text nodes.
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
  p.append(document.createTextNode(t("source")));
  p.append(documentLink(item.document_id, item.start, item.end, name));
  p.append(document.createTextNode(t("characters", { start: item.start, end: item.end })));
  return p;
}

function renderAnswers(result) {
  const list = $("answer-list");
  list.replaceChildren();
  const good = result.answers.filter((a) => !a.below_threshold);
  $("answers").hidden = false;
  $("no-answer").hidden = good.length > 0;
  if (!good.length) {
    const best = result.answers[0];
    const reason = best ? t("reason_low", { confidence: Math.round(best.confidence * 100) }) : t("reason_none");
    $("no-answer").textContent = t("no_answer", { reason });
  }
  for (const a of good) {
    const li = el("li", "answer");
    li.append(el("p", "answer-text", a.text));
    // The answer in about three lines of its passage: the sentence around it, not the whole chunk.
    const context = a.context;
    const at = units(context, a.start - a.context_start);
    const stop = units(context, a.end - a.context_start);
    const from = whole(context, Math.max(0, context.lastIndexOf("\n\n", Math.max(0, at - 1)) + 1, at - CONTEXT_CHARS));
    const upto = whole(context, Math.min(context.length, stop + CONTEXT_CHARS));
    const part = context.slice(from, upto);
    const shown = (from > 0 ? "\u2026" : "") + part.trim() + (upto < context.length ? "\u2026" : "");
    const lead = (from > 0 ? 1 : 0) + (at - from) - (part.length - part.trimStart().length);
    li.append(highlighted("p", "context", shown, lead, lead + (stop - at)));
    li.append(el("p", "confidence", t("confidence", { confidence: Math.round(a.confidence * 100) }) +
      (a.source === "definition" ? t("from_definition") : "")));
    li.append(source(a));
    list.append(li);
  }
}

function renderPassages(result) {
  const list = $("passage-list");
  list.replaceChildren();
  $("passages").hidden = false;
  if (!result.hits.length) {
    list.append(el("li", "", t("no_passage")));
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
      setStatus(t("error", { detail: t("not_json", { detail: error.message }) }), "error");
      return;
    }
  }
  setStatus(t("searching"), "busy");
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
  setStatus(t("answered", { ms: Math.round(answers.value.took_ms) }), "done");
}

async function showDocument(id, start, end) {
  $("search-view").hidden = true;
  $("document-view").hidden = false;
  setStatus("");
  try {
    const doc = await call("GET", "/documents/" + encodeURIComponent(id));
    $("document-title").textContent = doc.title || doc.path;
    $("document-meta").textContent = t("document_meta", { path: doc.path, count: Array.from(doc.text).length });
    const pre = $("document-text");
    const text = highlighted("span", "", doc.text, units(doc.text, start), units(doc.text, end));
    pre.replaceChildren(...text.childNodes);
    const mark = pre.querySelector("mark");
    if (mark && end > start) mark.scrollIntoView({ block: "center" });
    pre.focus({ preventScroll: true });
  } catch (e) {
    $("document-title").textContent = e.auth ? t("needs_key") : t("error", { detail: e.message });
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
  STRINGS = JSON.parse($("strings").textContent);
  $("ask-form").addEventListener("submit", ask);
  if (sessionStorage.getItem(KEY)) {
    $("key-row").hidden = false;
    $("api-key").value = sessionStorage.getItem(KEY);
  }
  route();
  if (!location.hash) $("question").focus();
});

// The search page: pick a collection, upload files, search by text or by image, open a page.
// Every API call sends the key from the key field (kept in sessionStorage) as `Authorization: Bearer`.
// Page images are fetched the same way and shown from object URLs, since <img src> cannot send a header.
"use strict";

const KEY_ITEM = "retrieval.apiKey";
const COLLECTION_ITEM = "retrieval.collection";
const JOB_POLL_MS = 500;
const $ = (id) => document.getElementById(id);
let imageQuery = null; // data: URL of the dropped image, or null for a text query
const objectUrls = []; // object URLs of the shown results, revoked when results are replaced

function authHeaders() {
  const key = sessionStorage.getItem(KEY_ITEM);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${response.status}: ${body.error.message}`;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

async function api(path, options = {}) {
  const headers = { ...authHeaders(), ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

async function imageUrl(path) {
  const response = await fetch(path, { headers: authHeaders() });
  if (!response.ok) throw new Error(await errorMessage(response));
  const url = URL.createObjectURL(await response.blob());
  objectUrls.push(url);
  return url;
}

function collectionPath(suffix) {
  return `/v1/collections/${encodeURIComponent($("collection").value)}${suffix}`;
}

// ---- collections ---------------------------------------------------------------------------------------

async function loadCollections() {
  const select = $("collection");
  try {
    const list = await api("/v1/collections");
    const wanted = sessionStorage.getItem(COLLECTION_ITEM);
    select.replaceChildren(...list.data.map((c) => new Option(c.name, c.name, false, c.name === wanted)));
    showCollection(list.data);
  } catch (err) {
    select.replaceChildren();
    $("collection-info").textContent = `Could not list collections (${err.message}).`;
  }
}

function showCollection(collections) {
  const c = collections.find((x) => x.name === $("collection").value);
  if (!c) {
    $("collection-info").textContent = "No collection yet.";
    return;
  }
  sessionStorage.setItem(COLLECTION_ITEM, c.name);
  const models = [c.dense_model, c.multivector_model, c.sparse_model].filter(Boolean).join(", ");
  $("collection-info").textContent =
    `${c.documents} documents, ${c.chunks} chunks · modes: ${c.modes.join(", ")}` + (models ? ` · ${models}` : "");
}

// ---- upload --------------------------------------------------------------------------------------------

function uploadStatus(text, fraction) {
  $("upload-status").textContent = text;
  const bar = $("upload-progress");
  bar.hidden = fraction === null;
  if (fraction !== null) bar.value = fraction;
}

function send(form) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", collectionPath("/files"));
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      Object.assign($("upload-progress").dataset, { sent: e.loaded, total: e.total }); // the last progress event
      uploadStatus(`Uploading… ${Math.round((100 * e.loaded) / e.total)}%`, e.loaded / e.total);
    };
    xhr.upload.onload = () => uploadStatus("Uploaded; indexing…", 1);
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body });
      else reject(new Error(`${xhr.status}: ${body && body.error ? body.error.message : xhr.statusText}`));
    };
    xhr.onerror = () => reject(new Error("the upload failed (network error)"));
    xhr.send(form);
  });
}

async function pollJob(id) {
  for (;;) {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    if (job.state === "done") return job.result;
    if (job.state === "failed") throw new Error(job.error || "the job failed");
    const fraction = job.total ? job.done / job.total : 0;
    uploadStatus(`Indexing… ${job.done}/${job.total || "?"} documents`, fraction);
    await new Promise((r) => setTimeout(r, JOB_POLL_MS));
  }
}

function uploadSummary(result) {
  const files = result.files.map((f) => (f.error ? `${f.name}: ${f.error}` : `${f.name}: ${f.documents} documents`));
  return `Indexed ${result.ids.length} documents (${result.skipped.length} unchanged). ${files.join("; ")}`;
}

async function upload(event) {
  event.preventDefault();
  const chosen = $("files").files;
  if (!chosen.length) return uploadStatus("Choose one or more files first.", null);
  const form = new FormData();
  for (const file of chosen) form.append("files", file, file.name);
  uploadStatus("Uploading… 0%", 0);
  try {
    const { status, body } = await send(form);
    const result = status === 202 ? await pollJob(body.job) : body;
    uploadStatus(uploadSummary(result), null);
    loadCollections();
  } catch (err) {
    uploadStatus(`Upload failed: ${err.message}`, null);
  }
}

// ---- image query ---------------------------------------------------------------------------------------

function setImageQuery(file) {
  if (!file || !file.type.startsWith("image/")) {
    $("search-status").textContent = "Drop an image file (PNG, JPEG, WebP, GIF).";
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    imageQuery = reader.result;
    $("image-preview").src = imageQuery;
    $("image-query").hidden = false;
    $("query").value = "";
    $("query").placeholder = "Searching by the image below";
  };
  reader.readAsDataURL(file);
}

function clearImageQuery() {
  imageQuery = null;
  $("image-query").hidden = true;
  $("image-preview").removeAttribute("src");
  $("query").placeholder = "Type a query, or drop an image here";
}

function wireDrop(zone) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    setImageQuery(e.dataTransfer.files[0]);
  });
}

// ---- search and results --------------------------------------------------------------------------------

function searchBody() {
  const top_k = Number($("top-k").value);
  if (imageQuery) return { query: { content: [{ type: "image_url", image_url: { url: imageQuery } }] }, top_k };
  return { query: $("query").value.trim(), top_k };
}

async function search(event) {
  event.preventDefault();
  const body = searchBody();
  if (!imageQuery && !body.query) return;
  $("search-status").textContent = "Searching…";
  try {
    const started = performance.now();
    const response = await api(collectionPath("/search"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const ms = Math.round(performance.now() - started);
    $("search-status").textContent = `${response.data.length} results in ${ms} ms (${response.mode}).`;
    showResults(response.data);
  } catch (err) {
    $("search-status").textContent = `Search failed: ${err.message}`;
  }
}

function hitFile(hit) {
  return hit.file || hit.source || hit.parent_id || hit.id;
}

function hitTitle(hit) {
  return hit.page ? `${hitFile(hit)} · page ${hit.page}` : hitFile(hit);
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

function card(hit, rank) {
  const item = document.createElement("article");
  item.className = "hit";
  item.tabIndex = 0;
  item.dataset.rank = String(rank);
  item.dataset.score = String(hit.score);
  if (hit.page) item.dataset.page = String(hit.page);
  const thumb = hit.thumbnail_url || hit.page_image_url;
  if (thumb) {
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = hitTitle(hit);
    imageUrl(thumb).then((url) => { img.src = url; }, () => { img.alt = "(image unavailable)"; });
    item.append(img);
  } else {
    const snippet = document.createElement("p");
    snippet.className = "snippet";
    snippet.textContent = hit.text.length > 280 ? `${hit.text.slice(0, 280)}…` : hit.text;
    item.append(snippet);
  }
  const file = span("file", hitFile(hit));
  file.title = hitTitle(hit);
  const caption = document.createElement("footer");
  caption.append(span("page", hit.page ? `page ${hit.page}` : `#${rank}`), span("score", hit.score.toFixed(3)));
  item.append(file, caption);
  const open = () => openHit(hit);
  item.addEventListener("click", open);
  item.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  return item;
}

function showResults(hits) {
  objectUrls.splice(0).forEach((u) => URL.revokeObjectURL(u));
  $("results").replaceChildren(...hits.map((h, i) => card(h, i + 1)));
}

async function openHit(hit) {
  const image = $("viewer-image");
  const text = $("viewer-text");
  $("viewer-title").textContent = `${hitTitle(hit)} · score ${hit.score.toFixed(3)}`;
  image.hidden = true;
  text.hidden = true;
  if (hit.page_image_url) {
    try {
      image.src = await imageUrl(hit.page_image_url);
      image.hidden = false;
    } catch (err) {
      text.textContent = `The page image could not be loaded (${err.message}).`;
      text.hidden = false;
    }
  } else {
    text.textContent = hit.text;
    text.hidden = false;
  }
  $("viewer").showModal();
}

// ---- start ---------------------------------------------------------------------------------------------

function start() {
  $("api-key").value = sessionStorage.getItem(KEY_ITEM) || "";
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_ITEM, key);
    else sessionStorage.removeItem(KEY_ITEM);
    loadCollections();
  });
  $("reload").addEventListener("click", loadCollections);
  $("collection").addEventListener("change", () => {
    sessionStorage.setItem(COLLECTION_ITEM, $("collection").value);
    loadCollections();
  });
  $("upload-form").addEventListener("submit", upload);
  $("search-form").addEventListener("submit", search);
  $("image-file").addEventListener("change", (e) => setImageQuery(e.target.files[0]));
  $("clear-image").addEventListener("click", clearImageQuery);
  $("viewer-close").addEventListener("click", () => $("viewer").close());
  wireDrop($("drop-zone"));
  wireDrop($("query"));
  loadCollections();
}

document.addEventListener("DOMContentLoaded", start);

// The humantask workbench: sign in with a worker token, answer the task shown, get the next.
//
// Everything a customer wrote (instruction, attachment, categories) is put on the page
// as text (textContent, createElement), never parsed as HTML; the page's Content
// Security Policy forbids inline scripts besides.
"use strict";

(() => {
  const TOKEN_KEY = "humantask.workerToken";
  const IDLE_POLL_MS = 3000;
  const RETRY_MS = 5000;
  const SECTIONS = ["loading", "sign-in", "task", "idle"];

  const $ = (id) => document.getElementById(id);
  let current = null; // the work item on screen
  let busy = false; // a submit is in flight
  let pollTimer = null;
  let leaseTimer = null;
  let statusTimer = null;

  // --- talking to the API -----------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Basic " + btoa(token() + ":"), Accept: "application/json" };
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    return { status: response.status, data };
  }

  function errorText(reply) {
    return reply.data && typeof reply.data.error === "string"
      ? reply.data.error
      : `the server answered ${reply.status}`;
  }

  // --- what is on screen ------------------------------------------------------------------

  function show(section) {
    for (const id of SECTIONS) $(id).hidden = id !== section;
    $("session").hidden = section === "sign-in" || section === "loading";
    if (section !== "task") stopLeaseTimer();
  }

  function say(text, kind = "") {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + kind;
    status.hidden = !text;
    clearTimeout(statusTimer);
    if (kind === "ok") statusTimer = setTimeout(() => say(""), 4000);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function isHttpUrl(value) {
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch {
      return false;
    }
  }

  function renderAttachment(type, value) {
    const box = $("attachment");
    const kind = element("p", "attachment-kind", type);
    let body;
    if (type === "text" || !isHttpUrl(value)) {
      body = element("p", "attachment-text", value);
    } else if (type === "image") {
      body = element("img");
      body.alt = "The task's image";
      body.referrerPolicy = "no-referrer";
      body.src = value;
    } else {
      body = element("a", "", value);
      body.href = value;
      body.target = "_blank";
      body.rel = "noopener noreferrer";
    }
    box.replaceChildren(kind, body);
  }

  function renderCategories(categories) {
    const buttons = categories.map((category, index) => {
      const button = element("button", "category");
      button.type = "button";
      if (index < 9) {
        button.append(element("kbd", "", String(index + 1)));
        button.setAttribute("aria-keyshortcuts", String(index + 1));
      }
      button.append(element("span", "", category));
      button.addEventListener("click", () => submit(category, button));
      return button;
    });
    $("categories").replaceChildren(...buttons);
  }

  function render(item) {
    current = item;
    $("task-id").textContent = item.task_id;
    $("instruction").textContent = item.instruction;
    renderAttachment(item.params.attachment_type, item.params.attachment);
    renderCategories(item.params.categories);
    show("task");
    startLeaseTimer(item.lease_expires_at);
  }

  function setBusy(value) {
    busy = value;
    for (const button of $("categories").querySelectorAll("button")) button.disabled = value;
  }

  // --- the lease --------------------------------------------------------------------------

  function stopLeaseTimer() {
    clearInterval(leaseTimer);
    leaseTimer = null;
    $("lease").textContent = "";
  }

  function startLeaseTimer(expiresAt) {
    stopLeaseTimer();
    const deadline = Date.parse(expiresAt);
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      const lease = $("lease");
      lease.textContent = `Yours for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      lease.classList.toggle("soon", left < 60);
      if (left === 0 && !busy) {
        stopLeaseTimer();
        say("Your time on that task ran out. Getting a task…", "warn");
        claim();
      }
    };
    tick();
    leaseTimer = setInterval(tick, 1000);
  }

  // --- the work loop ----------------------------------------------------------------------

  function schedule(ms) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(claim, ms);
  }

  async function claim() {
    clearTimeout(pollTimer);
    if (!token()) return;
    let reply;
    try {
      reply = await api("POST", "/v1/work/claim");
    } catch {
      say("The server cannot be reached. Trying again…", "error");
      schedule(RETRY_MS);
      return;
    }
    if (!token()) return; // signed out meanwhile
    if (reply.status === 200) {
      render(reply.data);
    } else if (reply.status === 204) {
      current = null;
      show("idle");
      schedule(IDLE_POLL_MS);
    } else if (reply.status === 401) {
      signOut("That token was not accepted. Check it and sign in again.");
    } else {
      say(`Could not get a task: ${errorText(reply)}. Trying again…`, "error");
      schedule(RETRY_MS);
    }
  }

  async function submit(category, button) {
    if (!current || busy) return;
    const item = current;
    setBusy(true);
    button.classList.add("chosen");
    let reply;
    try {
      reply = await api("POST", `/v1/work/${encodeURIComponent(item.task_id)}/submit`, { category });
    } catch {
      say("The server cannot be reached. Your answer was not saved; try again.", "error");
      button.classList.remove("chosen");
      setBusy(false);
      return;
    }
    if (reply.status === 401) {
      signOut("Your token is no longer accepted. Sign in again.");
      return;
    }
    if (reply.status === 200) {
      say(`Saved “${category}”.`, "ok");
    } else if (reply.status === 409) {
      say(`That task is no longer yours: ${errorText(reply)}.`, "warn");
    } else {
      say(`Your answer was not saved: ${errorText(reply)}.`, "error");
      button.classList.remove("chosen");
      setBusy(false);
      return;
    }
    current = null;
    busy = false;
    show("loading");
    await claim();
  }

  // --- signing in and out -----------------------------------------------------------------

  function signOut(message) {
    const item = current;
    if (item && token()) {
      // Give the lease back so that someone else can take the task at once.
      api("POST", `/v1/work/${encodeURIComponent(item.task_id)}/release`).catch(() => {});
    }
    current = null;
    clearTimeout(pollTimer);
    sessionStorage.removeItem(TOKEN_KEY);
    say("");
    const error = $("sign-in-error");
    error.textContent = message || "";
    error.hidden = !message;
    $("token").value = "";
    show("sign-in");
    $("token").focus();
  }

  function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!/^[\x21-\x7e]+$/.test(value)) {
      const error = $("sign-in-error");
      error.textContent = "A worker token is one word of plain letters, digits and symbols.";
      error.hidden = false;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    $("sign-in-error").hidden = true;
    show("loading");
    claim();
  }

  function onKey(event) {
    if (!current || busy || $("task").hidden) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target instanceof HTMLInputElement) return;
    if (!/^[1-9]$/.test(event.key)) return;
    const buttons = $("categories").querySelectorAll("button.category");
    const button = buttons[Number(event.key) - 1];
    if (button) {
      event.preventDefault();
      button.click();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    document.addEventListener("keydown", onKey);
    if (token()) {
      claim();
    } else {
      show("sign-in");
      $("token").focus();
    }
  });
})();

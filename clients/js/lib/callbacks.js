'use strict';
// Checking and reading the callbacks humantask POSTs to a task's callback_url. They are
// signed per Standard Webhooks (standardwebhooks.com), so its libraries verify them too.

const crypto = require('node:crypto');

function header(headers, name) {
  if (typeof headers.get === 'function') return headers.get(name) || '';
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const value = key === undefined ? '' : headers[key];
  return String((Array.isArray(value) ? value[0] : value) || '');
}

/** The HMAC key of a `whsec_...` secret: the bytes its base64 part stands for. */
function signingKey(secret) {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

/**
 * The `webhook-signature` value (Standard Webhooks) for `body` sent as `msgId` at
 * `timestamp`: `v1,<base64 HMAC-SHA256 of "<msgId>.<timestamp>.<body>">`.
 */
function sign(secret, msgId, timestamp, body) {
  const hmac = crypto.createHmac('sha256', signingKey(secret));
  hmac.update(`${msgId}.${timestamp}.`);
  hmac.update(body);
  return `v1,${hmac.digest('base64')}`;
}

// ASCII digits only (never "١٧٠٠" or "１７００"), and few enough to be a time.
const TIMESTAMP = /^[0-9]{1,15}$/;

/**
 * Did humantask send this callback? Standard Webhooks headers (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature`) as Node or fetch gives them, `body` the raw
 * bytes (a Buffer or string). Constant-time; a timestamp more than toleranceSeconds from
 * now is refused. Malformed headers are `false`, never an exception.
 */
function verifyCallback(secret, headers, body, { toleranceSeconds = 300, now = Date.now() / 1000 } = {}) {
  const msgId = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!msgId || !signatures || !TIMESTAMP.test(timestamp)) return false;
  if (toleranceSeconds !== null && Math.abs(now - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, msgId, timestamp, body));
  return signatures.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

// Keys that would reach an object's prototype rather than the object.
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The callback's object: JSON as is, or the form decoded with its bracket nesting. A form
 * field whose name holds `__proto__`, `constructor` or `prototype` is left out.
 */
function parseCallback(body, contentType = 'application/x-www-form-urlencoded') {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : String(body);
  if (contentType.split(';')[0].trim().toLowerCase() === 'application/json') return JSON.parse(text);
  const root = {};
  for (const [name, value] of new URLSearchParams(text)) {
    const [head, ...rest] = name.split('[');
    const keys = [head, ...rest.map((part) => part.replace(/\]$/, ''))];
    if (keys.some((key) => UNSAFE_KEYS.has(key))) continue;
    const leaf = keys.pop();
    let node = root;
    for (const key of keys) {
      if (!Object.hasOwn(node, key) || typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key];
    }
    node[leaf || String(Object.keys(node).length)] = value;
  }
  return toArrays(root);
}

function toArrays(node) {
  if (typeof node !== 'object' || node === null) return node;
  const keys = Object.keys(node);
  for (const key of keys) node[key] = toArrays(node[key]);
  if (keys.length && keys.every((key) => /^\d+$/.test(key))) {
    return keys.sort((a, b) => a - b).map((key) => node[key]);
  }
  return node;
}

module.exports = { verifyCallback, parseCallback, sign };

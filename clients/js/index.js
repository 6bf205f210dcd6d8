'use strict';
// humantask's JavaScript client for the Scale v1 API. Node's built-in fetch, no dependencies.
//
//   const scale = require('scale');
//   let api = scale.authorize('YOUR_API_KEY', { baseUrl: 'http://localhost:8080' });
//   let task = await api.tasks.createCategorization({ callback_url, instruction,
//     attachment_type: 'text', attachment: 'car', categories: ['big', 'small'] });
//   await api.tasks.get(task.task_id);
//   for await (const t of api.tasks.list({ status: 'pending' })) { ... }  // or: await list()
//   await api.tasks.cancel(task.task_id);

const crypto = require('node:crypto');

const VERSION = '0.1.0';
const DEFAULT_BASE_URL = 'http://localhost:8080';

// -- errors: one class per status, all ScaleError --------------------------------------

class ScaleError extends Error {
  /** `message` is the server's own (its `{"error": ...}`), `statusCode` the HTTP status. */
  constructor(message, statusCode = null, body = null) {
    super(message);
    this.name = this.constructor.name;
    this.statusCode = statusCode;
    this.body = body;
  }
}
class APIConnectionError extends ScaleError {}
class APITimeoutError extends APIConnectionError {}
class APIError extends ScaleError {}
class BadRequest extends APIError {}
class Unauthorized extends APIError {}
class NotFound extends APIError {}
class MethodNotAllowed extends APIError {}
class Conflict extends APIError {}
class PayloadTooLarge extends APIError {}
class UnsupportedMediaType extends APIError {}
class ServiceUnavailable extends APIError {}

const ERRORS_BY_STATUS = {
  400: BadRequest, 401: Unauthorized, 404: NotFound, 405: MethodNotAllowed, 409: Conflict,
  413: PayloadTooLarge, 415: UnsupportedMediaType, 503: ServiceUnavailable,
};

function errorFor(status, body, fallback) {
  const message = body && typeof body.error === 'string' && body.error ? body.error : fallback;
  const ErrorClass = ERRORS_BY_STATUS[status] || APIError;
  return new ErrorClass(message, status, body);
}

// -- the task object --------------------------------------------------------------------

/** The seed's task object, its fields as the API sends them (timestamps are strings). */
class Task {
  constructor(fields) { Object.assign(this, fields); }
}

// -- the client -------------------------------------------------------------------------

function apiRoot(baseUrl) {
  let url = String(baseUrl || process.env.SCALE_API_URL || DEFAULT_BASE_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw new TypeError(`baseUrl must be an http(s) URL, not ${url}`);
  if (!url.endsWith('/v1')) url += '/v1';
  return `${url}/`;
}

function taskPath(taskId, suffix = '') {
  if (typeof taskId !== 'string' || !taskId) throw new TypeError('taskId must be a non-empty string');
  return `task/${encodeURIComponent(taskId)}${suffix}`;
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

const NEXT_LINK = /<([^>]*)>\s*;\s*rel="?next"?/;

class Client {
  /**
   * @param {string} apiKey
   * @param {object} [options] baseUrl (else SCALE_API_URL, else http://localhost:8080),
   *   timeoutMs (30000), maxRetries (2), backoffMs (500), maxBackoffMs (8000)
   */
  constructor(apiKey, options = {}) {
    if (!apiKey) throw new TypeError('an API key is required');
    this.baseUrl = apiRoot(options.baseUrl);
    this.timeoutMs = options.timeoutMs ?? 30000;
    this.maxRetries = options.maxRetries ?? 2;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 8000;
    this._authorization = `Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`;
    this.tasks = new Tasks(this);
  }

  /** Wait before retry n (0-based): Retry-After, else exponential with jitter; capped. */
  retryDelayMs(retry, response) {
    let wait = this.backoffMs * 2 ** retry * (0.5 + Math.random() / 2);
    const retryAfter = response && Number.parseFloat(response.headers.get('retry-after'));
    if (Number.isFinite(retryAfter)) wait = retryAfter * 1000;
    return Math.max(0, Math.min(wait, this.maxBackoffMs));
  }

  /** The response; retries 503s and refused connections, `maxRetries` times. */
  async _send(method, path, { query, json, body, headers } = {}) {
    const url = new URL(path, this.baseUrl);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const init = {
      method,
      headers: { Authorization: this._authorization, Accept: 'application/json',
        'User-Agent': `humantask-scale-js/${VERSION}`, ...headers },
    };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers['Content-Type'] = 'application/json';
    } else if (body !== undefined) {
      init.body = body;
    }
    for (let retry = 0; ; retry += 1) {
      let response = null;
      try {
        response = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (error) {
        if (error.name === 'TimeoutError') throw new APITimeoutError(`no answer in time: ${error.message}`);
        if (retry >= this.maxRetries) {
          const cause = error.cause ? ` (${error.cause.code || error.cause.message})` : '';
          throw new APIConnectionError(`could not reach the server: ${error.message}${cause}`);
        }
      }
      if (response && (response.status !== 503 || retry >= this.maxRetries)) return response;
      if (response) await response.arrayBuffer(); // let the connection be reused
      await sleep(this.retryDelayMs(retry, response));
    }
  }

  static async _read(response) {
    const text = await response.text();
    if (!text) return null;
    try { return JSON.parse(text); } catch { return text; }
  }

  async _call(method, path, options, parse = (body) => body) {
    const response = await this._send(method, path, options);
    const body = await Client._read(response);
    if (!response.ok) throw errorFor(response.status, body, response.statusText || 'HTTP error');
    return parse(body, response);
  }

  /** Any request under /v1/ (`path` relative to it): the JSON answer, or a ScaleError. */
  request(method, path, options = {}) {
    return this._call(method.toUpperCase(), path.replace(/^\/+/, ''), options);
  }
}

/** The pages of `GET /v1/tasks`: `await` it for every task, or `for await` them. */
class TaskList {
  constructor(client, query) {
    this._client = client;
    this._query = query;
  }

  async *[Symbol.asyncIterator]() {
    let query = this._query;
    while (query) {
      const [tasks, next] = await this._client._call('GET', 'tasks', { query },
        (body, response) => [body, nextPageQuery(response)]);
      for (const task of tasks) yield new Task(task);
      query = next;
    }
  }

  async toArray() {
    const tasks = [];
    for await (const task of this) tasks.push(task);
    return tasks;
  }

  then(onFulfilled, onRejected) { return this.toArray().then(onFulfilled, onRejected); }
}

/** The next page's query from `Link: <...>; rel="next"`, asked of our own host; or null. */
function nextPageQuery(response) {
  const match = NEXT_LINK.exec(response.headers.get('link') || '');
  return match ? Object.fromEntries(new URL(match[1], 'http://link.invalid').searchParams) : null;
}

const LIST_FILTERS = ['status', 'type', 'unique_id', 'start_time', 'end_time', 'limit', 'offset'];
const CREATE_FIELDS = ['callback_url', 'instruction', 'attachment_type', 'attachment', 'categories',
  'metadata', 'unique_id', 'callback_format'];

function pick(values, names) {
  const picked = {};
  for (const name of names) {
    let value = values[name];
    if (value instanceof Date) value = value.toISOString();
    if (value !== undefined && value !== null) picked[name] = value;
  }
  return picked;
}

class Tasks {
  constructor(client) { this._client = client; }

  /** POST /v1/task/categorize: the new task, status `pending`. */
  createCategorization(params = {}) {
    return this._client._call('POST', 'task/categorize', { json: pick(params, CREATE_FIELDS) },
      (body) => new Task(body));
  }

  get(taskId) {
    return this._client._call('GET', taskPath(taskId), {}, (body) => new Task(body));
  }

  /** Newest first, across pages; filters: status, type, unique_id, start_time, end_time, limit (page size), offset. */
  list(filters = {}) {
    return new TaskList(this._client, pick(filters, LIST_FILTERS));
  }

  cancel(taskId) {
    return this._client._call('POST', taskPath(taskId, '/cancel'), {}, (body) => new Task(body));
  }

  /** The task's callback deliveries, oldest first; empty until it is completed. */
  callbacks(taskId) {
    return this._client._call('GET', taskPath(taskId, '/callbacks'));
  }
}

// -- callbacks --------------------------------------------------------------------------

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

/** The seed's `scale.authorize('YOUR_API_KEY')`. */
function authorize(apiKey, options = {}) {
  return new Client(apiKey, options);
}

module.exports = {
  authorize, Client, Tasks, TaskList, Task, verifyCallback, parseCallback, sign, VERSION,
  ScaleError, APIConnectionError, APITimeoutError, APIError, BadRequest, Unauthorized, NotFound,
  MethodNotAllowed, Conflict, PayloadTooLarge, UnsupportedMediaType, ServiceUnavailable,
};

'use strict';
// The client's one place for HTTP: configuration, sending with retries, reading answers
// and turning error answers into errors. Resources (lib/tasks.js) describe requests and
// call `_call` or `_page`.

const { APIConnectionError, APITimeoutError, errorFor } = require('./errors');
const { Page, nextPageQuery } = require('./pagination');
const { version: VERSION } = require('../package.json');

const DEFAULT_BASE_URL = 'http://localhost:8080';
const BASE_URL_VARIABLE = 'HUMANTASK_URL';
const API_KEY_VARIABLE = 'HUMANTASK_API_KEY';
const DEPRECATED_BASE_URL_VARIABLE = 'SCALE_API_URL'; // read when HUMANTASK_URL is not set
const REQUEST_ID_HEADER = 'x-request-id';

// Answers that say "not now": the request was not carried out, or a proxy does not know.
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
// Methods the HTTP spec makes idempotent: repeating them changes nothing more.
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

let warnedDeprecatedUrl = false;

/** `.../v1/` of the server: baseUrl, else HUMANTASK_URL (else SCALE_API_URL), else localhost. */
function apiRoot(baseUrl, env = process.env) {
  let url = baseUrl || env[BASE_URL_VARIABLE];
  if (!url && env[DEPRECATED_BASE_URL_VARIABLE]) {
    if (!warnedDeprecatedUrl) {
      warnedDeprecatedUrl = true;
      process.emitWarning(`${DEPRECATED_BASE_URL_VARIABLE} is deprecated: set ${BASE_URL_VARIABLE} instead`,
        'DeprecationWarning');
    }
    url = env[DEPRECATED_BASE_URL_VARIABLE];
  }
  url = String(url || DEFAULT_BASE_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw new TypeError(`baseUrl must be an http(s) URL, not ${url}`);
  if (!url.endsWith('/v1')) url += '/v1';
  return `${url}/`;
}

/**
 * A Retry-After header in milliseconds: delay-seconds, or an HTTP date (the time from `now`
 * until it, never negative); null when absent or unreadable.
 */
function retryAfterMs(value, now = Date.now()) {
  if (value === null || value === undefined || !String(value).trim()) return null;
  const text = String(value).trim();
  let ms;
  if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text)) ms = Number(text) * 1000;
  else ms = Date.parse(text) - now;
  return Number.isFinite(ms) ? Math.max(0, ms) : null;
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

class Client {
  /**
   * @param {string} [apiKey] a customer's API key (else HUMANTASK_API_KEY)
   * @param {object} [options] baseUrl (else HUMANTASK_URL, else http://localhost:8080),
   *   timeoutMs (30000, per attempt), maxRetries (2), backoffMs (500), maxBackoffMs (8000),
   *   fetch (the fetch function to send with: the global one by default)
   */
  constructor(apiKey, options = {}) {
    const key = apiKey || process.env[API_KEY_VARIABLE];
    if (!key) throw new TypeError(`an API key is required: pass one, or set ${API_KEY_VARIABLE}`);
    this.baseUrl = apiRoot(options.baseUrl);
    this.timeoutMs = options.timeoutMs ?? 30000;
    this.maxRetries = options.maxRetries ?? 2;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 8000;
    Object.defineProperty(this, '_fetch', { value: options.fetch || ((...args) => fetch(...args)) });
    Object.defineProperty(this, '_authorization',
      { value: `Basic ${Buffer.from(`${key}:`).toString('base64')}` });
  }

  /** The wait before retry n (0-based): Retry-After if given, else full jitter; capped. */
  retryDelayMs(retry, headers = null) {
    const after = headers ? retryAfterMs(headers.get('retry-after')) : null;
    const wait = after ?? Math.random() * Math.min(this.maxBackoffMs, this.backoffMs * 2 ** Math.min(retry, 64));
    return Math.max(0, Math.min(wait, this.maxBackoffMs));
  }

  /**
   * Send a request; retried (a 429, 502, 503 or 504, no answer in time, no connection) at
   * most maxRetries times, and only when `retryable`: repeating it cannot do anything twice.
   * Resolves to { status, statusText, headers, body } (body parsed when it is JSON).
   */
  async _send(method, path, { query, json, body, headers, retryable = false } = {}) {
    const url = new URL(path, this.baseUrl);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    const init = {
      method,
      headers: { Authorization: this._authorization, Accept: 'application/json',
        'User-Agent': `humantask-js/${VERSION}`, ...headers },
    };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers['Content-Type'] = 'application/json';
    } else if (body !== undefined) {
      init.body = body;
    }
    for (let retry = 0; ; retry += 1) {
      const canRetry = retryable && retry < this.maxRetries;
      let answer;
      try {
        // The timeout covers the whole attempt: the answer's body too.
        const response = await this._fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
        answer = { status: response.status, statusText: response.statusText, headers: response.headers,
          body: parseBody(await response.text()) };
      } catch (error) {
        if (!canRetry) throw connectionError(error);
        await sleep(this.retryDelayMs(retry));
        continue;
      }
      if (!canRetry || !RETRY_STATUSES.has(answer.status)) return answer;
      await sleep(this.retryDelayMs(retry, answer.headers));
    }
  }

  /** The parsed answer of a 2xx; the matching error otherwise. */
  async _call(method, path, options = {}, parse = (body) => body) {
    const answer = await this._send(method, path, options);
    if (answer.status < 200 || answer.status > 299) throw apiError(answer);
    return parse(answer.body, answer);
  }

  /** One page of a list at `path`: a Page whose nextPage() asks for the next. */
  async _page(path, query, parseItem) {
    return this._call('GET', path, { query, retryable: true }, (body, answer) => new Page(
      body.map(parseItem), nextPageQuery(answer.headers), (next) => this._page(path, next, parseItem)));
  }

  /**
   * Any request under /v1/ (`path` relative to it): the JSON answer, or an APIError.
   * Options: query, json, body, headers, idempotent (retry it; by default only GET, HEAD,
   * OPTIONS, PUT and DELETE are).
   */
  request(method, path, { idempotent, ...options } = {}) {
    const verb = method.toUpperCase();
    return this._call(verb, path.replace(/^\/+/, ''),
      { ...options, retryable: idempotent ?? IDEMPOTENT_METHODS.has(verb) });
  }
}

function parseBody(text) {
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

function apiError(answer) {
  return errorFor(answer.status, answer.body, answer.statusText || 'HTTP error', {
    requestId: answer.headers.get(REQUEST_ID_HEADER) || null,
    retryAfterMs: retryAfterMs(answer.headers.get('retry-after')),
  });
}

function connectionError(error) {
  if (error && error.name === 'TimeoutError') return new APITimeoutError(`no answer in time: ${error.message}`);
  const cause = error && error.cause ? ` (${error.cause.code || error.cause.message})` : '';
  return new APIConnectionError(`could not reach the server: ${error && error.message}${cause}`);
}

module.exports = {
  Client, apiRoot, retryAfterMs, DEFAULT_BASE_URL, BASE_URL_VARIABLE, API_KEY_VARIABLE, RETRY_STATUSES,
};

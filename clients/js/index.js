'use strict';
// humantask's JavaScript client: the Scale v1 API of a humantask server. Node's built-in
// fetch, no dependencies.
//
//   const humantask = require('humantask');
//   const api = humantask.authorize('YOUR_API_KEY', { baseUrl: 'http://localhost:8080' });
//   const task = await api.tasks.createCategorization({ callback_url, instruction,
//     attachment_type: 'text', attachment: 'car', categories: ['big', 'small'] });
//   await api.tasks.get(task.task_id);
//   for await (const t of api.tasks.list({ status: 'pending' })) { ... }
//   await api.tasks.cancel(task.task_id);

const errors = require('./lib/errors');
const http = require('./lib/http');
const { Page, PageIterator } = require('./lib/pagination');
const { Task, Tasks, STATUSES } = require('./lib/tasks');
const { Projects } = require('./lib/projects');
const { Batches } = require('./lib/batches');
const { verifyCallback, parseCallback, sign } = require('./lib/callbacks');
const { version: VERSION } = require('./package.json');

/** The client with its resources: `api.tasks`, `api.projects`, `api.batches`. */
class Client extends http.Client {
  constructor(apiKey, options = {}) {
    super(apiKey, options);
    this.tasks = new Tasks(this);
    this.projects = new Projects(this);
    this.batches = new Batches(this);
  }
}

/**
 * The Scale SDK's `authorize('YOUR_API_KEY')`. The key defaults to HUMANTASK_API_KEY;
 * `authorize({ ...options })` alone works too.
 */
function authorize(apiKey, options = {}) {
  if (apiKey && typeof apiKey === 'object') return new Client(undefined, apiKey);
  return new Client(apiKey, options);
}

module.exports = {
  authorize, Client, Tasks, Task, Projects, Batches, Page, PageIterator, TASK_STATUSES: STATUSES,
  verifyCallback, parseCallback, sign, retryAfterMs: http.retryAfterMs, VERSION,
  DEFAULT_BASE_URL: http.DEFAULT_BASE_URL, RETRY_STATUSES: http.RETRY_STATUSES,
  HumantaskError: errors.HumantaskError, APIConnectionError: errors.APIConnectionError,
  APITimeoutError: errors.APITimeoutError, APIError: errors.APIError, BadRequest: errors.BadRequest,
  Unauthorized: errors.Unauthorized, NotFound: errors.NotFound, MethodNotAllowed: errors.MethodNotAllowed,
  Conflict: errors.Conflict, PayloadTooLarge: errors.PayloadTooLarge,
  UnsupportedMediaType: errors.UnsupportedMediaType, RateLimited: errors.RateLimited,
  ServerError: errors.ServerError, ServiceUnavailable: errors.ServiceUnavailable,
};

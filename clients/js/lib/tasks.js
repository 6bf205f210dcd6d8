'use strict';
// `api.tasks`: create, get, list, cancel, a task's callback log, and Scale's audits, tags,
// metadata and unique_id (under /scale/v1/).

const { PageIterator } = require('./pagination');
const { SCALE } = require('./scale');

/**
 * The task object, its fields as the API sends them (timestamps are strings). Fields and
 * statuses a newer server adds come through as they are.
 */
class Task {
  constructor(fields) { Object.assign(this, fields); }
}

const STATUSES = Object.freeze(['pending', 'completed', 'canceled']);
const LIST_FILTERS = ['status', 'type', 'unique_id', 'start_time', 'end_time', 'limit', 'offset', 'next_token'];

function taskPath(taskId, suffix = '') {
  if (typeof taskId !== 'string' || !taskId) throw new TypeError('taskId must be a non-empty string');
  return `task/${encodeURIComponent(taskId)}${suffix}`;
}

/** The given values without undefined or null ones, dates as ISO strings. */
function given(values, names = Object.keys(values)) {
  const picked = {};
  for (const name of names) {
    let value = values[name];
    if (value instanceof Date) value = value.toISOString();
    if (value !== undefined && value !== null) picked[name] = value;
  }
  return picked;
}

const toTask = (fields) => new Task(fields);

class Tasks {
  constructor(client) { Object.defineProperty(this, '_client', { value: client }); }

  /**
   * POST /v1/task/categorize: the new task, status `pending`. Every parameter given is
   * sent (one a newer server knows and this client does not, too). Retried after a
   * failure only with a `unique_id`, with which the server makes the task once. In a
   * `project` (whose params fill in what is left out) or a `batch`, or with `tags`:
   * Scale's create under /scale/v1/.
   */
  createCategorization(params = {}) {
    const json = given(params);
    const placed = ['project', 'batch', 'tags'].some((name) => json[name] !== undefined);
    return this._client._call('POST', placed ? `${SCALE}task/categorization` : 'task/categorize',
      { json, retryable: json.unique_id !== undefined }, toTask);
  }

  get(taskId) {
    return this._client._call('GET', taskPath(taskId), { retryable: true }, toTask);
  }

  /**
   * The caller's tasks, newest first, across pages: `for await (const task of list(...))`.
   * Lazy: a page is asked for only when the tasks before it are used up. Filters: status,
   * type, unique_id, start_time, end_time, limit (the page size), offset.
   */
  list(filters = {}) {
    const query = given(filters, LIST_FILTERS);
    return new PageIterator(() => this._client._page('tasks', query, toTask));
  }

  /** One page (one request): { items, hasNext, nextToken, nextPage() }. Also takes next_token. */
  listPage(filters = {}) {
    return this._client._page('tasks', given(filters, LIST_FILTERS), toTask);
  }

  /**
   * Cancels a pending task; canceling a canceled task answers it again (so it is retried).
   * `{ clearUniqueId: true }` frees its unique_id for another task.
   */
  cancel(taskId, { clearUniqueId = false } = {}) {
    if (clearUniqueId) {
      return this._client._call('POST', SCALE + taskPath(taskId, '/cancel'),
        { query: { clear_unique_id: 'true' }, retryable: true }, toTask);
    }
    return this._client._call('POST', taskPath(taskId, '/cancel'), { retryable: true }, toTask);
  }

  /**
   * Accept a completed task's answer, or reject it: it goes back to workers who have not
   * answered it, and is called back again once completed again.
   */
  audit(taskId, accepted, comments) {
    const json = given({ accepted, comments });
    return this._client._call('POST', SCALE + taskPath(taskId, '/audit'), { json }, toTask);
  }

  setTags(taskId, tags) { return this._tags('POST', taskId, tags); }

  addTags(taskId, tags) { return this._tags('PUT', taskId, tags); }

  deleteTags(taskId, tags) { return this._tags('DELETE', taskId, tags); }

  setMetadata(taskId, metadata) {
    return this._client._call('POST', SCALE + taskPath(taskId, '/setMetadata'),
      { json: metadata, retryable: true }, toTask);
  }

  /** Gives the task a unique_id (a Conflict if another task has it); null clears it. */
  setUniqueId(taskId, uniqueId) {
    const path = SCALE + taskPath(taskId, '/unique_id');
    if (uniqueId === null || uniqueId === undefined) {
      return this._client._call('DELETE', path, { retryable: true }, toTask);
    }
    return this._client._call('POST', path, { json: { unique_id: uniqueId }, retryable: true }, toTask);
  }

  _tags(method, taskId, tags) {
    return this._client._call(method, SCALE + taskPath(taskId, '/tags'),
      { json: [...tags], retryable: true }, toTask);
  }

  /** The task's callback deliveries, oldest first; empty until it is completed. */
  callbacks(taskId) {
    return this._client._call('GET', taskPath(taskId, '/callbacks'), { retryable: true });
  }
}

Tasks.prototype.create_categorization = Tasks.prototype.createCategorization;

module.exports = { Task, Tasks, STATUSES };

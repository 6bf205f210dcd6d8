'use strict';
// `api.batches`: a project's tasks in named groups, called back once all are done
// (Scale's batches, under /scale/v1/).

const { SCALE } = require('./scale');

function batchPath(name, suffix = '') {
  if (typeof name !== 'string' || !name) throw new TypeError("a batch's name must be a non-empty string");
  return `${SCALE}batches/${encodeURIComponent(name)}${suffix}`;
}

class Batches {
  constructor(client) { Object.defineProperty(this, '_client', { value: client }); }

  /**
   * A `staging` batch of `project`; `callback` (a URL) receives the batch and its counts
   * once every task of it is completed or canceled, after `finalize`.
   */
  create(project, name, { callback, metadata } = {}) {
    const json = { project, name };
    if (callback) json.callback = callback;
    if (metadata) json.metadata = metadata;
    return this._client._call('POST', `${SCALE}batches`, { json });
  }

  /** No more tasks join it: `in_progress`, then `completed` once they are done. */
  finalize(name) {
    return this._client._call('POST', batchPath(name, '/finalize'), { retryable: true });
  }

  get(name) {
    return this._client._call('GET', batchPath(name), { retryable: true });
  }

  /** { status, pending, completed, canceled }. */
  status(name) {
    return this._client._call('GET', batchPath(name, '/status'), { retryable: true });
  }

  /** The batches, newest first: `for await (const batch of api.batches.list({ project }))`. */
  async* list({ project, status } = {}) {
    for (let offset = 0; ;) {
      const query = { offset, limit: 100 };
      if (project) query.project = project;
      if (status) query.status = status;
      const page = await this._client._call('GET', `${SCALE}batches`, { query, retryable: true });
      yield* page.docs;
      offset += page.docs.length;
      if (!page.has_more || !page.docs.length) return;
    }
  }
}

module.exports = { Batches };

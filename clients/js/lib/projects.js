'use strict';
// `api.projects`: named defaults for tasks' create parameters, kept as versions
// (Scale's projects, under /scale/v1/).

const { SCALE } = require('./scale');

function projectPath(name, suffix = '') {
  if (typeof name !== 'string' || !name) throw new TypeError("a project's name must be a non-empty string");
  return `${SCALE}projects/${encodeURIComponent(name)}${suffix}`;
}

class Projects {
  constructor(client) { Object.defineProperty(this, '_client', { value: client }); }

  /** A categorization project; `params` are its tasks' defaults (a Conflict when the name is taken). */
  create(name, params) {
    const json = { type: 'categorization', name };
    if (params) json.params = params;
    return this._client._call('POST', `${SCALE}projects`, { json });
  }

  get(name) {
    return this._client._call('GET', projectPath(name), { retryable: true });
  }

  /** Every project, oldest first. */
  list() {
    return this._client._call('GET', `${SCALE}projects`, { retryable: true });
  }

  /** A new version of the project's params; `{ patch: true }` keeps those not given. */
  setParams(name, params = {}, { patch = false } = {}) {
    const json = patch ? { ...params, patch: true } : { ...params };
    return this._client._call('POST', projectPath(name, '/setParams'), { json });
  }
}

Projects.prototype.set_params = Projects.prototype.setParams;

module.exports = { Projects };

'use strict';
// Scale's current API, beside /v1: projects, batches, audits and tags live under
// /scale/v1/. A path relative to the client's `.../v1/` reaches it as `../scale/v1/...`.

const SCALE = '../scale/v1/';

module.exports = { SCALE };

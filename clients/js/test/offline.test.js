'use strict';
// The client on its own, against a scripted local HTTP server (no stack needed):
// configuration, retries, errors, pagination and forward compatibility; and what each of
// Scale's calls (projects, batches, audits, tags) sends and answers.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const humantask = require('humantask');
const { startScriptedServer } = require('../testing/scripted_server');

const TASK = {
  task_id: '5774cc78b01249ab09f089dd',
  created_at: '2016-06-30T07:38:32.861Z',
  callback_url: 'http://www.example.com/callback',
  type: 'categorization',
  status: 'pending',
  instruction: 'Is this company public or private?',
  params: { attachment_type: 'website', attachment: 'http://www.google.com/', categories: ['public', 'private'] },
};
const CREATE = {
  callback_url: 'http://www.example.com/callback',
  instruction: 'Is this company public or private?',
  attachment_type: 'website',
  attachment: 'http://www.google.com/',
  categories: ['public', 'private'],
};
const FAST = { backoffMs: 10, maxBackoffMs: 50 };
const errorBody = (status, error) => ({ status_code: status, error });

async function rejection(promise) {
  return promise.then(() => assert.fail('expected an error'), (error) => error);
}

describe('configuration', () => {
  test('the base URL: given, HUMANTASK_URL, the deprecated SCALE_API_URL, the default', () => {
    const saved = { ...process.env };
    try {
      delete process.env.HUMANTASK_URL;
      delete process.env.SCALE_API_URL;
      assert.equal(humantask.authorize('k').baseUrl, 'http://localhost:8080/v1/');
      process.env.SCALE_API_URL = 'https://old.example.org';
      assert.equal(humantask.authorize('k').baseUrl, 'https://old.example.org/v1/');
      process.env.HUMANTASK_URL = 'https://tasks.example.org/v1/';
      assert.equal(humantask.authorize('k').baseUrl, 'https://tasks.example.org/v1/');
      assert.equal(humantask.authorize('k', { baseUrl: 'http://given:8080/' }).baseUrl, 'http://given:8080/v1/');
      assert.throws(() => humantask.authorize('k', { baseUrl: 'localhost:8080' }), TypeError);
    } finally {
      process.env = saved;
    }
  });

  test('the key: given, else HUMANTASK_API_KEY', () => {
    const saved = process.env.HUMANTASK_API_KEY;
    try {
      delete process.env.HUMANTASK_API_KEY;
      assert.throws(() => humantask.authorize(), /HUMANTASK_API_KEY/);
      process.env.HUMANTASK_API_KEY = 'live_from_env';
      assert.ok(humantask.authorize({ baseUrl: 'http://localhost:8080' }) instanceof humantask.Client);
    } finally {
      if (saved === undefined) delete process.env.HUMANTASK_API_KEY; else process.env.HUMANTASK_API_KEY = saved;
    }
  });

  test('the version is the package\'s', () => {
    assert.equal(humantask.VERSION, require('../package.json').version);
  });
});

describe('Retry-After and the backoff', () => {
  const now = Date.parse('2026-01-02T03:04:05Z');
  for (const [header, ms] of [
    ['2', 2000], ['0.5', 500], ['0', 0], ['-3', 0], ['Fri, 02 Jan 2026 03:04:35 GMT', 30000],
    ['Fri, 02 Jan 2026 03:03:05 GMT', 0], ['', null], [null, null], ['soon', null], ['Infinity', null],
  ]) {
    test(`Retry-After ${JSON.stringify(header)} is ${ms} ms`, () => {
      assert.equal(humantask.retryAfterMs(header, now), ms);
    });
  }

  test('full jitter stays between 0 and the capped exponential, spread over it', () => {
    const api = humantask.authorize('k', { backoffMs: 1000, maxBackoffMs: 6000 });
    for (const [retry, bound] of [[0, 1000], [1, 2000], [2, 4000], [3, 6000], [9, 6000], [5000, 6000]]) {
      const waits = Array.from({ length: 300 }, () => api.retryDelayMs(retry));
      assert.ok(waits.every((wait) => wait >= 0 && wait <= bound), `${retry}: ${Math.max(...waits)}`);
      assert.ok(Math.min(...waits) < 0.1 * bound && Math.max(...waits) > 0.9 * bound, `${retry}`);
    }
  });

  test('Retry-After is honoured and capped', () => {
    const api = humantask.authorize('k', { backoffMs: 1000, maxBackoffMs: 3000 });
    assert.equal(api.retryDelayMs(0, new Headers({ 'Retry-After': '2' })), 2000);
    assert.equal(api.retryDelayMs(0, new Headers({ 'Retry-After': '120' })), 3000);
    const later = new Date(Date.now() + 3600_000).toUTCString();
    assert.equal(api.retryDelayMs(0, new Headers({ 'Retry-After': later })), 3000);
  });
});

describe('against a scripted server', () => {
  let server;
  let api;
  before(async () => {
    server = await startScriptedServer();
    api = humantask.authorize('live_test', { baseUrl: server.url, maxRetries: 2, ...FAST });
  });
  after(() => server.close());

  for (const status of [429, 502, 503, 504]) {
    test(`a get is retried on ${status}`, async () => {
      server.script({ status, body: errorBody(status, 'not now') }, { body: TASK });
      assert.equal((await api.tasks.get(TASK.task_id)).task_id, TASK.task_id);
      assert.equal(server.requests.length, 2);
    });
  }

  test('Retry-After in seconds is waited for', async () => {
    server.script({ status: 429, body: errorBody(429, 'slow down'), headers: { 'Retry-After': '0.3' } }, { body: TASK });
    await humantask.authorize('k', { baseUrl: server.url, maxBackoffMs: 5000 }).tasks.get(TASK.task_id);
    const [first, second] = server.requests;
    assert.ok(second.at - first.at >= 290, `${second.at - first.at} ms`);
  });

  test('Retry-After as an HTTP date is waited for', async () => {
    // HTTP dates have whole seconds: two seconds ahead is at least one second's wait.
    const when = new Date(Date.now() + 2000).toUTCString();
    server.script({ status: 503, body: errorBody(503, 'busy'), headers: { 'Retry-After': when } }, { body: TASK });
    await humantask.authorize('k', { baseUrl: server.url, maxBackoffMs: 5000 }).tasks.get(TASK.task_id);
    const [first, second] = server.requests;
    assert.ok(second.at - first.at >= 900 && second.at - first.at <= 4000, `${second.at - first.at} ms`);
  });

  test('the retries give up with the last answer', async () => {
    server.script({ status: 503, body: errorBody(503, 'task-store did not answer in time') });
    const error = await rejection(api.tasks.get(TASK.task_id));
    assert.ok(error instanceof humantask.ServiceUnavailable && error instanceof humantask.ServerError);
    assert.equal(error.message, 'task-store did not answer in time');
    assert.equal(server.requests.length, 3);
  });

  test('a create without unique_id is never retried', async () => {
    for (const reply of [{ status: 503, body: errorBody(503, 'busy') },
      { status: 429, body: errorBody(429, 'slow'), headers: { 'Retry-After': '0' } },
      { status: 502 }, { hangUp: true }]) {
      server.script(reply, { body: TASK });
      const error = await rejection(api.tasks.createCategorization(CREATE));
      assert.ok(error instanceof humantask.HumantaskError, String(error));
      assert.equal(server.requests.length, 1, JSON.stringify(reply));
    }
  });

  test('a create with unique_id is retried with the same body', async () => {
    server.script({ status: 503, body: errorBody(503, 'busy') }, { hangUp: true }, { body: TASK });
    const task = await api.tasks.createCategorization({ ...CREATE, unique_id: 'order-1' });
    assert.equal(task.task_id, TASK.task_id);
    assert.equal(server.requests.length, 3);
    assert.equal(new Set(server.requests.map((r) => r.body)).size, 1);
    assert.equal(JSON.parse(server.requests[0].body).unique_id, 'order-1');
  });

  test('a 500 is not retried', async () => {
    server.script({ status: 500, body: errorBody(500, 'internal error') }, { body: TASK });
    const error = await rejection(api.tasks.get(TASK.task_id));
    assert.equal(error.constructor, humantask.ServerError);
    assert.equal(server.requests.length, 1);
  });

  test('a broken connection is retried', async () => {
    server.script({ hangUp: true }, { body: TASK });
    assert.equal((await api.tasks.cancel(TASK.task_id)).task_id, TASK.task_id);
    assert.equal(server.requests.length, 2);
  });

  test('a timeout is retried, then raised', async () => {
    server.script({ body: TASK, delayMs: 1000 });
    const slow = humantask.authorize('k', { baseUrl: server.url, timeoutMs: 200, maxRetries: 1, ...FAST });
    const error = await rejection(slow.tasks.get(TASK.task_id));
    assert.ok(error instanceof humantask.APITimeoutError && error instanceof humantask.APIConnectionError);
    assert.equal(error.statusCode, null);
    assert.equal(server.requests.length, 2);
  });

  test('a timeout, then an answer', async () => {
    server.script({ body: TASK, delayMs: 1000 }, { body: TASK });
    const slow = humantask.authorize('k', { baseUrl: server.url, timeoutMs: 200, ...FAST });
    assert.equal((await slow.tasks.get(TASK.task_id)).task_id, TASK.task_id);
  });

  test('request() retries what is idempotent', async () => {
    server.script({ status: 503, body: errorBody(503, 'busy') }, { body: { ok: true } });
    await rejection(api.request('POST', 'task/categorize', { json: CREATE }));
    assert.equal(server.requests.length, 1);
    server.script({ status: 503, body: errorBody(503, 'busy') }, { body: { ok: true } });
    assert.deepEqual(await api.request('POST', 'task/x/cancel', { idempotent: true }), { ok: true });
    server.script({ status: 503, body: errorBody(503, 'busy') }, { body: [TASK] });
    assert.deepEqual(await api.request('GET', '/tasks'), [TASK]);
  });

  for (const [status, name] of [[400, 'BadRequest'], [401, 'Unauthorized'], [403, 'APIError'],
    [404, 'NotFound'], [405, 'MethodNotAllowed'], [409, 'Conflict'], [413, 'PayloadTooLarge'],
    [415, 'UnsupportedMediaType'], [429, 'RateLimited'], [500, 'ServerError'], [502, 'ServerError'],
    [503, 'ServiceUnavailable'], [504, 'ServerError']]) {
    test(`${status} is ${name}, with the status, the message and the request id`, async () => {
      server.script({ status, body: errorBody(status, `the ${status} message`),
        headers: { 'X-Request-Id': `req-${status}`, 'Retry-After': '3' } });
      const once = humantask.authorize('k', { baseUrl: server.url, maxRetries: 0 });
      const error = await rejection(once.tasks.get(TASK.task_id));
      assert.equal(error.constructor, humantask[name]);
      assert.ok(error instanceof humantask.HumantaskError && error instanceof humantask.APIError);
      assert.equal(error.name, name);
      assert.deepEqual([error.statusCode, error.message, error.requestId, error.retryAfterMs],
        [status, `the ${status} message`, `req-${status}`, 3000]);
      assert.deepEqual(error.body, errorBody(status, `the ${status} message`));
    });
  }

  test('unknown statuses, types and fields come through', async () => {
    server.script({ body: { ...TASK, status: 'in_review', type: 'transcription', priority: 7,
      response: { category: 'public', status_code: 200, confidence: 0.93, votes: { public: 3 } } } });
    const task = await api.tasks.get(TASK.task_id);
    assert.ok(task instanceof humantask.Task);
    assert.deepEqual([task.status, task.type, task.priority, task.response.votes],
      ['in_review', 'transcription', 7, { public: 3 }]);
    assert.ok(!humantask.TASK_STATUSES.includes(task.status));
  });

  test('create sends parameters this client has no name for', async () => {
    server.script({ body: TASK });
    await api.tasks.createCategorization({ ...CREATE, min_workers: 3, metadata: undefined });
    assert.deepEqual(JSON.parse(server.requests[0].body), { ...CREATE, min_workers: 3 });
  });

  const tasks = (...ids) => ids.map((taskId) => ({ ...TASK, task_id: taskId }));
  // The host the server names is not asked: only the link's query is taken.
  const nextLink = (token) => ({
    Link: `<http://gateway.internal/v1/tasks?limit=2&status=pending&next_token=${token}>; rel="next"`,
  });

  test('list is lazy, page by page', async () => {
    server.script({ body: tasks('a', 'b'), headers: nextLink('t1') },
      { body: tasks('c', 'd'), headers: nextLink('t2') }, { body: tasks('e') });
    const listed = api.tasks.list({ status: 'pending', limit: 2 });
    assert.equal(server.requests.length, 0);
    const iterator = listed[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value.task_id, 'a');
    assert.equal(server.requests.length, 1);
    assert.equal((await iterator.next()).value.task_id, 'b');
    assert.equal(server.requests.length, 1); // page 2 not asked for yet
    assert.equal((await iterator.next()).value.task_id, 'c');
    assert.equal(server.requests.length, 2);
    assert.deepEqual(server.requests[1].query, { limit: '2', status: 'pending', next_token: 't1' });
    const rest = [];
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) rest.push(step.value.task_id);
    assert.deepEqual(rest, ['d', 'e']);
    assert.deepEqual(server.requests[0].query, { status: 'pending', limit: '2' });
  });

  test('a for await that stops early asks for no more pages', async () => {
    server.script({ body: tasks('a', 'b'), headers: nextLink('t1') }, { body: tasks('c') });
    for await (const task of api.tasks.list({ limit: 2 })) {
      assert.equal(task.task_id, 'a');
      break;
    }
    assert.equal(server.requests.length, 1);
  });

  test('listPage gives one page and the way on; toArray every task', async () => {
    server.script({ body: tasks('a', 'b'), headers: nextLink('t1') }, { body: tasks('c') });
    const page = await api.tasks.listPage({ status: 'pending', limit: 2 });
    assert.deepEqual(page.items.map((t) => t.task_id), ['a', 'b']);
    assert.ok(page.items[0] instanceof humantask.Task);
    assert.equal(page.hasNext, true);
    assert.equal(page.nextToken, 't1');
    assert.equal(server.requests.length, 1);
    const last = await page.nextPage();
    assert.deepEqual([...last].map((t) => t.task_id), ['c']);
    assert.equal(last.hasNext, false);
    assert.equal(last.nextToken, null);
    assert.equal(await last.nextPage(), null);

    server.script({ body: tasks('c') });
    await api.tasks.listPage({ status: 'pending', next_token: 't1' });
    assert.deepEqual(server.requests[0].query, { status: 'pending', next_token: 't1' });

    server.script({ body: tasks('a'), headers: nextLink('t1') }, { status: 503, body: errorBody(503, 'busy') },
      { body: tasks('b') });
    assert.deepEqual((await api.tasks.list().toArray()).map((t) => t.task_id), ['a', 'b']);
    assert.equal(server.requests.length, 3);
  });
});

describe('projects, batches, audits and tags against a scripted server', () => {
  let server;
  let api;
  before(async () => {
    server = await startScriptedServer();
    api = humantask.authorize('live_test', { baseUrl: server.url, maxRetries: 2, ...FAST });
  });
  after(() => server.close());

  // Names and ids go into the path as one segment each, whatever they hold.
  const NAME = 'cats & dogs/2024?#%é';
  const ENCODED_NAME = 'cats%20%26%20dogs%2F2024%3F%23%25%C3%A9';
  const TASK_ID = 'a b/c?d';
  const ENCODED_TASK_ID = 'a%20b%2Fc%3Fd';
  const SCALE_TASK = { ...TASK, task_id: TASK_ID, project: 'kittens', batch: NAME, tags: ['cute'],
    updated_at: '2016-06-30T07:40:00.000Z' };
  const PARAMS = { instruction: 'Is this a kitten or a cat?', attachment_type: 'image', categories: ['kitten', 'cat'] };
  const PROJECT = { type: 'categorization', name: NAME, created_at: '2016-06-30T07:38:32.861Z',
    param_history: [{ ...PARAMS, version: 0, created_at: '2016-06-30T07:38:32.861Z' }] };
  const BATCH = { name: NAME, project: 'kittens', status: 'staging', callback: 'http://www.example.com/batch',
    metadata: { week: 26 }, created_at: '2016-06-30T07:38:32.861Z' };
  const COUNTS = { status: 'in_progress', pending: 2, completed: 1, canceled: 0 };
  const sentJson = (request) => {
    assert.equal(request.headers['content-type'], 'application/json');
    return JSON.parse(request.body);
  };

  // Each call: what it sends (method, path, query, JSON body or none), what the server
  // answers, whether it is a Task, and whether a failure may be retried.
  const CALLS = [
    { name: 'projects.create', call: () => api.projects.create(NAME, PARAMS), method: 'POST',
      path: '/scale/v1/projects', json: { type: 'categorization', name: NAME, params: PARAMS }, reply: PROJECT },
    { name: 'projects.get', call: () => api.projects.get(NAME), method: 'GET',
      path: `/scale/v1/projects/${ENCODED_NAME}`, reply: PROJECT, retried: true },
    { name: 'projects.list', call: () => api.projects.list(), method: 'GET', path: '/scale/v1/projects',
      reply: [PROJECT, { ...PROJECT, name: 'kittens' }], retried: true },
    { name: 'projects.setParams', call: () => api.projects.setParams(NAME, { instruction: 'Kitten or cat?' }),
      method: 'POST', path: `/scale/v1/projects/${ENCODED_NAME}/setParams`,
      json: { instruction: 'Kitten or cat?' }, reply: PROJECT },
    { name: 'batches.create', call: () => api.batches.create('kittens', NAME,
      { callback: BATCH.callback, metadata: BATCH.metadata }), method: 'POST', path: '/scale/v1/batches',
    json: { project: 'kittens', name: NAME, callback: BATCH.callback, metadata: BATCH.metadata }, reply: BATCH },
    { name: 'batches.finalize', call: () => api.batches.finalize(NAME), method: 'POST',
      path: `/scale/v1/batches/${ENCODED_NAME}/finalize`, reply: { ...BATCH, status: 'in_progress' }, retried: true },
    { name: 'batches.get', call: () => api.batches.get(NAME), method: 'GET',
      path: `/scale/v1/batches/${ENCODED_NAME}`, reply: BATCH, retried: true },
    { name: 'batches.status', call: () => api.batches.status(NAME), method: 'GET',
      path: `/scale/v1/batches/${ENCODED_NAME}/status`, reply: COUNTS, retried: true },
    { name: 'tasks.audit', call: () => api.tasks.audit(TASK_ID, false, 'a cat'), method: 'POST',
      path: `/scale/v1/task/${ENCODED_TASK_ID}/audit`, json: { accepted: false, comments: 'a cat' },
      reply: { ...SCALE_TASK, customer_review_status: 'rejected' }, task: true },
    { name: 'tasks.setTags', call: () => api.tasks.setTags(TASK_ID, ['cute', 'small']), method: 'POST',
      path: `/scale/v1/task/${ENCODED_TASK_ID}/tags`, json: ['cute', 'small'], reply: SCALE_TASK, task: true,
      retried: true },
    { name: 'tasks.addTags', call: () => api.tasks.addTags(TASK_ID, new Set(['cute'])), method: 'PUT',
      path: `/scale/v1/task/${ENCODED_TASK_ID}/tags`, json: ['cute'], reply: SCALE_TASK, task: true, retried: true },
    { name: 'tasks.deleteTags', call: () => api.tasks.deleteTags(TASK_ID, ['small']), method: 'DELETE',
      path: `/scale/v1/task/${ENCODED_TASK_ID}/tags`, json: ['small'], reply: SCALE_TASK, task: true, retried: true },
    { name: 'tasks.setMetadata', call: () => api.tasks.setMetadata(TASK_ID, { order: 7 }), method: 'POST',
      path: `/scale/v1/task/${ENCODED_TASK_ID}/setMetadata`, json: { order: 7 },
      reply: { ...SCALE_TASK, metadata: { order: 7 } }, task: true, retried: true },
    { name: 'tasks.setUniqueId', call: () => api.tasks.setUniqueId(TASK_ID, 'order-1'), method: 'POST',
      path: `/scale/v1/task/${ENCODED_TASK_ID}/unique_id`, json: { unique_id: 'order-1' },
      reply: { ...SCALE_TASK, unique_id: 'order-1' }, task: true, retried: true },
    { name: 'tasks.setUniqueId(null)', call: () => api.tasks.setUniqueId(TASK_ID, null), method: 'DELETE',
      path: `/scale/v1/task/${ENCODED_TASK_ID}/unique_id`, reply: SCALE_TASK, task: true, retried: true },
    { name: 'tasks.cancel({ clearUniqueId })', call: () => api.tasks.cancel(TASK_ID, { clearUniqueId: true }),
      method: 'POST', path: `/scale/v1/task/${ENCODED_TASK_ID}/cancel`, query: { clear_unique_id: 'true' },
      reply: { ...SCALE_TASK, status: 'canceled' }, task: true, retried: true },
    { name: 'tasks.createCategorization in a project', call: () => api.tasks.createCategorization(
      { project: 'kittens', batch: NAME, tags: ['cute'], attachment: 'http://www.example.com/kitten.jpg' }),
    method: 'POST', path: '/scale/v1/task/categorization',
    json: { project: 'kittens', batch: NAME, tags: ['cute'], attachment: 'http://www.example.com/kitten.jpg' },
    reply: SCALE_TASK, task: true },
  ];

  for (const { name, call, method, path, query = {}, json, reply, task } of CALLS) {
    test(`${name} is ${method} ${path}, and answers what the server sent`, async () => {
      server.script({ body: reply });
      const answer = await call();
      assert.equal(server.requests.length, 1);
      const [request] = server.requests;
      assert.deepEqual([request.method, request.path, request.query], [method, path, query]);
      if (json === undefined) assert.equal(request.body, '');
      else assert.deepEqual(sentJson(request), json);
      if (task) {
        assert.ok(answer instanceof humantask.Task);
        assert.deepEqual({ ...answer }, reply);
      } else {
        assert.deepEqual(answer, reply);
      }
    });
  }

  for (const { name, call, path } of CALLS) {
    test(`${name}: a 404 is NotFound, not retried`, async () => {
      server.script({ status: 404, body: errorBody(404, `nothing at ${path}`), headers: { 'X-Request-Id': 'req-404' } });
      const error = await rejection(call());
      assert.equal(error.constructor, humantask.NotFound);
      assert.deepEqual([error.statusCode, error.message, error.requestId], [404, `nothing at ${path}`, 'req-404']);
      assert.equal(server.requests.length, 1);
    });
  }

  for (const { name, call, reply, retried = false } of CALLS) {
    test(`${name} is ${retried ? '' : 'not '}retried after a 503`, async () => {
      server.script({ status: 503, body: errorBody(503, 'busy') }, { body: reply });
      if (retried) {
        await call();
        assert.equal(server.requests.length, 2);
        assert.equal(server.requests[0].body, server.requests[1].body);
      } else {
        assert.ok(await rejection(call()) instanceof humantask.ServiceUnavailable);
        assert.equal(server.requests.length, 1);
      }
    });
  }

  test('what is not given is not sent', async () => {
    server.script({ body: PROJECT });
    await api.projects.create('kittens');
    assert.deepEqual(sentJson(server.requests[0]), { type: 'categorization', name: 'kittens' });
    server.script({ body: BATCH });
    await api.batches.create('kittens', 'week 26');
    assert.deepEqual(sentJson(server.requests[0]), { project: 'kittens', name: 'week 26' });
    server.script({ body: SCALE_TASK });
    await api.tasks.audit(TASK_ID, true);
    assert.deepEqual(sentJson(server.requests[0]), { accepted: true });
  });

  test('setParams with { patch: true } says so; set_params is the same call', async () => {
    server.script({ body: PROJECT });
    await api.projects.setParams(NAME, { instruction: 'Kitten or cat?' }, { patch: true });
    assert.deepEqual(sentJson(server.requests[0]), { instruction: 'Kitten or cat?', patch: true });
    server.script({ body: PROJECT });
    await api.projects.set_params('kittens', { categories: ['kitten', 'cat'] }, { patch: true });
    assert.equal(server.requests[0].path, '/scale/v1/projects/kittens/setParams');
    assert.deepEqual(sentJson(server.requests[0]), { categories: ['kitten', 'cat'], patch: true });
  });

  test('an empty or missing name or task id is a TypeError, and nothing is sent', async () => {
    server.script({ body: {} });
    for (const call of [() => api.projects.get(''), () => api.projects.setParams(undefined, {}),
      () => api.batches.get(''), () => api.batches.finalize(null), () => api.batches.status(7),
      () => api.tasks.audit('', true), () => api.tasks.addTags(undefined, ['cute'])]) {
      assert.throws(call, TypeError);
    }
    assert.equal(server.requests.length, 0);
  });

  test('/scale/v1 is beside the base URL\'s /v1, under its path prefix', async () => {
    server.script({ body: PROJECT });
    await humantask.authorize('k', { baseUrl: `${server.url}/humantask/v1/` }).projects.get('kittens');
    assert.equal(server.requests[0].path, '/humantask/scale/v1/projects/kittens');
  });

  const batches = (...names) => names.map((name) => ({ ...BATCH, name }));
  const collect = async (iterable) => {
    const items = [];
    for await (const item of iterable) items.push(item);
    return items;
  };

  test('batches.list is lazy, page by page, by offset', async () => {
    server.script({ body: { docs: batches('a', 'b'), totalDocs: 5, limit: 100, offset: 0, has_more: true } },
      { body: { docs: batches('c', 'd'), totalDocs: 5, limit: 100, offset: 2, has_more: true } },
      { body: { docs: batches('e'), totalDocs: 5, limit: 100, offset: 4, has_more: false } });
    const listed = api.batches.list({ project: 'kittens', status: 'staging' });
    assert.equal(server.requests.length, 0);
    assert.equal((await listed.next()).value.name, 'a');
    assert.equal(server.requests.length, 1);
    assert.equal((await listed.next()).value.name, 'b');
    assert.equal(server.requests.length, 1); // page 2 not asked for yet
    assert.equal((await listed.next()).value.name, 'c');
    assert.equal(server.requests.length, 2);
    const rest = [];
    for await (const batch of listed) rest.push(batch.name);
    assert.deepEqual(rest, ['d', 'e']);
    assert.deepEqual(server.requests.map((r) => [r.method, r.path, r.query]), [0, 2, 4].map((offset) => [
      'GET', '/scale/v1/batches', { offset: String(offset), limit: '100', project: 'kittens', status: 'staging' }]));
  });

  test('batches.list: a for await that stops early asks for no more pages', async () => {
    server.script({ body: { docs: batches('a', 'b'), has_more: true } }, { body: { docs: batches('c'), has_more: false } });
    for await (const batch of api.batches.list()) {
      assert.equal(batch.name, 'a');
      break;
    }
    assert.equal(server.requests.length, 1);
    assert.deepEqual(server.requests[0].query, { offset: '0', limit: '100' });
  });

  test('batches.list: an empty page ends it, even with has_more; a page is retried; a 404 is NotFound', async () => {
    server.script({ body: { docs: [], has_more: true } }, { body: { docs: batches('a'), has_more: false } });
    assert.deepEqual(await collect(api.batches.list()), []);
    assert.equal(server.requests.length, 1);

    server.script({ body: { docs: batches('a'), has_more: true } }, { status: 503, body: errorBody(503, 'busy') },
      { body: { docs: batches('b'), has_more: false } });
    assert.deepEqual((await collect(api.batches.list())).map((b) => b.name), ['a', 'b']);
    assert.equal(server.requests.length, 3);
    assert.deepEqual(server.requests.map((r) => r.query.offset), ['0', '1', '1']);

    server.script({ status: 404, body: errorBody(404, 'no project named nowhere') });
    const error = await rejection(collect(api.batches.list({ project: 'nowhere' })));
    assert.equal(error.constructor, humantask.NotFound);
    assert.equal(error.message, 'no project named nowhere');
    assert.equal(server.requests.length, 1);
  });
});

describe('no server', () => {
  test('a connection error after the retries', async () => {
    const gone = await startScriptedServer();
    await gone.close();
    const api = humantask.authorize('k', { baseUrl: gone.url, maxRetries: 1, ...FAST });
    const error = await rejection(api.tasks.get(TASK.task_id));
    assert.ok(error instanceof humantask.APIConnectionError);
    assert.equal(error.statusCode, null);
    assert.equal(error.requestId, null);
  });
});

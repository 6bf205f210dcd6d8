'use strict';
// The client on its own, against a scripted local HTTP server (no stack needed):
// configuration, retries, errors, pagination and forward compatibility.
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

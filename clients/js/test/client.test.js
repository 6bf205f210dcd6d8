'use strict';
// The JavaScript client against a running humantask: Scale's v1 calls, every error class
// with its request id, retries on the gateway's real 429 and 503, lazy pages.
const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  env, baseUrl, apiKey, missingStack, BIG_OR_SMALL, humantask, cancelPending, answeredCount,
  spendRateLimit,
} = require('../testing/stack');

const SEED_CREATE = {
  callback_url: 'http://www.example.com/callback',
  instruction: 'Is this company public or private?',
  attachment_type: 'website',
  attachment: 'http://www.google.com/',
  categories: ['public', 'private'],
};
const UNKNOWN_ID = '0123456789abcdef01234567';

// The id the gateway gives a request when the caller sends none (X-Request-Id).
const REQUEST_ID = /^[0-9a-f]{32}$/;

describe('humantask (JavaScript) against the stack', { skip: missingStack }, () => {
  const api = missingStack ? null : humantask.authorize(apiKey, { baseUrl });
  after(() => cancelPending(api));

  async function rejects(promise, ErrorClass, status) {
    const error = await promise.then(() => assert.fail('expected an error'), (e) => e);
    assert.ok(error instanceof ErrorClass, `${error.name}: ${error.message}`);
    assert.ok(error instanceof humantask.HumantaskError);
    assert.equal(error.statusCode, status);
    if (status) {
      assert.deepEqual(error.body, { status_code: status, error: error.message });
      assert.match(error.requestId, REQUEST_ID);
    }
    return error;
  }

  test("Scale's v1 createCategorization, then get", async () => {
    const task = await api.tasks.createCategorization(SEED_CREATE);
    assert.ok(task instanceof humantask.Task);
    assert.match(task.task_id, /^[0-9a-f]{24}$/);
    assert.equal(task.status, 'pending');
    assert.equal(task.type, 'categorization');
    assert.deepEqual(task.params, { attachment_type: 'website', attachment: 'http://www.google.com/',
      categories: ['public', 'private'] });
    assert.match(task.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(await api.tasks.get(task.task_id), task);
  });

  test('the base URL and the key come from HUMANTASK_URL and HUMANTASK_API_KEY', async () => {
    assert.equal(env.HUMANTASK_URL, baseUrl);
    const fromEnv = humantask.authorize();
    assert.equal(fromEnv.baseUrl, `${baseUrl}/v1/`);
    const task = await fromEnv.tasks.createCategorization(BIG_OR_SMALL);
    assert.equal((await fromEnv.tasks.get(task.task_id)).task_id, task.task_id);
  });

  test('list follows the Link header across pages, and filters', async () => {
    const unique = `js-${Date.now()}-`;
    const created = [];
    for (let n = 0; n < 5; n += 1) {
      created.push(await api.tasks.createCategorization({ ...BIG_OR_SMALL, attachment: `item ${n}` }));
    }
    const newestFirst = created.map((task) => task.task_id).reverse();
    const listed = await api.tasks.list({ limit: 2 }).toArray();
    assert.deepEqual(listed.slice(0, 5).map((task) => task.task_id), newestFirst);
    assert.ok(listed.every((task) => task instanceof humantask.Task));

    const streamed = [];
    for await (const task of api.tasks.list({ limit: 2, start_time: created[0].created_at })) {
      streamed.push(task.task_id);
    }
    assert.deepEqual(streamed, newestFirst);
    const page = await api.tasks.listPage({ limit: 2, start_time: created[0].created_at });
    assert.deepEqual(page.items.map((task) => task.task_id), newestFirst.slice(0, 2));
    assert.ok(page.hasNext && page.nextToken);
    const again = await api.tasks.listPage({ limit: 2, start_time: created[0].created_at, next_token: page.nextToken });
    assert.deepEqual(again.items.map((task) => task.task_id), newestFirst.slice(2, 4));
    assert.deepEqual((await page.nextPage()).items, again.items);
    const window = await api.tasks.list({ start_time: created[1].created_at, end_time: created[2].created_at })
      .toArray();
    assert.deepEqual(window.map((task) => task.task_id), [created[1].task_id]);
    const mine = await api.tasks.createCategorization({ ...BIG_OR_SMALL, unique_id: `${unique}1` });
    assert.deepEqual((await api.tasks.list({ unique_id: `${unique}1`, status: 'pending' }).toArray())
      .map((task) => task.task_id), [mine.task_id]);
    assert.deepEqual(await api.tasks.list({ status: 'completed', start_time: created[0].created_at }).toArray(), []);
  });

  test('list asks the gateway for page 2 only when the caller gets to it', { skip: !env.HUMANTASK_METRICS_URL && 'set HUMANTASK_METRICS_URL' }, async () => {
    const first = await api.tasks.createCategorization(BIG_OR_SMALL);
    for (let n = 0; n < 2; n += 1) await api.tasks.createCategorization(BIG_OR_SMALL);
    const listRequests = () => answeredCount(env.HUMANTASK_METRICS_URL, { method: 'GET', route: '/v1/tasks', status: 200 });
    const before = await listRequests();
    const iterator = api.tasks.list({ limit: 2, start_time: first.created_at })[Symbol.asyncIterator]();
    assert.equal(await listRequests(), before);
    await iterator.next();
    await iterator.next();
    assert.equal(await listRequests(), before + 1);
    await iterator.next();
    assert.equal(await listRequests(), before + 2);
    await iterator.return();
  });

  test('cancel, and cancel again', async () => {
    const task = await api.tasks.createCategorization(BIG_OR_SMALL);
    const canceled = await api.tasks.cancel(task.task_id);
    assert.equal(canceled.status, 'canceled');
    assert.ok(canceled.canceled_at);
    assert.deepEqual(await api.tasks.cancel(task.task_id), canceled);
    assert.equal((await api.tasks.get(task.task_id)).status, 'canceled');
  });

  test('400: BadRequest names the parameter', async () => {
    const error = await rejects(api.tasks.createCategorization({ ...SEED_CREATE, categories: ['public'] }),
      humantask.BadRequest, 400);
    assert.match(error.message, /categories/);
  });

  test('401: Unauthorized for an unknown key', async () => {
    const stranger = humantask.authorize('live_not_a_real_key', { baseUrl });
    await rejects(stranger.tasks.get(UNKNOWN_ID), humantask.Unauthorized, 401);
  });

  test('404: NotFound for an unknown task', async () => {
    const error = await rejects(api.tasks.get(UNKNOWN_ID), humantask.NotFound, 404);
    assert.match(error.message, new RegExp(UNKNOWN_ID));
    await rejects(api.tasks.cancel(UNKNOWN_ID), humantask.NotFound, 404);
  });

  test('405: MethodNotAllowed', async () => {
    await rejects(api.request('DELETE', 'tasks'), humantask.MethodNotAllowed, 405);
  });

  test('409: Conflict for a unique_id reused with other parameters', async () => {
    const uniqueId = `js-clash-${Date.now()}`;
    const first = await api.tasks.createCategorization({ ...BIG_OR_SMALL, unique_id: uniqueId });
    const error = await rejects(
      api.tasks.createCategorization({ ...BIG_OR_SMALL, attachment: 'bus', unique_id: uniqueId }),
      humantask.Conflict, 409);
    assert.match(error.message, new RegExp(first.task_id));
  });

  test('413: PayloadTooLarge over 1 MiB', async () => {
    const error = await rejects(
      api.tasks.createCategorization({ ...BIG_OR_SMALL, instruction: 'x'.repeat(1024 * 1024 + 1) }),
      humantask.PayloadTooLarge, 413);
    assert.match(error.message, /too large/);
  });

  test('415: UnsupportedMediaType', async () => {
    const error = await rejects(
      api.request('POST', 'task/categorize', { body: 'car', headers: { 'Content-Type': 'text/plain' } }),
      humantask.UnsupportedMediaType, 415);
    assert.match(error.message, /Content-Type/);
  });

  test('503: retried, then ServiceUnavailable; a create without unique_id is sent once', { skip: !env.HUMANTASK_UNAVAILABLE_METRICS_URL && 'set HUMANTASK_UNAVAILABLE_URL and its METRICS_URL' }, async () => {
    const busy = humantask.authorize(apiKey, { baseUrl: env.HUMANTASK_UNAVAILABLE_URL, maxRetries: 2,
      backoffMs: 10, maxBackoffMs: 50 });
    const unavailable = () => answeredCount(env.HUMANTASK_UNAVAILABLE_METRICS_URL, { status: 503 });
    let before = await unavailable();
    const error = await rejects(busy.tasks.get(UNKNOWN_ID), humantask.ServiceUnavailable, 503);
    assert.match(error.message, /did not answer in time/);
    assert.ok(error instanceof humantask.ServerError);
    assert.ok(error.retryAfterMs >= 1000);
    assert.equal(await unavailable() - before, 3); // the first and maxRetries more
    before = await unavailable();
    await rejects(busy.tasks.createCategorization(BIG_OR_SMALL), humantask.ServiceUnavailable, 503);
    assert.equal(await unavailable() - before, 1);
  });

  test('429: retried after Retry-After; a create without unique_id is not', { skip: !env.HUMANTASK_RATE_LIMITED_METRICS_URL && 'set HUMANTASK_RATE_LIMITED_URL, its API_KEY and METRICS_URL' }, async () => {
    const url = env.HUMANTASK_RATE_LIMITED_URL;
    const key = env.HUMANTASK_RATE_LIMITED_API_KEY;
    const limited = humantask.authorize(key, { baseUrl: url, maxRetries: 3, maxBackoffMs: 5000 });
    const tooMany = () => answeredCount(env.HUMANTASK_RATE_LIMITED_METRICS_URL, { status: 429 });
    await spendRateLimit(url, key);
    const before = await tooMany();
    const error = await rejects(limited.tasks.createCategorization(BIG_OR_SMALL), humantask.RateLimited, 429);
    assert.ok(error.retryAfterMs >= 1000, `${error.retryAfterMs}`);
    assert.equal(await tooMany() - before, 1);

    const uniqueId = `js-limited-${Date.now()}`;
    const task = await limited.tasks.createCategorization({ ...BIG_OR_SMALL, unique_id: uniqueId });
    assert.equal(task.unique_id, uniqueId);
    assert.ok(await tooMany() - before >= 2, 'the create with unique_id met a 429 and was retried');
    await spendRateLimit(url, key);
    const seen = await tooMany();
    assert.equal((await limited.tasks.get(task.task_id)).task_id, task.task_id);
    assert.ok(await tooMany() > seen, 'the get met a 429 and was retried');
  });

  test('no server: APIConnectionError', async () => {
    const nobody = humantask.authorize(apiKey, { baseUrl: 'http://127.0.0.1:9', maxRetries: 1, backoffMs: 10 });
    await rejects(nobody.tasks.get(UNKNOWN_ID), humantask.APIConnectionError, null);
  });
});

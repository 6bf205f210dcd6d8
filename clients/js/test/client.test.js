'use strict';
// The JavaScript client against a running humantask: the seed's calls and every error class.
const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  env, baseUrl, apiKey, missingStack, BIG_OR_SMALL, scale, cancelPending,
} = require('../testing/stack');

const SEED_CREATE = {
  callback_url: 'http://www.example.com/callback',
  instruction: 'Is this company public or private?',
  attachment_type: 'website',
  attachment: 'http://www.google.com/',
  categories: ['public', 'private'],
};
const UNKNOWN_ID = '0123456789abcdef01234567';

describe('scale (JavaScript) against humantask', { skip: missingStack }, () => {
  const api = missingStack ? null : scale.authorize(apiKey, { baseUrl });
  after(() => cancelPending(api));

  async function rejects(promise, ErrorClass, status) {
    const error = await promise.then(() => assert.fail('expected an error'), (e) => e);
    assert.ok(error instanceof ErrorClass, `${error.name}: ${error.message}`);
    assert.ok(error instanceof scale.ScaleError);
    assert.equal(error.statusCode, status);
    if (status) assert.deepEqual(error.body, { status_code: status, error: error.message });
    return error;
  }

  test("the seed's createCategorization, then get", async () => {
    const task = await api.tasks.createCategorization(SEED_CREATE);
    assert.ok(task instanceof scale.Task);
    assert.match(task.task_id, /^[0-9a-f]{24}$/);
    assert.equal(task.status, 'pending');
    assert.equal(task.type, 'categorization');
    assert.deepEqual(task.params, { attachment_type: 'website', attachment: 'http://www.google.com/',
      categories: ['public', 'private'] });
    assert.match(task.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(await api.tasks.get(task.task_id), task);
  });

  test('the base URL comes from SCALE_API_URL, with or without /v1', async () => {
    const saved = env.SCALE_API_URL;
    env.SCALE_API_URL = `${baseUrl}/v1/`;
    try {
      const fromEnv = scale.authorize(apiKey);
      assert.equal(fromEnv.baseUrl, `${baseUrl}/v1/`);
      const task = await fromEnv.tasks.createCategorization(BIG_OR_SMALL);
      assert.equal((await fromEnv.tasks.get(task.task_id)).task_id, task.task_id);
    } finally {
      if (saved === undefined) delete env.SCALE_API_URL; else env.SCALE_API_URL = saved;
    }
  });

  test('list follows the Link header across pages, and filters', async () => {
    const unique = `js-${Date.now()}-`;
    const created = [];
    for (let n = 0; n < 5; n += 1) {
      created.push(await api.tasks.createCategorization({ ...BIG_OR_SMALL, attachment: `item ${n}` }));
    }
    const newestFirst = created.map((task) => task.task_id).reverse();
    const listed = await api.tasks.list({ limit: 2 });
    assert.deepEqual(listed.slice(0, 5).map((task) => task.task_id), newestFirst);
    assert.ok(listed.every((task) => task instanceof scale.Task));

    const streamed = [];
    for await (const task of api.tasks.list({ limit: 2, start_time: created[0].created_at })) {
      streamed.push(task.task_id);
    }
    assert.deepEqual(streamed, newestFirst);
    const window = await api.tasks.list({ start_time: created[1].created_at, end_time: created[2].created_at });
    assert.deepEqual(window.map((task) => task.task_id), [created[1].task_id]);
    const mine = await api.tasks.createCategorization({ ...BIG_OR_SMALL, unique_id: `${unique}1` });
    assert.deepEqual((await api.tasks.list({ unique_id: `${unique}1`, status: 'pending' }))
      .map((task) => task.task_id), [mine.task_id]);
    assert.deepEqual(await api.tasks.list({ status: 'completed', start_time: created[0].created_at }), []);
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
      scale.BadRequest, 400);
    assert.match(error.message, /categories/);
  });

  test('401: Unauthorized for an unknown key', async () => {
    const stranger = scale.authorize('live_not_a_real_key', { baseUrl });
    await rejects(stranger.tasks.get(UNKNOWN_ID), scale.Unauthorized, 401);
  });

  test('404: NotFound for an unknown task', async () => {
    const error = await rejects(api.tasks.get(UNKNOWN_ID), scale.NotFound, 404);
    assert.match(error.message, new RegExp(UNKNOWN_ID));
    await rejects(api.tasks.cancel(UNKNOWN_ID), scale.NotFound, 404);
  });

  test('405: MethodNotAllowed', async () => {
    await rejects(api.request('DELETE', 'tasks'), scale.MethodNotAllowed, 405);
  });

  test('409: Conflict for a unique_id reused with other parameters', async () => {
    const uniqueId = `js-clash-${Date.now()}`;
    const first = await api.tasks.createCategorization({ ...BIG_OR_SMALL, unique_id: uniqueId });
    const error = await rejects(
      api.tasks.createCategorization({ ...BIG_OR_SMALL, attachment: 'bus', unique_id: uniqueId }),
      scale.Conflict, 409);
    assert.match(error.message, new RegExp(first.task_id));
  });

  test('413: PayloadTooLarge over 1 MiB', async () => {
    const error = await rejects(
      api.tasks.createCategorization({ ...BIG_OR_SMALL, instruction: 'x'.repeat(1024 * 1024 + 1) }),
      scale.PayloadTooLarge, 413);
    assert.match(error.message, /too large/);
  });

  test('415: UnsupportedMediaType', async () => {
    const error = await rejects(
      api.request('POST', 'task/categorize', { body: 'car', headers: { 'Content-Type': 'text/plain' } }),
      scale.UnsupportedMediaType, 415);
    assert.match(error.message, /Content-Type/);
  });

  test('503: ServiceUnavailable after the retries', { skip: !env.HUMANTASK_UNAVAILABLE_URL && 'set HUMANTASK_UNAVAILABLE_URL' }, async () => {
    const busy = scale.authorize(apiKey, { baseUrl: env.HUMANTASK_UNAVAILABLE_URL, maxRetries: 2,
      backoffMs: 10, maxBackoffMs: 50 });
    const error = await rejects(busy.tasks.get(UNKNOWN_ID), scale.ServiceUnavailable, 503);
    assert.match(error.message, /did not answer in time/);
  });

  test('no server: APIConnectionError', async () => {
    const nobody = scale.authorize(apiKey, { baseUrl: 'http://127.0.0.1:9', maxRetries: 1, backoffMs: 10 });
    await rejects(nobody.tasks.get(UNKNOWN_ID), scale.APIConnectionError, null);
  });
});

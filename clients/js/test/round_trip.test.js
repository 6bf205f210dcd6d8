'use strict';
// The whole round trip: create, a worker completes the task, the signed callback arrives.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Webhook } = require('standardwebhooks');
const {
  env, baseUrl, apiKey, BIG_OR_SMALL, humantask, roundTripMissing, completeAsWorker, startReceiver,
  waitUntil, cancelPending,
} = require('../testing/stack');

describe('round trip through a worker and the callback', async () => {
  const missing = await roundTripMissing();
  const api = missing ? null : humantask.authorize(apiKey, { baseUrl });
  let receiver;
  before(async () => { if (!missing) receiver = await startReceiver(); });
  after(async () => {
    if (receiver) await receiver.close();
    if (api) await cancelPending(api);
  });

  for (const callbackFormat of ['form', 'json']) {
    test(`${callbackFormat} callback`, { skip: missing }, async () => {
      const task = await api.tasks.createCategorization({
        ...BIG_OR_SMALL, callback_url: receiver.url, callback_format: callbackFormat,
      });
      assert.deepEqual(await api.tasks.callbacks(task.task_id), []);
      await completeAsWorker(task.task_id, 'big');
      const callback = await receiver.waitFor((r) => r.headers['x-callback-task-id'] === task.task_id, 60000);

      const secret = env.HUMANTASK_CALLBACK_SECRET;
      assert.ok(humantask.verifyCallback(secret, callback.headers, callback.body));
      // The official Standard Webhooks library verifies the real delivery too.
      assert.doesNotThrow(() => new Webhook(secret).verify(callback.body, callback.headers, { jsonParse: false }));
      assert.equal(callback.headers['webhook-id'], task.task_id);
      assert.ok(!humantask.verifyCallback('whsec_wrong', callback.headers, callback.body));
      const payload = humantask.parseCallback(callback.body, callback.headers['content-type']);
      assert.equal(payload.task_id, task.task_id);
      assert.equal(payload.response.category, 'big');
      assert.deepEqual(payload.task.params.categories, ['big', 'small']);

      const done = await api.tasks.get(task.task_id);
      assert.equal(done.status, 'completed');
      assert.ok(done.completed_at);
      assert.deepEqual(done.response, { category: 'big', status_code: 200 });
      const attempt = await waitUntil(
        async () => (await api.tasks.callbacks(task.task_id)).find((a) => a.delivered),
        30000, 'the delivered callback in the log');
      assert.equal(attempt.attempt, 1);
      assert.equal(attempt.status_code, 200);

      const error = await api.tasks.cancel(task.task_id).then(() => assert.fail('canceled'), (e) => e);
      assert.ok(error instanceof humantask.Conflict);
      assert.equal(error.statusCode, 409);
    });
  }
});

'use strict';
// The callback helpers, checked against the official Standard Webhooks library (npm
// `standardwebhooks`, a devDependency: `npm ci` first). No running stack needed.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const { Webhook } = require('standardwebhooks');
const humantask = require('humantask');

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'; // the Standard Webhooks spec's example
const BODY = Buffer.from('task_id=abc&response[category]=big');

function headersAt(timestamp, { secret = SECRET, body = BODY, msgId = 'msg_1' } = {}) {
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': humantask.sign(secret, msgId, timestamp, body),
  };
}

describe('verifyCallback and sign (Standard Webhooks)', () => {
  test('sign is what the official library signs', () => {
    const official = new Webhook(SECRET);
    assert.equal(humantask.sign(SECRET, 'msg_1', 1_700_000_000, BODY),
      official.sign('msg_1', new Date(1_700_000_000 * 1000), BODY));
  });

  test('the official library verifies what sign made, and verifyCallback what it made', () => {
    const now = Math.floor(Date.now() / 1000);
    const official = new Webhook(SECRET);
    assert.doesNotThrow(() => official.verify(BODY, headersAt(now), { jsonParse: false }));
    const signature = official.sign('msg_2', new Date(now * 1000), BODY);
    const headers = { 'Webhook-Id': 'msg_2', 'Webhook-Timestamp': String(now), 'Webhook-Signature': signature };
    assert.equal(humantask.verifyCallback(SECRET, headers, BODY), true);
    assert.equal(humantask.verifyCallback(SECRET, new Headers(headers), BODY), true);
  });

  test('another secret, body, id or a stale time is refused', () => {
    const now = 1_700_000_000;
    const headers = headersAt(now);
    assert.equal(humantask.verifyCallback(SECRET, headers, BODY, { now }), true);
    assert.equal(humantask.verifyCallback(`whsec_${'A'.repeat(44)}`, headers, BODY, { now }), false);
    assert.equal(humantask.verifyCallback(SECRET, headers, Buffer.from(`${BODY}x`), { now }), false);
    assert.equal(humantask.verifyCallback(SECRET, { ...headers, 'webhook-id': 'msg_2' }, BODY, { now }), false);
    assert.equal(humantask.verifyCallback(SECRET, headers, BODY, { now: now + 301 }), false);
    assert.equal(humantask.verifyCallback(SECRET, headers, BODY, { now: now - 301 }), false);
    assert.equal(humantask.verifyCallback(SECRET, headers, BODY, { toleranceSeconds: null, now: 0 }), true);
    const several = { ...headers, 'webhook-signature': `v1,bm9wZQ== ${headers['webhook-signature']}` };
    assert.equal(humantask.verifyCallback(SECRET, several, BODY, { now }), true);
  });

  for (const timestamp of [
    'x', '', ' 1700000000', '1700000000.5', '-1700000000', '1'.repeat(40), '0x6553f100',
    '\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660', // Arabic-Indic digits
    '\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10', // fullwidth digits
  ]) {
    test(`a malformed timestamp ${JSON.stringify(timestamp)} is false, not an exception`, () => {
      const headers = { ...headersAt(1_700_000_000), 'webhook-timestamp': timestamp };
      assert.equal(humantask.verifyCallback(SECRET, headers, BODY, { toleranceSeconds: null }), false);
      assert.equal(humantask.verifyCallback(SECRET, headers, BODY), false);
    });
  }

  test('missing headers are false, not an exception', () => {
    assert.equal(humantask.verifyCallback(SECRET, {}, BODY), false);
    assert.equal(humantask.verifyCallback(SECRET, { 'webhook-signature': [] }, BODY), false);
  });
});

describe('parseCallback', () => {
  test('decodes the bracket-nested form', () => {
    const form = 'task[params][categories][0]=big&task[params][categories][1]=small'
      + '&response[category]=big&response[status_code]=200&task_id=abc';
    assert.deepEqual(humantask.parseCallback(form), {
      task: { params: { categories: ['big', 'small'] } },
      response: { category: 'big', status_code: '200' },
      task_id: 'abc',
    });
  });

  test('never writes to __proto__, constructor or prototype', () => {
    const form = '__proto__[polluted]=1&task[__proto__][polluted]=1&constructor[prototype][polluted]=1'
      + '&task[constructor][prototype][polluted]=1&a[prototype]=1&task[toString]=x&task_id=abc';
    const parsed = humantask.parseCallback(form);
    assert.equal({}.polluted, undefined);
    assert.equal(Object.prototype.polluted, undefined);
    assert.deepEqual(parsed, { task: { toString: 'x' }, task_id: 'abc' });
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
    assert.equal(Object.getPrototypeOf(parsed.task), Object.prototype);
  });

  test('reads JSON as it is', () => {
    assert.deepEqual(humantask.parseCallback('{"task_id": "abc"}', 'application/json; charset=utf-8'),
      { task_id: 'abc' });
  });
});

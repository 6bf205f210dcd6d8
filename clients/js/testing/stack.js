'use strict';
// What the suites share: where the running stack is (from the environment), a worker
// that completes a task through the worker API, and a real HTTP server for callbacks.
//
//   HUMANTASK_URL              the gateway, e.g. http://localhost:8080        (required)
//   HUMANTASK_API_KEY          a customer's API key                            (required)
//   HUMANTASK_CALLBACK_SECRET  that customer's callback_secret                (round trip)
//   HUMANTASK_WORKER_TOKENS    comma-separated worker tokens                   (round trip)
//   HUMANTASK_METRICS_URL      that gateway's /metrics (its HEALTH_PORT): the requests it answered
//   HUMANTASK_UNAVAILABLE_URL  a gateway that answers 503, and ..._METRICS_URL its /metrics
//   HUMANTASK_RATE_LIMITED_URL a gateway with a low RATE_LIMIT_PER_SECOND, ..._API_KEY a
//                              customer's key there, ..._METRICS_URL its /metrics
// The suites skip what their variables are missing for.

const http = require('node:http');
const humantask = require('humantask');

const env = process.env;
const baseUrl = env.HUMANTASK_URL;
const apiKey = env.HUMANTASK_API_KEY;
const missingStack = !(baseUrl && apiKey) && 'set HUMANTASK_URL and HUMANTASK_API_KEY to run against a stack';
const workerTokens = (env.HUMANTASK_WORKER_TOKENS || '').split(',').filter(Boolean);

// Tasks no test completes call back a closed port on this machine, never the network.
const NOWHERE = 'http://127.0.0.1:9/never-called';
const BIG_OR_SMALL = {
  callback_url: NOWHERE,
  instruction: 'Would you say this item is big or small?',
  attachment_type: 'text',
  attachment: 'car',
  categories: ['big', 'small'],
};

function basic(token) {
  return { Authorization: `Basic ${Buffer.from(`${token}:`).toString('base64')}` };
}

/** Why the round trip cannot run against this stack, or false. */
async function roundTripMissing() {
  if (missingStack) return missingStack;
  if (!env.HUMANTASK_CALLBACK_SECRET || workerTokens.length === 0) {
    return 'set HUMANTASK_CALLBACK_SECRET and HUMANTASK_WORKER_TOKENS for the round trip';
  }
  const claim = await fetch(new URL('/v1/work/claim', baseUrl), { method: 'POST' });
  if (claim.status === 404) return 'the worker API is not there yet: POST /v1/work/claim answers 404';
  return false;
}

/**
 * Claim `taskId` and submit `category`, as the workbench would. The pool is FIFO: a worker
 * that claims an older task keeps it while the next one claims; all are released after.
 */
async function completeAsWorker(taskId, category) {
  const held = [];
  const post = (path, token, json) => fetch(new URL(path, baseUrl), {
    method: 'POST',
    headers: { ...basic(token), ...(json ? { 'Content-Type': 'application/json' } : {}) },
    body: json ? JSON.stringify(json) : undefined,
  });
  try {
    for (const token of workerTokens) {
      const claim = await post('/v1/work/claim', token);
      if (claim.status !== 200) throw new Error(`${taskId} not claimed: ${claim.status} ${await claim.text()}`);
      const claimed = await claim.json();
      if (claimed.task_id === taskId) {
        const submit = await post(`/v1/work/${taskId}/submit`, token, { category });
        if (submit.status !== 200) throw new Error(`submit: ${submit.status} ${await submit.text()}`);
        return submit.json();
      }
      held.push([token, claimed.task_id]);
    }
    throw new Error(`older pending tasks fill every spare worker: ${JSON.stringify(held)}`);
  } finally {
    for (const [token, other] of held) await (await post(`/v1/work/${other}/release`, token)).arrayBuffer();
  }
}

/** A real HTTP server on 127.0.0.1 that records what is POSTed to it and answers 200. */
async function startReceiver() {
  const received = [];
  const waiters = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url, headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(200).end();
      for (const waiter of waiters.splice(0)) waiter();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/callback`,
    /** The first request that matches, waiting up to `timeoutMs` for it. */
    async waitFor(predicate, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find(predicate);
        if (found) return found;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching callback in ${timeoutMs} ms; got ${received.length}`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, left).unref();
        });
      }
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Poll `check` until it returns something truthy, failing at the deadline. */
async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// A second early, against clock rounding: tasks created from then on are this run's.
const started = new Date(Date.now() - 1000);

/** Leave no pending task of this run behind: the worker pool is shared by every test. */
async function cancelPending(api) {
  for (const task of await api.tasks.list({ status: 'pending', start_time: started }).toArray()) {
    await api.tasks.cancel(task.task_id);
  }
}

/**
 * How many requests a gateway has answered, from its /metrics
 * (humantask_gateway_http_requests_total), for the labels given (method, route, status).
 */
async function answeredCount(metricsUrl, labels) {
  const text = await (await fetch(new URL('/metrics', metricsUrl))).text();
  let total = 0;
  for (const line of text.split('\n')) {
    // Label values may hold braces themselves (route="/v1/task/{task_id}").
    const match = /^humantask_gateway_http_requests_total\{((?:\w+="[^"]*",?)*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const found = Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([name, value]) => found[name] === String(value))) total += Number(match[2]);
  }
  return total;
}

/** Spend a key's whole rate limit: requests until the gateway answers one 429. */
async function spendRateLimit(url, key) {
  for (let n = 0; n < 1000; n += 1) {
    const response = await fetch(new URL('/v1/tasks?limit=1', url), { headers: basic(key) });
    await response.arrayBuffer();
    if (response.status === 429) return;
  }
  throw new Error('no 429 after 1000 requests: is RATE_LIMIT_PER_SECOND low on that gateway?');
}

module.exports = {
  env, baseUrl, apiKey, missingStack, BIG_OR_SMALL, NOWHERE, humantask,
  roundTripMissing, completeAsWorker, startReceiver, waitUntil, cancelPending, answeredCount,
  spendRateLimit,
};

'use strict';
// A real HTTP server on 127.0.0.1 that answers from a script, for the client's edge cases:
//
//   const server = await startScriptedServer();
//   server.script({ status: 503, headers: { 'Retry-After': '1' } }, { status: 200, body: task });
//   ... a client with { baseUrl: server.url }
//   server.requests.length  // 2
//
// Each request takes the next reply; the last one answers everything after. A reply may
// hang up without answering (`hangUp`) or wait before it answers (`delayMs`).

const http = require('node:http');

async function startScriptedServer() {
  let replies = [{ status: 200, body: [] }];
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url, 'http://scripted');
      requests.push({ method: request.method, path: url.pathname,
        query: Object.fromEntries(url.searchParams), headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'), at: performance.now() });
      const reply = replies.length > 1 ? replies.shift() : replies[0];
      setTimeout(() => {
        if (reply.hangUp) { request.socket.destroy(); return; }
        if (response.destroyed) return;
        const payload = reply.body === undefined ? '' : JSON.stringify(reply.body);
        response.writeHead(reply.status ?? 200, { 'Content-Type': 'application/json', ...reply.headers });
        response.end(payload);
      }, reply.delayMs || 0);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    script(...next) { replies = next; requests.length = 0; },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startScriptedServer };

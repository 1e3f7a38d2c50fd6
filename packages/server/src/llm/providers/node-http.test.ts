// The upstream HTTP client against a node:http server in this process (a stand-in upstream): status and
// headers, whole and chunked bodies, keep-alive reuse, an abort before the head and one mid-body.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { postUpstream } from './node-http.js';

let server: Server;
let url: string;
const sockets = new Set<unknown>();

before(async () => {
  server = createServer((req, res) => {
    sockets.add(req.socket);
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      if (req.url === '/slow') return; // never answers
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: one\n\n');
        return; // the rest never comes
      }
      res.writeHead(req.url === '/busy' ? 429 : 200, {
        'retry-after': '3',
        'x-echo-type': req.headers['content-type'] ?? '',
      });
      res.end(`${req.method} ${body} ${req.headers['content-length']}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const never = new AbortController().signal;

test('a POST answers with status, headers and the whole text; connections are kept alive', async () => {
  const r = await postUpstream(`${url}/x`, { 'content-type': 'application/json' }, '{"é":1}', never);
  assert.deepEqual([r.status, r.ok], [200, true]);
  assert.equal(r.headers.get('X-Echo-Type'), 'application/json');
  assert.equal(r.headers.get('missing'), null);
  assert.equal(await r.text(), 'POST {"é":1} 8', 'content-length counts bytes');
  const busy = await postUpstream(`${url}/busy`, {}, '', never);
  assert.deepEqual([busy.status, busy.ok, busy.headers.get('retry-after')], [429, false, '3']);
  await busy.text();
  assert.equal(sockets.size, 1, 'the second request reused the first connection');
});

test('an abort before the head rejects; an abort mid-body ends the body with an error', async () => {
  const ctl = new AbortController();
  const pending = postUpstream(`${url}/slow`, {}, '', ctl.signal);
  setTimeout(() => ctl.abort(), 20);
  await assert.rejects(pending, (e: Error) => e.name === 'AbortError');

  const mid = new AbortController();
  const r = await postUpstream(`${url}/stream`, {}, '', mid.signal);
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const chunk of r.body!) {
      seen.push(Buffer.from(chunk).toString());
      mid.abort();
    }
  });
  assert.deepEqual(seen, ['data: one\n\n']);
});

test('only http and https URLs are taken', async () => {
  await assert.rejects(postUpstream('ftp://x/y', {}, '', never), /not an http\(s\) URL/);
});

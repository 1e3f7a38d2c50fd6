// The lazy per-request logger: no child until a line passes the level, then every line carries the
// request's bindings (request id, the API key id set later); a route's own level is honoured; Fastify
// accepts it as the request logger.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { LazyRequestLogger, lazyChildLoggerFactory } from './lazy-request-logger.js';

function capture(level: string): { log: Logger; lines: Array<Record<string, unknown>>; children: () => number } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level }, sink);
  let children = 0;
  const child = log.child.bind(log);
  log.child = ((b, o) => {
    children++;
    return child(b, o);
  }) as Logger['child'];
  return { log, lines, children: () => children };
}

const flush = () => new Promise((r) => setImmediate(r));

test('LazyRequestLogger: built on the first line its level lets through, with every binding', async () => {
  const c = capture('warn');
  const l = new LazyRequestLogger(c.log, { reqId: 'r-1' }, {});
  l.info({ a: 1 }, 'not written');
  l.debug('not written');
  assert.equal(l.isLevelEnabled('info'), false);
  assert.equal(l.isLevelEnabled('error'), true);
  assert.equal(l.level, 'warn');
  l.setBindings({ apiKey: 'k-7' });
  assert.deepEqual(l.bindings(), { reqId: 'r-1', apiKey: 'k-7' });
  assert.equal(l.materialised, false);
  assert.equal(c.children(), 0);
  l.warn({ code: 'x' }, 'slow');
  l.error('failed');
  await flush();
  assert.equal(l.materialised, true);
  assert.equal(c.children(), 1);
  assert.deepEqual(
    c.lines.map((x) => [x.msg, x.reqId, x.apiKey, x.code]),
    [
      ['slow', 'r-1', 'k-7', 'x'],
      ['failed', 'r-1', 'k-7', undefined],
    ],
  );
  // After it is built, bindings go to the real child.
  l.setBindings({ apiKey: 'k-8' });
  l.fatal('down');
  await flush();
  assert.equal(c.lines.at(-1)!.apiKey, 'k-8');
});

test("LazyRequestLogger: a route's own level (Fastify's logLevel) decides, not the parent's", async () => {
  const c = capture('warn');
  const l = new LazyRequestLogger(c.log, { reqId: 'r-2' }, { level: 'debug' });
  assert.equal(l.level, 'debug');
  assert.equal(l.isLevelEnabled('debug'), true);
  assert.equal(l.isLevelEnabled('trace'), false);
  l.trace('no');
  assert.equal(l.materialised, false);
  l.debug('yes');
  await flush();
  assert.deepEqual(
    c.lines.map((x) => [x.msg, x.reqId]),
    [['yes', 'r-2']],
  );
});

test('lazyChildLoggerFactory in Fastify: quiet requests build no child; a logged error carries the request id', async () => {
  const c = capture('info');
  const app: FastifyInstance = Fastify({
    loggerInstance: c.log as FastifyBaseLogger,
    disableRequestLogging: true,
    genReqId: () => 'req-42',
  });
  app.setChildLoggerFactory(
    lazyChildLoggerFactory as unknown as Parameters<FastifyInstance['setChildLoggerFactory']>[0],
  );
  app.get('/quiet', async (req) => {
    req.log.debug('below info');
    return { ok: true };
  });
  app.get('/loud', async (req) => {
    req.log.error({ why: 'test' }, 'it broke');
    return { ok: false };
  });
  await app.ready();
  const before = c.children();
  assert.equal((await app.inject({ url: '/quiet' })).statusCode, 200);
  assert.equal(c.children(), before, 'no child logger for a request that wrote nothing');
  assert.equal((await app.inject({ url: '/loud' })).statusCode, 200);
  await flush();
  const line = c.lines.find((x) => x.msg === 'it broke');
  assert.ok(line, JSON.stringify(c.lines));
  assert.equal(line.reqId, 'req-42');
  assert.equal(line.why, 'test');
  await app.close();
});

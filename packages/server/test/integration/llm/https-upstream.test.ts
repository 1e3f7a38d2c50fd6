// An HTTPS upstream, as every hosted API is: the PROVIDER EMULATOR (a stand-in for a hosted API) serves
// TLS with a certificate made here by openssl for 127.0.0.1, signed by nobody the system trusts. With the
// provider's `caFile` the gateway answers through it (whole and streamed, through the official `openai`
// client); without it the certificate is refused (verification stays on); an unreadable `caFile`
// stops the start with a message naming the provider.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startLlmEmulator, startTestServer, type LlmEmulator, type TestServer } from '@ferry/test-kit';

const dir = mkdtempSync(join(tmpdir(), 'ferry-llm-tls-'));
const certFile = join(dir, 'cert.pem');
const keyFile = join(dir, 'key.pem');

function gateway(emu: LlmEmulator, provider: Record<string, unknown>): Promise<TestServer> {
  return startTestServer([], {
    'llm.providers': { up: { kind: 'openai', baseUrl: emu.url, maxRetries: 0, ...provider } },
    'llm.routes': { chat: { tiers: { main: [{ provider: 'up', model: 'm' }] }, cache: { exact: false } } },
  });
}

const baseUrl = (t: TestServer) => {
  const a = t.server.app.server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/openai/v1`;
};

describe('an HTTPS upstream with a private CA', () => {
  let emu: LlmEmulator;
  before(async () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
        '-subj',
        '/CN=ferry-test-upstream',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    emu = await startLlmEmulator({ tls: { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') } });
  });
  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('with caFile: whole and streamed answers through TLS', async () => {
    assert.match(emu.url, /^https:/);
    const t = await gateway(emu, { caFile: certFile });
    try {
      await t.server.listen();
      const client = new OpenAI({ baseURL: baseUrl(t), apiKey: 'x', maxRetries: 0 });
      const whole = await client.chat.completions.create({
        model: 'chat',
        messages: [{ role: 'user', content: 'over tls' }],
      });
      assert.equal(whole.choices[0]!.message.content, 'reply: over tls');
      const stream = await client.chat.completions.create({
        model: 'chat',
        messages: [{ role: 'user', content: 'streamed over tls' }],
        stream: true,
      });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      assert.equal(text, 'reply: streamed over tls');
      assert.equal(emu.requests.length, 2, 'both reached the HTTPS upstream');
    } finally {
      await t.close();
    }
  });

  test('without caFile the self-signed certificate is refused: a 502 problem, no answer', async () => {
    const before = emu.requests.length;
    const t = await gateway(emu, {});
    try {
      await t.server.listen();
      const res = await fetch(`${baseUrl(t)}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'untrusted' }] }),
      });
      const body = (await res.json()) as { error?: { message?: string } };
      assert.ok(res.status >= 500 && res.status < 600, `status ${res.status}`);
      assert.match(JSON.stringify(body), /certificate|self.signed|connect/i);
      assert.equal(emu.requests.length, before, 'no request reached the upstream');
    } finally {
      await t.close();
    }
  });

  test('an unreadable or empty caFile stops the start, naming the provider', async () => {
    const empty = join(dir, 'empty.pem');
    writeFileSync(empty, 'not a certificate\n');
    for (const caFile of [join(dir, 'missing.pem'), empty])
      await assert.rejects(
        async () => {
          const t = await gateway(emu, { caFile });
          await t.close();
        },
        (e: Error) => {
          assert.match(e.message, /llm\.providers\.up: cannot use caFile/);
          return true;
        },
      );
  });
});

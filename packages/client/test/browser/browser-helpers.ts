// Shared by the browser tests: `ferry serve` in its own process on a free port (as `npm start` runs
// it) and Debian's Chromium driven by playwright-core.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');
export const shots = join(root, 'test-output/dashboard');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const WAIT = 90_000;
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
/** A skip reason for describe() when there is no Chromium (outside CI). */
export const noChromium: string | false = !existsSync(CHROMIUM) && !process.env.CI && `no Chromium at ${CHROMIUM}`;

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
    s.on('error', rej);
  });
}

async function waitReady(base: string, child: ChildProcess): Promise<void> {
  const until = Date.now() + 180_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`ferry serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('ferry serve did not become ready');
}

export interface Served {
  base: string;
  child: ChildProcess;
}

/** `ferry serve` on a free port over `models` (default: the example repository); resolves when /readyz is 200. */
export async function serve(
  env: Record<string, string>,
  logs: string[],
  o: { models?: string; args?: string[] } = {},
): Promise<Served> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      join(root, 'packages/server/dist/cli/main.js'),
      'serve',
      '-m',
      o.models ?? join(root, 'models'),
      '-p',
      String(port),
      '-H',
      '127.0.0.1',
      '--workers',
      '2',
      ...(o.args ?? []),
    ],
    {
      env: {
        ...process.env,
        FERRY_STORE_URL: 'sqlite::memory:',
        FERRY_LOG_LEVEL: 'warn',
        REDIS_URL: '',
        DATABASE_URL: '',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  try {
    await waitReady(base, child);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${logs.join('').slice(-3000)}`);
  }
  return { base, child };
}

export async function stop(child: ChildProcess | undefined): Promise<void> {
  // A child killed by the signal keeps exitCode null (signalCode is set): it has exited all the same, and
  // its 'exit' event has fired, so waiting for it again would never resolve.
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

export interface Browser {
  ctx: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Chromium with a fresh profile; page errors and console errors go to `logs`. */
export async function openBrowser(logs: string[], viewport = { width: 1280, height: 900 }): Promise<Browser> {
  mkdirSync(shots, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') logs.push(`console: ${m.text()}`);
  });
  return {
    ctx,
    page,
    async close() {
      await ctx.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const shot = (page: Page, name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

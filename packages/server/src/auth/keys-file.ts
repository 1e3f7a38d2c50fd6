// `auth.keysFile`: API key entries (digests, never secrets) in a YAML or JSON file of their own, so a
// key can be added or revoked by changing a mounted Secret instead of the config and a restart.
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { ApiKeySchema, type ApiKeyConfig } from '../config/schemas/auth.js';
import { ApiKeyError } from './keys.js';

const KeysFileSchema = Type.Object({ keys: Type.Array(ApiKeySchema) }, { additionalProperties: false });

/**
 * Reads and checks the file: `keys:` (or a bare list) of `{id, sha256, scopes, models, rateLimitMax}`.
 * Errors name the file and the JSON pointer of the bad entry, never its content (no digest is echoed).
 * @example readKeysFile('/var/run/secrets/ferry/keys.yaml')
 */
export function readKeysFile(path: string): ApiKeyConfig[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ApiKeyError(`auth.keysFile ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    // YAML's message quotes the offending line, which may hold a digest: give the position only.
    const pos = (e as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
    throw new ApiKeyError(
      `auth.keysFile ${path}: not valid YAML or JSON${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`,
    );
  }
  const doc = Array.isArray(data) ? { keys: data } : (data ?? { keys: [] });
  const withDefaults = Value.Default(KeysFileSchema, Value.Clone(doc));
  const first = Value.Errors(KeysFileSchema, withDefaults).First();
  if (first) throw new ApiKeyError(`auth.keysFile ${path}: ${first.path || '/'}: ${first.message}`);
  return (withDefaults as { keys: ApiKeyConfig[] }).keys;
}

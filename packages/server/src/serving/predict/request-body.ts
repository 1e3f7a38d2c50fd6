// The body of a predict request in either form Ferry takes: rows (`instances`) or columns (`inputs`).
// Shared by the HTTP routes, job submission and `ferry predict`, so every surface reads it the same way.
import { FerryError, invalidInput } from '../../errors.js';
import { columnsToInstances } from './validation.js';

/** The instances of a JSON predict body, and the JSON pointer their issues are reported under. */
export function instancesFromBody(body: unknown): { instances: unknown; base: string } {
  if (Buffer.isBuffer(body))
    throw new FerryError('unsupported-media-type', {
      detail: 'this model takes JSON: {"instances": [...]}; raw bodies are for image models',
    });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidInput([
      { pointer: '', reason: 'expected a JSON object with "instances" (rows) or "inputs" (columns)' },
    ]);
  }
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => k !== 'instances' && k !== 'inputs');
  if (extra.length)
    throw invalidInput(
      extra.map((k) => ({
        pointer: `/${k}`,
        reason: `unknown member "${k.slice(0, 100)}"; expected "instances" or "inputs"`,
      })),
    );
  if ('instances' in b && 'inputs' in b)
    throw invalidInput([{ pointer: '/inputs', reason: 'send either "instances" or "inputs", not both' }]);
  if ('instances' in b) return { instances: b.instances, base: '/instances' };
  if ('inputs' in b) return { instances: columnsToInstances(b.inputs, '/inputs'), base: '/inputs' };
  throw invalidInput([{ pointer: '/instances', reason: 'missing "instances" (or "inputs" in columnar form)' }]);
}

// Contract compatibility between versions that share a major: a client pinned to `name@1` must
// be able to send the same requests and read the same response shape from every 1.x.y.
import type { Feature, Manifest } from './schema.js';

function featureSignature(f: Feature): string {
  switch (f.type) {
    case 'category':
      return `category[${f.values.join('|')}]`;
    case 'tensor':
      return `tensor<${f.dtype}>[${f.shape.join(',')}]`;
    default:
      return f.type;
  }
}

/** Lists the differences that make `b` incompatible with `a` (empty when compatible). */
export function contractDifferences(a: Manifest, b: Manifest): string[] {
  const diffs: string[] = [];
  const fa = new Map(a.inputs.map((f) => [f.name, f]));
  const fb = new Map(b.inputs.map((f) => [f.name, f]));
  for (const [name, f] of fa) {
    const g = fb.get(name);
    if (!g) diffs.push(`input "${name}" removed`);
    else if (featureSignature(f) !== featureSignature(g))
      diffs.push(`input "${name}" changed from ${featureSignature(f)} to ${featureSignature(g)}`);
    else if (!!f.optional !== !!g.optional) diffs.push(`input "${name}" changed optionality`);
  }
  for (const name of fb.keys()) if (!fa.has(name)) diffs.push(`input "${name}" added`);
  const oa = a.outputs
    .map((o) => o.name)
    .sort()
    .join(',');
  const ob = b.outputs
    .map((o) => o.name)
    .sort()
    .join(',');
  if (oa !== ob) diffs.push(`outputs changed from [${oa}] to [${ob}]`);
  const pa = a.postprocess ?? { kind: 'raw' };
  const pb = b.postprocess ?? { kind: 'raw' };
  if (pa.kind !== pb.kind) diffs.push(`postprocess kind changed from ${pa.kind} to ${pb.kind}`);
  else if (
    pa.kind === 'classification' &&
    pb.kind === 'classification' &&
    pa.labels.join('|') !== pb.labels.join('|')
  ) {
    diffs.push(`labels changed from [${pa.labels.join(', ')}] to [${pb.labels.join(', ')}]`);
  }
  return diffs;
}

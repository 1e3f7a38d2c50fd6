// Writes a manifest as the hand-written-looking YAML of the model repository: block style for the
// document's outline, one flow mapping per feature, column and output. Generic YAML libraries either
// flow everything or nothing, and a stable layout keeps generated manifests diff-friendly.
// The result is checked by parsing it back (see write-example.ts tests), so a quoting slip cannot
// reach a committed ferry.yaml.

type Yaml = string | number | boolean | null | readonly Yaml[] | { readonly [k: string]: Yaml | undefined };

// Plain scalars that every YAML reader (1.1 and 1.2) takes for strings.
const PLAIN = /^[A-Za-z_][A-Za-z0-9_.\-/ ]*$/;
const SEMVER = /^\d+\.\d+\.\d+$/;
const RESERVED = /^(y|yes|n|no|true|false|on|off|null)$/i;

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} to YAML`);
    return String(v);
  }
  if (SEMVER.test(v)) return v;
  // JSON strings are valid double-quoted YAML scalars.
  return PLAIN.test(v) && !RESERVED.test(v) && !v.endsWith(' ') ? v : JSON.stringify(v);
}

function isContainer(v: Yaml | undefined): v is readonly Yaml[] | { readonly [k: string]: Yaml | undefined } {
  return typeof v === 'object' && v !== null;
}

function entries(v: { readonly [k: string]: Yaml | undefined }): Array<[string, Yaml]> {
  return Object.entries(v).filter((e): e is [string, Yaml] => e[1] !== undefined);
}

/** Nesting height: 0 for a scalar, 1 for a container of scalars, ... */
function height(v: Yaml): number {
  if (!isContainer(v)) return 0;
  const children = Array.isArray(v) ? (v as readonly Yaml[]) : entries(v as { [k: string]: Yaml }).map((e) => e[1]);
  return 1 + Math.max(0, ...children.map(height));
}

function flow(v: Yaml): string {
  if (!isContainer(v)) return scalar(v);
  if (Array.isArray(v)) return `[${(v as readonly Yaml[]).map(flow).join(', ')}]`;
  const e = entries(v as { [k: string]: Yaml });
  return e.length ? `{ ${e.map(([k, x]) => `${scalar(k)}: ${flow(x)}`).join(', ')} }` : '{}';
}

// A feature `{ name, type, values: [...] }` is height 2 and a column `{ feature, steps: [{ op, values: [...] }] }`
// height 4; both read best on one line. A preprocess binding holds a list of columns and stays block.
const MAX_FLOW_HEIGHT = 4;

function block(v: Yaml, indent: string, topLevel: boolean): string[] {
  if (Array.isArray(v)) {
    return (v as readonly Yaml[]).flatMap((item) => {
      if (isContainer(item) && !Array.isArray(item) && height(item) > MAX_FLOW_HEIGHT) {
        const [first, ...rest] = block(item, `${indent}  `, false);
        return [`${indent}- ${first!.trimStart()}`, ...rest];
      }
      return [`${indent}- ${flow(item)}`];
    });
  }
  return entries(v as { [k: string]: Yaml }).flatMap(([k, x]) => {
    const key = `${indent}${scalar(k)}:`;
    if (!isContainer(x) || (x as readonly Yaml[]).length === 0) return [`${key} ${flow(x)}`];
    // Lists right under the root (inputs, outputs, preprocess) are the document's outline.
    const asBlock = height(x) > MAX_FLOW_HEIGHT || (topLevel && Array.isArray(x));
    return asBlock ? [key, ...block(x, `${indent}  `, false)] : [`${key} ${flow(x)}`];
  });
}

/** Renders a JSON-like object (undefined members are skipped) as a YAML document. */
export function toYaml(doc: { readonly [k: string]: unknown }): string {
  return `${block(doc as Yaml, '', true).join('\n')}\n`;
}

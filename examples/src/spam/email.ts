// Turns a raw RFC 822 message into the spam model's `text` feature: the Subject line, a blank line,
// then the body as readable text. Every other header is dropped: the model should judge what a
// reader sees, and the corpus's Received/Message-ID headers carry its collection artefacts (the
// SpamAssassin trap addresses, the 2002 relays) that would not generalise. A deliberately small MIME
// reader: multipart bodies are walked for their text/plain and text/html parts, quoted-printable and
// base64 are decoded with the part's charset, and HTML is reduced to its visible text plus link targets.

/** The model's contract caps `text` at this many characters; longer bodies are cut. */
export const MAX_TEXT_LENGTH = 200_000;

interface Part {
  headers: Map<string, string>;
  body: string;
}

function parsePart(raw: string): Part {
  const text = raw.replace(/\r\n?/g, '\n');
  const split = text.search(/\n\n/);
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 2);
  const headers = new Map<string, string>();
  // Folded header lines continue with leading whitespace.
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** `text/html; charset="x"` → `{ type: 'text/html', params: { charset: 'x' } }`. */
function contentType(value: string | undefined): { type: string; params: Record<string, string> } {
  if (!value) return { type: 'text/plain', params: {} };
  const [type, ...rest] = value.split(';');
  const params: Record<string, string> = {};
  for (const p of rest) {
    const m = /^\s*([\w*-]+)\s*=\s*(?:"([^"]*)"|([^\s;]*))/.exec(p);
    if (m) params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  }
  return { type: type!.trim().toLowerCase(), params };
}

function decodeBytes(bytes: Uint8Array, charset: string | undefined): string {
  try {
    return new TextDecoder(charset || 'windows-1252').decode(bytes);
  } catch {
    // An unknown or bogus charset label: Windows-1252 is what such mail usually meant.
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

/** Quoted-printable: soft line breaks go, runs of =XX escapes are decoded as bytes of `charset`. */
function decodeQuotedPrintable(body: string, charset: string | undefined): string {
  return body.replace(/=\n/g, '').replace(/(?:=[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16);
    return decodeBytes(bytes, charset);
  });
}

function decodeBody(part: Part): string {
  const charset = contentType(part.headers.get('content-type')).params.charset;
  const encoding = (part.headers.get('content-transfer-encoding') ?? '').toLowerCase();
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(part.body, charset);
  if (encoding === 'base64')
    return decodeBytes(Buffer.from(part.body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'), charset);
  return part.body;
}

const ENTITIES: Readonly<Record<string, string>> = {
  nbsp: ' ',
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  copy: '©',
  reg: '®',
  trade: '™',
  euro: '€',
  pound: '£',
  yen: '¥',
  cent: '¢',
  hellip: '…',
  mdash: '—',
  ndash: '–',
  bull: '•',
  lsquo: '‘',
  rsquo: '’',
  ldquo: '“',
  rdquo: '”',
  middot: '·',
  times: '×',
};

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** Visible text of an HTML fragment; link targets are kept as words, since spam is mostly links. */
export function htmlToText(html: string): string {
  const text = html
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(style|script|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(
      /<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>/gi,
      (_m, a?: string, b?: string, c?: string) => ` ${a ?? b ?? c ?? ''} `,
    )
    .replace(/<[^>]*>/g, ' ');
  return decodeEntities(text);
}

/** The readable text of a (possibly multipart) part, or '' when it holds none. */
function partText(part: Part, depth: number): string {
  const { type, params } = contentType(part.headers.get('content-type'));
  if (type.startsWith('multipart/') && params.boundary && depth < 8) {
    const children = splitMultipart(part.body, params.boundary).map(parsePart);
    if (type === 'multipart/alternative') {
      // The same content twice: read the plain version when there is one.
      const plain = children.find((c) => contentType(c.headers.get('content-type')).type === 'text/plain');
      return partText(plain ?? children[children.length - 1] ?? { headers: new Map(), body: '' }, depth + 1);
    }
    return children
      .map((c) => partText(c, depth + 1))
      .filter((t) => t.trim() !== '')
      .join('\n\n');
  }
  if (/attachment/i.test(part.headers.get('content-disposition') ?? '')) return '';
  if (type === 'text/html') return htmlToText(decodeBody(part));
  if (type === 'text/plain' || type.startsWith('multipart/')) return decodeBody(part);
  return '';
}

function splitMultipart(body: string, boundary: string): string[] {
  const delimiter = `--${boundary}`;
  const parts: string[] = [];
  let current: string[] | undefined;
  for (const line of body.split('\n')) {
    if (line.startsWith(delimiter)) {
      if (current) parts.push(current.join('\n'));
      if (line.startsWith(`${delimiter}--`)) return parts;
      current = [];
    } else if (current) {
      current.push(line);
    }
  }
  if (current) parts.push(current.join('\n'));
  return parts;
}

/** RFC 2047 encoded words (`=?utf-8?B?...?=`) in a header value. */
export function decodeHeader(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([bq])\?([^?]*)\?=/gi, (_m, charset: string, enc: string, data: string) => {
      const cs = charset.split('*')[0];
      if (enc.toLowerCase() === 'b') return decodeBytes(Buffer.from(data, 'base64'), cs);
      return decodeQuotedPrintable(data.replace(/_/g, ' '), cs);
    });
}

/**
 * The `text` feature of a raw message: `Subject`, a blank line, the body's readable text; cut to
 * MAX_TEXT_LENGTH characters (never inside a surrogate pair).
 */
export function emailToText(raw: string): string {
  const message = parsePart(raw);
  const subject = decodeHeader(message.headers.get('subject') ?? '');
  const text = `${subject}\n\n${partText(message, 0)}`;
  if (text.length <= MAX_TEXT_LENGTH) return text;
  const c = text.charCodeAt(MAX_TEXT_LENGTH - 1);
  return text.slice(0, c >= 0xd800 && c <= 0xdbff ? MAX_TEXT_LENGTH - 1 : MAX_TEXT_LENGTH);
}

// A worker thread that parses multipart job uploads (see upload-reader.ts): the HTTP thread only
// forwards the body's chunks as they arrive, and this thread finds the parts, holds each file to the
// limits as its bytes stream in (file count, bytes per file, form fields), and makes the base64 text
// a job stores — the instances' JSON made here, once, and stored as is; the files' bytes are moved
// (not copied) back for the image check, which then needs no base64 decoding. Images are
// decoded later by sharp, on libuv's thread pool, never on the HTTP thread.
import { parentPort } from 'node:worker_threads';
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import { FerryError, invalidInput } from '../errors.js';

export interface UploadLimits {
  /** Bytes of the whole body (multipart framing included), like a JSON body's limit. */
  maxBytes: number;
  /** Files in one upload: one instance each. */
  maxFiles: number;
  /** The model's image input: its files may be named after it, or `file`. */
  imageField: string;
  /** The form fields the upload may carry besides its files. */
  fieldNames: readonly string[];
  /** Bytes per form field value. */
  maxFieldBytes: number;
}

export type UploadToWorker =
  | { type: 'start'; id: number; contentType: string; limits: UploadLimits }
  | { type: 'chunk'; id: number; data: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number };

export interface UploadProblem {
  code: string;
  detail: string;
  extra: Record<string, unknown>;
}

export type UploadFromWorker =
  | { type: 'ack'; id: number }
  /** `json` is the instances as JSON text, `[{"<imageField>": "<base64>"}, ...]`, one per file in order. */
  | { type: 'done'; id: number; files: Uint8Array[]; json: string; fields: Record<string, string> }
  | { type: 'problem'; id: number; problem: UploadProblem };

export function tooLarge(maxBytes: number): FerryError {
  return new FerryError('body-too-large', {
    detail: `the upload exceeds the limit of ${maxBytes} bytes (server.bodyLimitBytes)`,
    extra: { limit: maxBytes },
  });
}

class Upload {
  #bb: BusboyInstance | undefined;
  readonly #files: Uint8Array[] = [];
  readonly #fields: Record<string, string> = {};
  #open = 0;
  #finished = false;
  #over = false;

  constructor(
    readonly id: number,
    contentType: string,
    readonly limits: UploadLimits,
    private readonly post: (m: UploadFromWorker, transfer?: ArrayBuffer[]) => void,
  ) {
    let bb: BusboyInstance;
    try {
      bb = Busboy({
        headers: { 'content-type': contentType },
        limits: {
          fileSize: limits.maxBytes,
          files: limits.maxFiles,
          fields: limits.fieldNames.length,
          fieldSize: limits.maxFieldBytes,
          parts: limits.maxFiles + limits.fieldNames.length,
        },
      });
    } catch (e) {
      this.#fail(malformed(e));
      return;
    }
    this.#bb = bb;
    bb.on('file', (name: string, stream: NodeJS.ReadableStream & { truncated?: boolean }) => {
      if (this.#over || (name !== limits.imageField && name !== 'file')) {
        stream.resume();
        this.#fail(
          invalidInput([
            {
              pointer: `/${name.slice(0, 100)}`,
              reason: `unknown file field; upload the image as "${limits.imageField}"`,
            },
          ]),
        );
        return;
      }
      const index = this.#files.length;
      this.#files.push(new Uint8Array(0));
      this.#open++;
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        if (!this.#over) chunks.push(c);
      });
      stream.on('limit', () => this.#fail(tooLarge(limits.maxBytes)));
      stream.on('end', () => {
        this.#open--;
        if (this.#over) return;
        // Its own ArrayBuffer (not a pooled one), so that it can be moved to the HTTP thread.
        const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          bytes.set(c, at);
          at += c.length;
        }
        this.#files[index] = bytes;
        this.#maybeDone();
      });
    });
    bb.on('field', (name: string, value: string, _nameTruncated: boolean, valueTruncated: boolean) => {
      if (!limits.fieldNames.includes(name)) {
        this.#fail(
          invalidInput([
            {
              pointer: `/${name.slice(0, 100)}`,
              reason: `unknown form field; expected image files, ${limits.fieldNames.join(' or ')}`,
            },
          ]),
        );
        return;
      }
      if (valueTruncated)
        this.#fail(invalidInput([{ pointer: `/${name}`, reason: `longer than ${limits.maxFieldBytes} bytes` }]));
      else this.#fields[name] = value;
    });
    const tooMany = () =>
      this.#fail(
        new FerryError('too-many-instances', {
          detail: `more than ${limits.maxFiles} files in one upload (limits.maxInstances)`,
          extra: { limit: limits.maxFiles },
        }),
      );
    bb.on('filesLimit', tooMany);
    bb.on('partsLimit', tooMany);
    bb.on('fieldsLimit', () => this.#fail(new FerryError('invalid-request', { detail: 'too many form fields' })));
    bb.on('error', (e: unknown) => this.#fail(malformed(e)));
    bb.on('finish', () => {
      this.#finished = true;
      this.#maybeDone();
    });
  }

  get over(): boolean {
    return this.#over;
  }

  write(data: Uint8Array): void {
    if (!this.#over) this.#bb!.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  end(): void {
    if (!this.#over) this.#bb!.end();
  }

  abort(): void {
    this.#over = true;
    uploads.delete(this.id);
    this.#bb?.destroy();
  }

  #maybeDone(): void {
    if (this.#over || !this.#finished || this.#open > 0) return;
    this.#over = true;
    uploads.delete(this.id);
    const key = JSON.stringify(this.limits.imageField);
    const b64 = (f: Uint8Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
    const json = `[${this.#files.map((f) => `{${key}:"${b64(f)}"}`).join(',')}]`;
    this.post(
      { type: 'done', id: this.id, files: this.#files, json, fields: this.#fields },
      this.#files.map((f) => f.buffer as ArrayBuffer),
    );
  }

  #fail(e: FerryError): void {
    if (this.#over) return;
    this.abort();
    this.post({ type: 'problem', id: this.id, problem: { code: e.code, detail: e.detail, extra: e.extra } });
  }
}

function malformed(e: unknown): FerryError {
  return new FerryError('invalid-request', {
    detail: `malformed multipart body: ${String((e as Error)?.message ?? e).slice(0, 200)}`,
  });
}

const uploads = new Map<number, Upload>();

if (parentPort) {
  const port = parentPort;
  const post = (m: UploadFromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  port.on('message', (msg: UploadToWorker) => {
    if (msg.type === 'start') {
      const u = new Upload(msg.id, msg.contentType, msg.limits, post);
      if (!u.over) uploads.set(msg.id, u);
      return;
    }
    const u = uploads.get(msg.id);
    if (msg.type === 'chunk') {
      // Acked whatever became of it: the HTTP thread's backpressure counts chunks in flight.
      u?.write(msg.data);
      post({ type: 'ack', id: msg.id });
    } else if (msg.type === 'end') u?.end();
    else u?.abort();
  });
}

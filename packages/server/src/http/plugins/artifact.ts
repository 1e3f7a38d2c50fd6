// Edge inference: the browser downloads a version's ONNX file and its contract and runs them itself.
// An exact version never changes, so both are served with a strong ETag (sha-256 of the bytes) and
// `immutable` caching; a floating reference (`1`, `stable`, `latest`) redirects to the exact version
// so caches only ever hold immutable URLs.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError } from '../../errors.js';
import { encoderResources, type ModelVersion } from '../../serving/repository/index.js';
import type { ServerDeps } from '../deps.js';
import { json, ModelVersionParams, problem, route, text } from '../schemas.js';

interface Params {
  model: string;
  version: string;
}
interface Digest {
  etag: string;
  bytes: number;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** `If-None-Match` holds a list of ETags or `*`; a weak comparison is enough for GET (RFC 9110 §13.1.2). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => opaque(t) === opaque(etag));
}

export type ArtifactOptions = Pick<ServerDeps, 'repository'>;

const artifactSchema = (summary: string, ok: Record<string, unknown>) =>
  route('edge', summary, {
    params: ModelVersionParams,
    headers: { type: 'object', properties: { 'if-none-match': { type: 'string' } } },
    response: {
      200: ok,
      304: { description: 'Not modified (ETag matched)', type: 'null' },
      307: json('A floating reference: redirected to the exact version'),
      404: problem('Unknown model or version'),
      422: problem('A pipeline model has no single artifact'),
    },
  });

/** Edge inference downloads: a version's ONNX file and its contract, immutable per exact version. */
export const artifactPlugin: FastifyPluginAsync<ArtifactOptions> = async (app, deps) => {
  // Hashing a model file costs a read of it: once per version for the life of the process.
  const digests = new Map<string, Promise<Digest>>();
  const digestOf = (v: ModelVersion): Promise<Digest> => {
    let d = digests.get(v.key);
    if (!d) {
      d = (async () => {
        const hash = createHash('sha256');
        let bytes = 0;
        for await (const chunk of createReadStream(v.modelPath)) {
          hash.update(chunk as Buffer);
          bytes += (chunk as Buffer).length;
        }
        return { etag: `"sha256-${hash.digest('base64url')}"`, bytes };
      })();
      d.catch(() => digests.delete(v.key));
      digests.set(v.key, d);
    }
    return d;
  };

  /** Resolves the version, or redirects a floating reference to the exact version's URL. */
  const exact = (
    req: FastifyRequest<{ Params: Params }>,
    reply: FastifyReply,
    suffix: string,
  ): ModelVersion | undefined => {
    const v = deps.repository.resolve(req.params.model, req.params.version);
    req.ferryModel = v;
    if (v.version !== req.params.version || req.params.model !== v.name) {
      void reply
        .code(307)
        .header('cache-control', 'no-cache')
        .header(
          'location',
          `/v1/models/${encodeURIComponent(v.name)}/versions/${encodeURIComponent(v.version)}/${suffix}`,
        )
        .send({ model: v.name, version: v.version });
      return undefined;
    }
    if (v.manifest.pipeline) {
      // A pipeline (OCR) chains several ONNX files with server-side glue; there is no single artifact.
      throw new FerryError('edge-unsupported', {
        detail: `${v.key} is a ${v.manifest.pipeline.kind} pipeline; only single-file models can run on the edge`,
      });
    }
    return v;
  };

  app.get<{ Params: Params }>(
    '/v1/models/:model/versions/:version/artifact',
    {
      schema: artifactSchema(
        "The version's ONNX file, for edge inference (strong ETag, immutable)",
        text('The ONNX model', 'application/octet-stream'),
      ),
    },
    async (req, reply) => {
      const v = exact(req, reply, 'artifact');
      if (!v) return reply;
      const d = await digestOf(v);
      reply.header('etag', d.etag).header('cache-control', IMMUTABLE).header('ferry-model-version', v.version);
      if (etagMatches(req.headers['if-none-match'], d.etag)) return reply.code(304).send();
      const size = (await stat(v.modelPath)).size;
      return reply
        .type('application/octet-stream')
        .header('content-length', size)
        .header('content-disposition', `attachment; filename="${v.name}-${v.version}.onnx"`)
        .send(createReadStream(v.modelPath));
    },
  );

  const contracts = new Map<string, { body: string; etag: string }>();
  app.get<{ Params: Params }>(
    '/v1/models/:model/versions/:version/artifact/contract',
    {
      schema: artifactSchema(
        "The version's contract and its artifact's digest (strong ETag, immutable)",
        json('name, version, artifact, contract'),
      ),
    },
    async (req, reply) => {
      const v = exact(req, reply, 'artifact/contract');
      if (!v) return reply;
      let c = contracts.get(v.key);
      if (!c) {
        const d = await digestOf(v);
        // The artifact's own digest rides along, so a client can check it downloaded the file the contract describes.
        const body = JSON.stringify({
          name: v.name,
          version: v.version,
          artifact: { bytes: d.bytes, etag: d.etag, url: `/v1/models/${v.name}/versions/${v.version}/artifact` },
          contract: v.manifest,
          // Files the contract's preprocessing reads (tokenizer.json): the browser encodes text as the server does.
          resources: encoderResources(v.dir, v.manifest),
        });
        c = { body, etag: `"sha256-${createHash('sha256').update(body).digest('base64url')}"` };
        contracts.set(v.key, c);
      }
      reply.header('etag', c.etag).header('cache-control', IMMUTABLE);
      if (etagMatches(req.headers['if-none-match'], c.etag)) return reply.code(304).send();
      return reply.type('application/json; charset=utf-8').send(c.body);
    },
  );
};

// Management API: load, unload and reload model versions while serving (Ferry's `/v1/admin/...`
// and the Open Inference Protocol repository extension), the rollout status of a model, and the
// effective configuration. Access is decided by auth/scope-table.ts (admin; 404 without keys).
import type { FastifyPluginAsync } from 'fastify';
import { redactConfig } from '../../config/redact.js';
import { Type, type TObject } from '@sinclair/typebox';
import type { ServerDeps } from '../deps.js';
import { FerryError } from '../../errors.js';
import { checkNames, type ModelManager, type RolloutManager } from '../../rollout/index.js';
import { json, problem, route } from '../schemas.js';

export interface AdminOptions extends Pick<ServerDeps, 'config' | 'reloadConfig'> {
  readonly manager: ModelManager;
  readonly rollout: RolloutManager;
}

const ModelName = Type.Object({ model: Type.String({ description: 'model name' }) });
const report = json('Change report: loaded, reloaded, unloaded, unchanged, failed, warnings');
const change = (summary: string, params?: TObject) =>
  route('admin', summary, {
    ...(params && { params }),
    response: {
      200: report,
      404: problem('No such model or version'),
      409: problem('An alias points to the version'),
      422: problem('Refused; the served version keeps serving'),
    },
  });

/** Management API (admin scope) and the rollout status of a model. */
export const adminPlugin: FastifyPluginAsync<AdminOptions> = async (app, deps) => {
  const { manager, rollout } = deps;

  // `1.2.0:load` / `1.2.0:unload` (Google API style custom methods) in one segment.
  const action = Type.Object({
    model: Type.String({ description: 'model name' }),
    action: Type.String({ description: '`{version}:load` or `{version}:unload`, e.g. `1.2.0:load`' }),
  });
  app.post<{ Params: { model: string; action: string } }>(
    '/v1/admin/models/:model/versions/:action',
    { schema: change('Load or unload a version: {version}:load or {version}:unload', action) },
    async (req) => {
      const { model, action } = req.params;
      const m = /^(.*):(load|unload)$/.exec(action);
      if (!m)
        throw new FerryError('route-not-found', {
          detail: `expected …/versions/{version}:load or :unload, got "${action.slice(0, 80)}"`,
        });
      checkNames(model, m[1]!);
      return m[2] === 'load' ? manager.loadVersion(model, m[1]!) : manager.unloadVersion(model, m[1]!);
    },
  );
  // Both re-read the configuration's API keys and rollout blocks first (when the server knows how it
  // was configured), then bring the served models in line with the disk. A refused configuration is a
  // 422 and changes nothing of the keys or policies in force.
  const reload = async () => (deps.reloadConfig ? deps.reloadConfig() : manager.reloadRepository());
  app.post(
    '/v1/admin/repository::reload',
    {
      schema: change(
        'Re-read API keys and rollout blocks of the configuration (when the server knows its config file), then bring the served models in line with the repository folder',
      ),
    },
    reload,
  );
  app.post(
    '/v1/admin/config::reload',
    {
      schema: change(
        'The same as repository:reload (named for key rotation): API keys, rollout blocks, then the repository; 422 when the configuration is refused (the keys in force stay)',
      ),
    },
    reload,
  );
  app.get(
    '/v1/admin/repository',
    {
      schema: route('admin', 'Every version known to the server and its state', {
        response: { 200: json('`{versions: [...]}`') },
      }),
    },
    async () => ({ versions: manager.status() }),
  );
  app.get(
    '/v1/admin/config',
    {
      schema: route('admin', 'The effective configuration, secrets redacted', {
        response: { 200: json('The configuration') },
      }),
    },
    async () => redactConfig(deps.config),
  );

  // Open Inference Protocol model repository extension (load / unload a whole model).
  app.post<{ Params: { model: string } }>(
    '/v2/repository/models/:model/load',
    { schema: change('Open Inference Protocol: load every version of a model', ModelName) },
    async (req) => {
      checkNames(req.params.model);
      const r = await manager.loadModel(req.params.model);
      return { model: req.params.model, ...r };
    },
  );
  app.post<{ Params: { model: string } }>(
    '/v2/repository/models/:model/unload',
    { schema: change('Open Inference Protocol: unload a model', ModelName) },
    async (req) => {
      checkNames(req.params.model);
      const r = await manager.unloadModel(req.params.model);
      return { model: req.params.model, ...r };
    },
  );

  const rolloutSchema = route(
    'rollout',
    'Rollout of a model: canary split, shadow comparison (label agreement, score differences, latency, errors), deprecations',
    {
      params: ModelName,
      response: { 200: json('Rollout status'), 404: problem('No such model') },
    },
  );
  app.get<{ Params: { model: string } }>('/v1/models/:model/rollout', { schema: rolloutSchema }, async (req) => {
    checkNames(req.params.model);
    return rollout.status(req.params.model);
  });
};

// Management API: load, unload and reload model versions while serving (Ferry's `/v1/admin/...`
// and the Open Inference Protocol repository extension), the rollout status of a model, and the
// effective configuration. Access is decided by auth/scope-table.ts (admin; 404 without keys).
import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../deps.js';
import { FerryError } from '../../errors.js';
import { checkNames, type ModelManager, type RolloutManager } from '../../rollout/index.js';

export interface AdminDeps {
  readonly manager: ModelManager;
  readonly rollout: RolloutManager;
}

/** The config as `ferry config` prints it, minus anything secret-adjacent. */
function redactedConfig(cfg: ServerDeps['config']): unknown {
  const copy = JSON.parse(JSON.stringify(cfg)) as Record<string, unknown>;
  const auth = copy.auth as { keys: Array<Record<string, unknown>> };
  auth.keys = auth.keys.map((k) => ({ ...k, sha256: '[redacted]' }));
  for (const [section, key] of [['redis', 'url'], ['store', 'url'], ['alerts', 'webhookUrl']] as const) {
    const s = copy[section] as Record<string, unknown> | undefined;
    if (s && typeof s[key] === 'string' && s[key]) s[key] = String(s[key]).replace(/\/\/[^@/]*@/, '//[redacted]@');
  }
  return copy;
}

export async function registerAdminRoutes(app: FastifyInstance, deps: ServerDeps, admin: AdminDeps): Promise<void> {
  const { manager, rollout } = admin;

  // `1.2.0:load` / `1.2.0:unload` (Google API style custom methods) in one segment.
  app.post<{ Params: { model: string; action: string } }>('/v1/admin/models/:model/versions/:action', async (req) => {
    const { model, action } = req.params;
    const m = /^(.*):(load|unload)$/.exec(action);
    if (!m) throw new FerryError('route-not-found', { detail: `expected …/versions/{version}:load or :unload, got "${action.slice(0, 80)}"` });
    checkNames(model, m[1]!);
    return m[2] === 'load' ? manager.loadVersion(model, m[1]!) : manager.unloadVersion(model, m[1]!);
  });
  // Both re-read the configuration's API keys and rollout blocks first (when the server knows how it
  // was configured), then bring the served models in line with the disk. A refused configuration is a
  // 422 and changes nothing of the keys or policies in force.
  const reload = async () => (deps.reloadConfig ? deps.reloadConfig() : manager.reloadRepository());
  app.post('/v1/admin/repository::reload', reload);
  app.post('/v1/admin/config::reload', reload);
  app.get('/v1/admin/repository', async () => ({ versions: manager.status() }));
  app.get('/v1/admin/config', async () => redactedConfig(deps.config));

  // Open Inference Protocol model repository extension (load / unload a whole model).
  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (req) => {
    checkNames(req.params.model);
    const r = await manager.loadModel(req.params.model);
    return { model: req.params.model, ...r };
  });
  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (req) => {
    checkNames(req.params.model);
    const r = await manager.unloadModel(req.params.model);
    return { model: req.params.model, ...r };
  });

  app.get<{ Params: { model: string } }>('/v1/models/:model/rollout', async (req) => {
    checkNames(req.params.model);
    return rollout.status(req.params.model);
  });
}

// `ferry serve`: the server with the model repository, until SIGTERM/SIGINT drain it.
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { createLogger, createServer } from '../../app/create-server.js';
import { clusterIndex, isClusterChild, reportToPrimary, runClusterPrimary } from '../../app/cluster.js';
import { installSignalHandlers } from '../../lifecycle/index.js';
import { watchRepository } from '../../rollout/index.js';
import { commonOptions, sourcesFrom, type CliContext, type CommonOpts } from '../shared.js';

type ServeOpts = Omit<CommonOpts, 'workers'> & {
  workers?: string | boolean;
  watch?: boolean;
  grpcPort?: string;
  healthPort?: string;
  processes?: string;
};

export function registerServeCommand(program: Command, _ctx: CliContext): void {
  commonOptions(program.command('serve').description('start the server with the model repository'))
    .option('-p, --port <port>', 'port (default 8080)')
    .option('-H, --host <host>', 'address to bind (default 0.0.0.0)')
    .option('--grpc-port <port>', 'also serve the Open Inference Protocol over gRPC on this port (default: off)')
    .option('--no-workers', 'API-only node: accept jobs, run none (workers are `ferry worker` processes)')
    .option(
      '--health-port <port>',
      'answer /healthz and /readyz on this port from a thread of their own (default: off)',
    )
    .option('--processes <n>', 'serving processes sharing the port, each with its own model workers (default 1)')
    .option('-w, --watch', 'load, reload and unload model versions as the repository folder changes')
    .action(async (o: ServeOpts) => {
      // commander's --no-workers sets `workers: false`, sharing the name with --workers <n>.
      const noJobWorkers = o.workers === false;
      const sources = sourcesFrom({ ...o, workers: typeof o.workers === 'string' ? o.workers : undefined });
      sources.overrides = {
        ...sources.overrides,
        ...(o.grpcPort !== undefined && { 'grpc.port': o.grpcPort }),
        ...(o.healthPort !== undefined && { 'server.healthPort': o.healthPort }),
        ...(o.processes !== undefined && { 'server.processes': o.processes }),
      };
      const cfg = loadConfig(sources);
      if (cfg.server.processes > 1 && !isClusterChild()) {
        process.exitCode = await runClusterPrimary(cfg, createLogger(cfg).child({ component: 'cluster' }));
        return;
      }
      // In a cluster only child 0 runs the singletons (job workers, scheduled pipelines); the primary has the
      // health port.
      const child = isClusterChild();
      const server = await createServer(cfg, {
        ...((noJobWorkers || (child && clusterIndex() > 0)) && { jobWorkers: false }),
        ...(child && { healthLane: false, schedulePipelines: clusterIndex() === 0 }),
        configSources: sources,
      });
      if (child) {
        const heartbeat = reportToPrimary(() => ({
          ready: server.service.ready(),
          draining: server.lifecycle.draining,
        }));
        server.lifecycle.on('draining', () => heartbeat.beat());
        process.once('exit', () => heartbeat.stop());
        // Ctrl-C reaches every process of the group; the primary turns it into one SIGTERM per child.
        process.on('SIGINT', () => undefined);
      }
      const watcher = o.watch
        ? watchRepository(cfg.models.dir, server.manager, server.log.child({ component: 'watch' }))
        : undefined;
      if (watcher) server.lifecycle.onDrain('watch', () => watcher.close());
      // --watch also follows ferry.config.yaml (rollout blocks, keys) and auth.keysFile.
      const configWatcher = o.watch ? server.configReloader.watch(cfg) : undefined;
      if (configWatcher) server.lifecycle.onDrain('config-watch', () => configWatcher.close());
      installSignalHandlers(server, child ? { signals: ['SIGTERM'] } : {});
      // SIGHUP: re-read API keys and rollout blocks (key rotation without a restart), then reload the repository.
      process.on('SIGHUP', () => {
        server.log.info('SIGHUP: re-reading the configuration');
        server.reloadConfig().catch((err: unknown) => server.log.error({ err }, 'reload after SIGHUP failed'));
      });
      const addr = await server.listen();
      server.log.info(
        {
          url: addr.url,
          ...(addr.grpcPort !== undefined && { grpcPort: addr.grpcPort }),
          ...(addr.healthPort !== undefined && { healthPort: addr.healthPort }),
          models: server.repository.models().map((m) => m.name),
        },
        'listening; loading models',
      );
      try {
        await server.loaded;
      } catch (e) {
        server.log.fatal({ err: e }, 'a model failed to load; models.onLoadFailure is exit, so refusing to serve');
        await server.close();
        process.exit(1);
      }
      const failed = server.service.states().filter((st) => st.state === 'failed');
      if (failed.length)
        server.log.error(
          { url: addr.url, failed, onLoadFailure: cfg.models.onLoadFailure, ready: server.service.ready() },
          'serving without the failed model versions',
        );
      else server.log.info({ url: addr.url }, 'ready');
    });
}

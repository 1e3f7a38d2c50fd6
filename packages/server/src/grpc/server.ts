// The gRPC listener: `inference.GRPCInferenceService` (the Open Inference Protocol) and the standard
// `grpc.health.v1.Health` service that Kubernetes gRPC probes call. Off unless `grpc.port` is set.
// On drain, health turns NOT_SERVING at once, new calls are refused, and in-flight calls finish
// before the deadline (then the rest are cancelled).
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { HealthImplementation } from 'grpc-health-check';
import type { GrpcDeps } from './deps.js';
import { inferenceService } from './inference-service.js';

/** The .proto this server speaks; clients compile theirs from the same file (docs/grpc.md). */
export const OPEN_INFERENCE_PROTO = fileURLToPath(new URL('../../proto/grpc_predict_v2.proto', import.meta.url));
export const INFERENCE_SERVICE = 'inference.GRPCInferenceService';

/** Options shared with clients in tests: field names as in the .proto, int64 as numbers, defaults filled. */
export const PROTO_LOADER_OPTIONS = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
} as const;

export interface GrpcListener {
  /** Binds the port; resolves with the bound port (config 0 picks a free one). */
  listen(): Promise<{ host: string; port: number; address: string }>;
  /** Refuses new calls, lets in-flight ones finish until `deadline` (epoch ms), then cancels the rest. */
  close(deadline?: number): Promise<void>;
}

function inferenceDefinition(): ServiceDefinition {
  const def = loadSync(OPEN_INFERENCE_PROTO, PROTO_LOADER_OPTIONS);
  const pkg = loadPackageDefinition(def) as unknown as {
    inference: { GRPCInferenceService: { service: ServiceDefinition } };
  };
  return pkg.inference.GRPCInferenceService.service;
}

export function createGrpcServer(deps: GrpcDeps): GrpcListener {
  const { config, log } = deps;
  const server = new Server({
    'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
    'grpc.max_send_message_length': config.maxSendMessageBytes,
  });
  server.addService(inferenceDefinition(), inferenceService(deps, log));
  const health = new HealthImplementation({ '': 'NOT_SERVING', [INFERENCE_SERVICE]: 'NOT_SERVING' });
  health.addToServer(server);
  const setHealth = (serving: boolean) => {
    for (const name of ['', INFERENCE_SERVICE]) health.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING');
  };
  // SERVING once every version is warm (as /v2/health/ready), NOT_SERVING from the first moment of a drain.
  const poll = setInterval(() => setHealth(deps.service.ready() && !deps.lifecycle.draining), 250);
  poll.unref();
  deps.lifecycle.on('draining', () => setHealth(false));
  let closing: Promise<void> | undefined;
  return {
    async listen() {
      const host = config.host || deps.defaultHost;
      const address = `${host.includes(':') ? `[${host}]` : host}:${config.port}`;
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(address, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      setHealth(deps.service.ready() && !deps.lifecycle.draining);
      const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
      log.info({ port }, 'gRPC listening');
      return { host: shown, port, address: `${shown.includes(':') ? `[${shown}]` : shown}:${port}` };
    },
    close(deadline = Date.now() + 10_000) {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(poll);
        setHealth(false);
        const timer = setTimeout(
          () => {
            log.warn('gRPC calls still running at the shutdown deadline: cancelling them');
            server.forceShutdown();
            resolve();
          },
          Math.max(0, deadline - Date.now()),
        );
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

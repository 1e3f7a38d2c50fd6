// The Open Inference Protocol over gRPC (a transport beside http/): see server.ts.
export {
  createGrpcServer,
  INFERENCE_SERVICE,
  OPEN_INFERENCE_PROTO,
  PROTO_LOADER_OPTIONS,
  type GrpcListener,
} from './server.js';
export type { GrpcDeps } from './deps.js';
export { grpcCodeFor, toServiceError } from './status.js';

// The Open Inference Protocol over gRPC (`grpc:` in config/schema.ts): off unless a port is set
// (`ferry serve --grpc-port 8081`, FERRY_GRPC_PORT). docs/grpc.md describes the service.
import { Type, type Static } from '@sinclair/typebox';

export const GrpcConfigSchema = Type.Object(
  {
    /** Port of the gRPC listener: -1 (the default) serves no gRPC; 0 picks a free port. */
    port: Type.Integer({ minimum: -1, maximum: 65535, default: -1 }),
    /** Address to bind; empty = the HTTP server's `server.host`. */
    host: Type.String({ default: '' }),
    /** Largest request message accepted, in bytes; a larger one is refused with RESOURCE_EXHAUSTED. */
    maxReceiveMessageBytes: Type.Integer({ minimum: 1024, default: 8 * 1024 * 1024 }),
    /** Largest response message sent, in bytes. */
    maxSendMessageBytes: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024 }),
  },
  { additionalProperties: false, default: {} },
);

export type GrpcConfig = Static<typeof GrpcConfigSchema>;

// The health lane's worker thread: listens on the health port and answers probes from the shared
// state the serving thread writes, so a saturated serving loop does not delay them.
import { parentPort, workerData } from 'node:worker_threads';
import { startHealthListener } from './listener.js';
import { SharedHealthState } from './state.js';

export interface HealthWorkerData {
  buffer: SharedArrayBuffer;
  host: string;
  port: number;
  maxStallMs: number;
}

export type HealthWorkerMessage =
  { type: 'listening'; port: number } | { type: 'error'; message: string; code?: string };

const data = workerData as HealthWorkerData;
const state = new SharedHealthState(data.buffer);
const port = parentPort!;

startHealthListener({ host: data.host, port: data.port, maxStallMs: data.maxStallMs, read: () => state.read() }).then(
  ({ server, port: bound }) => {
    port.postMessage({ type: 'listening', port: bound } satisfies HealthWorkerMessage);
    port.on('message', (msg: { type: 'close' }) => {
      if (msg.type === 'close') {
        server.closeAllConnections();
        server.close(() => port.close());
      }
    });
  },
  (e: NodeJS.ErrnoException) => {
    port.postMessage({
      type: 'error',
      message: e.message,
      ...(e.code !== undefined && { code: e.code }),
    } satisfies HealthWorkerMessage);
  },
);

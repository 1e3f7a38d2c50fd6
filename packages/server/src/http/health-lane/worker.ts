// The health lane's worker thread: listens on the health port and answers probes from the shared
// state the serving thread writes, so a saturated serving loop does not delay them.
import { parentPort, workerData } from 'node:worker_threads';
import { startHealthListener } from './listener.js';
import { SharedHealthState } from './state.js';
import { setThreadNice } from '../../lifecycle/thread-priority.js';

export interface HealthWorkerData {
  buffer: SharedArrayBuffer;
  host: string;
  port: number;
  maxStallMs: number;
}

export type HealthWorkerMessage =
  { type: 'listening'; port: number; priority: string } | { type: 'error'; message: string; code?: string };

/**
 * The lane's nice value. On a core the serving thread and the inference workers keep busy, a
 * thread at the same priority that wakes for a probe can wait a scheduler slice or two (a few
 * milliseconds) before it runs; a favoured thread runs at once. It uses almost no CPU, so it takes
 * nothing from the others. Lowering a nice value needs CAP_SYS_NICE (root, or the capability in a
 * container); without it the lane runs at the default priority and says so at start.
 */
export const HEALTH_LANE_NICE = -10;
const priority = setThreadNice(HEALTH_LANE_NICE);

const data = workerData as HealthWorkerData;
const state = new SharedHealthState(data.buffer);
const port = parentPort!;

startHealthListener({ host: data.host, port: data.port, maxStallMs: data.maxStallMs, read: () => state.read() }).then(
  ({ server, port: bound }) => {
    port.postMessage({
      type: 'listening',
      port: bound,
      priority: priority.ok
        ? `thread ${priority.tid} at nice ${HEALTH_LANE_NICE}`
        : `default priority (nice ${HEALTH_LANE_NICE} refused: ${priority.reason})`,
    } satisfies HealthWorkerMessage);
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

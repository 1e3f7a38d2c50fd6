// The prediction log's writer thread: opens the server's store with its own connection and inserts
// the batches the main thread posts (see row-writer.ts). Migrations are the main thread's job.
import { parentPort, workerData } from 'node:worker_threads';
import { createStore } from '../../store/index.js';
import { answerRequests } from '../../serving/runtime/rpc.js';
import type { FromRowWriter, ThreadStoreOptions, ToRowWriter } from './row-writer.js';

const port = parentPort!;
const store = createStore((workerData as { store: ThreadStoreOptions }).store);

answerRequests<ToRowWriter>(port, async (msg) => {
  if (msg.type === 'insert') {
    if (msg.rows.length > 0) await store.db.insertInto('prediction_log').values(msg.rows).execute();
  } else {
    await store.close();
  }
  port.postMessage({ type: 'done', id: msg.id } satisfies FromRowWriter);
});

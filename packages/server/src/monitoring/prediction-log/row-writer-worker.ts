// The prediction log's writer thread: opens the server's store with its own connection, builds the
// rows of the entries the main thread posts and inserts them (see row-writer.ts). Migrations are the
// main thread's job.
import { parentPort, workerData } from 'node:worker_threads';
import { createStore } from '../../store/index.js';
import { answerRequests } from '../../serving/runtime/rpc.js';
import { writeEntries, type FromRowWriter, type ThreadStoreOptions, type ToRowWriter } from './row-writer.js';

const port = parentPort!;
const store = createStore((workerData as { store: ThreadStoreOptions }).store);

answerRequests<ToRowWriter>(port, async (msg) => {
  if (msg.type === 'insert') {
    const outcome = await writeEntries(store, msg.batch, msg.maxEntryBytes);
    port.postMessage({ type: 'done', id: msg.id, outcome } satisfies FromRowWriter);
    return;
  }
  await store.close();
  port.postMessage({ type: 'done', id: msg.id } satisfies FromRowWriter);
});

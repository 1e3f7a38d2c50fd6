// @ferry/test-kit: everything Ferry's tests share — tiny real ONNX models, model repositories, a
// started server, stores on every SQL dialect, API keys, pipeline inputs, nginx and child-process
// helpers. Private to this repository and never shipped: the server's dist/ carries no test support.
//
// Helpers that need server internals that are not part of @ferry/server's public face import them
// from ../../server/dist/ on purpose (as bench/ does), so the published exports stay as they are.
export * from './fixture-models.js';
export * from './serving-fixtures.js';
export * from './test-server.js';
export * from './test-store.js';
export * from './tcp-proxy.js';
export * from './test-keys.js';
export * from './generative-models.js';
export * from './repo-server.js';
export * from './pipeline-fixtures.js';
export * from './cluster.js';
export * from './onnx-ml-fixtures.js';
// `ferry bench` starts servers with the same function, so it stays in the server (lifecycle/).
export {
  CLI_PATH,
  startChildServer,
  startChildWorker,
  type ChildServer,
  type ChildServerOptions,
  type ChildWorker,
} from '../../server/dist/lifecycle/child-server.js';
export * from './llm-emulator.js';
export * from './promotion.js';

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessFor } from './scope-table.js';

// Every route family of Ferry, including those other parts add, with the access it needs.
const CASES: Array<[method: string, url: string, family: string, access: string, model?: string]> = [
  ['GET', '/healthz', 'health', 'public'],
  ['GET', '/readyz', 'health', 'public'],
  ['GET', '/v2/health/ready', 'health', 'public'],
  ['GET', '/openapi.json', 'docs', 'public'],
  ['GET', '/docs/static/index.html', 'docs', 'public'],
  ['GET', '/', 'docs', 'public'],
  ['GET', '/dashboard/assets/app.js', 'static', 'public'],
  ['POST', '/v1/models/spam/predict', 'v1-predict', 'predict', 'spam'],
  ['POST', '/v1/models/spam@2/predict', 'v1-predict', 'predict', 'spam'],
  ['POST', '/v1/models/spam/versions/1.0.0/predict', 'v1-predict', 'predict', 'spam'],
  ['POST', '/v2/models/spam/infer', 'v2-infer', 'predict', 'spam'],
  ['POST', '/v2/models/spam/versions/1.0.0/infer', 'v2-infer', 'predict', 'spam'],
  ['GET', '/v1/models/llm/stream', 'stream', 'predict', 'llm'],
  ['POST', '/openai/v1/chat/completions', 'openai', 'predict'],
  ['GET', '/openai/v1/models', 'openai', 'predict'],
  ['GET', '/v1/models/spam/versions/1.0.0/artifact', 'artifact', 'predict', 'spam'],
  ['POST', '/v1/models/ocr/jobs', 'jobs', 'jobs', 'ocr'],
  ['GET', '/v1/jobs/123', 'jobs', 'jobs'],
  ['DELETE', '/v1/jobs/123', 'jobs', 'jobs'],
  ['GET', '/v1/jobs', 'jobs', 'jobs'],
  ['GET', '/v1/pipelines/churn/predictions/42', 'pipelines', 'pipelines:read'],
  ['GET', '/v1/pipelines', 'pipelines', 'pipelines:read'],
  ['POST', '/v1/pipelines/churn/predictions:batchGet', 'pipelines', 'pipelines:read'],
  ['POST', '/v1/pipelines/churn/run', 'pipelines', 'admin'],
  ['POST', '/v1/admin/repository:reload', 'admin', 'admin'],
  ['POST', '/v1/admin/models/spam/versions/1.0.0:load', 'admin', 'admin'],
  ['GET', '/v1/admin/config', 'admin', 'admin'],
  ['GET', '/v1/config', 'admin', 'admin'],
  ['POST', '/v2/repository/models/spam/load', 'repository-load', 'admin', 'spam'],
  ['POST', '/v2/repository/models/spam/unload', 'repository-load', 'admin', 'spam'],
  ['GET', '/v1/models/spam/drift', 'drift', 'key', 'spam'],
  ['GET', '/v1/models/spam/versions/1.0.0/drift', 'drift', 'key', 'spam'],
  ['GET', '/v1/models/spam/drift/histograms', 'drift', 'key', 'spam'],
  ['GET', '/v1/models/spam/rollout', 'rollout-status', 'key', 'spam'],
  ['GET', '/v1/models', 'metadata', 'key'],
  ['GET', '/v1/models/spam', 'metadata', 'key', 'spam'],
  ['GET', '/v1/models/spam/versions/1.0.0', 'metadata', 'key', 'spam'],
  ['GET', '/v2/models/spam', 'metadata', 'key', 'spam'],
  ['GET', '/v2/models/spam/ready', 'metadata', 'key', 'spam'],
  ['POST', '/v2/repository/index', 'metadata', 'key'],
  ['GET', '/v2', 'metadata', 'key'],
  ['GET', '/metrics', 'metrics', 'key'],
  ['GET', '/v1/no-such-thing', 'api-other', 'key'],
  ['POST', '/v1/models/spam/explain', 'api-other', 'key'],
  ['GET', '/openai/v2/x', 'api-other', 'key'],
];

test('the scope table gives every route family its access', () => {
  for (const [method, url, family, access, model] of CASES) {
    const d = accessFor(method, url);
    assert.equal(d.rule.family, family, `${method} ${url}`);
    assert.equal(d.rule.access, access, `${method} ${url}`);
    assert.equal(d.model, model, `${method} ${url}`);
  }
});

test('encoded, doubled and trailing slashes cannot dodge a row', () => {
  for (const url of [
    '/v1/%61dmin/config',
    '//v1//admin/config',
    '/v1/admin/config/',
    '/v1/admin/config?x=1',
    '/v1/admin%2Fconfig',
  ]) {
    assert.equal(accessFor('GET', url).rule.access, 'admin', url);
  }
  assert.equal(accessFor('POST', '/v1/models/spam%2Fpredict').rule.family, 'v1-predict');
  // A path that does not decode still needs a key.
  assert.equal(accessFor('GET', '/v1/models/%E0%A4%A').rule.access, 'key');
  assert.equal(accessFor('GET', '/%E0%A4%A').rule.access, 'key');
  // Query strings do not change the decision.
  assert.equal(accessFor('GET', '/healthz?/v1/admin').rule.family, 'health');
});

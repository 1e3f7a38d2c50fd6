// Baseline (a), the HTTP ceiling: the same Fastify, the same route and the same JSON body parsing
// as a prediction, and a constant answer. No model, no validation, no inference.
import Fastify from 'fastify';
import { parseBaselineArgs } from './args.js';

const args = parseBaselineArgs(process.argv.slice(2));
const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });

const ANSWER = { model: 'constant', version: '0.0.0', predictions: [{ label: 'constant', scores: { constant: 1 } }] };

app.post('/v1/models/:model/predict', async (req) => {
  // Fastify has already parsed the JSON body by now; touching it keeps that honest.
  if (req.body === null || typeof req.body !== 'object')
    throw Object.assign(new Error('expected a JSON object'), { statusCode: 400 });
  return ANSWER;
});
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/readyz', async () => ({ ready: true }));

await app.listen({ port: args.port, host: args.host });

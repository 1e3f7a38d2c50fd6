import { useState } from 'react';
import { client } from '../api';
import { useLoad } from '../hooks';
import { LineChart } from '../charts';
import { PageTitle } from '../page-title';

export function MonitoringPage() {
  const [model, setModel] = useState('*');
  const ts = useLoad(
    (signal) => client.monitoring.timeseries(model === '*' ? undefined : model, { signal }),
    [model],
    2000,
  );
  const ready = useLoad((signal) => client.monitoring.ready({ signal }), [], 5000);
  const points = ts.data?.points ?? [];
  const t = points.map((p) => p.t);
  const pct = (xs: Array<number | null>) => xs.map((x) => (x === null ? null : x * 100));
  const every = ts.data?.intervalSeconds ?? 5;
  // Points are sampled whether or not requests come: before the first one every rate is 0 or empty.
  const noTraffic = !points.some((p) => (p.rps ?? 0) > 0);
  const empty = `No requests yet${model === '*' ? '' : ` for ${model}`}. Send a prediction (the Playground, or curl …/predict); the charts fill in every ${every} s.`;
  return (
    <div>
      <PageTitle title="Monitoring">
        Live traffic from Ferry's own metrics: requests per second, latency, errors and fallbacks, cache hits.
      </PageTitle>
      <div className="row">
        <select value={model} onChange={(e) => setModel(e.target.value)} aria-label="model">
          <option value="*">all models</option>
          {ts.data?.models.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
        <span className="muted">
          sampled every {ts.data?.intervalSeconds ?? '?'} s from Ferry's own metrics · {points.length} points · server{' '}
          {ready.data?.ready ? <span className="ok">ready</span> : 'not ready'}
        </span>
        <a href="/metrics">raw /metrics</a>
      </div>
      {ts.error && <p className="error">{ts.error}</p>}
      <div className="grid" style={{ marginTop: '.8rem' }}>
        <LineChart
          testId="chart-throughput"
          title="Throughput"
          unit="requests/s"
          times={t}
          empty={empty}
          showEmpty={noTraffic}
          series={[{ name: 'rps', color: '#2f5aa8', values: points.map((p) => p.rps) }]}
        />
        <LineChart
          testId="chart-latency"
          title="Latency"
          unit="ms"
          empty={empty}
          showEmpty={noTraffic}
          times={t}
          series={[
            { name: 'p50', color: '#2b7a3d', values: points.map((p) => p.p50Ms) },
            { name: 'p99', color: '#d62828', values: points.map((p) => p.p99Ms) },
          ]}
        />
        <LineChart
          testId="chart-errors"
          title="Error and fallback rate"
          unit="%"
          empty={empty}
          showEmpty={noTraffic}
          times={t}
          series={[
            { name: 'errors (5xx)', color: '#d62828', values: pct(points.map((p) => p.errorRate)) },
            { name: 'fallbacks', color: '#e0904a', values: pct(points.map((p) => p.fallbackRate)) },
          ]}
        />
        <LineChart
          testId="chart-cache"
          title="Cache hit rate"
          unit="%"
          empty={empty}
          showEmpty={noTraffic}
          max={100}
          times={t}
          series={[{ name: 'hits', color: '#6a4c93', values: pct(points.map((p) => p.cacheHitRate)) }]}
        />
      </div>
    </div>
  );
}

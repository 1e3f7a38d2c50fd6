import { useState } from 'react';
import { client } from '../api';
import { useLoad } from '../hooks';
import { LineChart } from '../charts';

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
  return (
    <div>
      <h2>Monitoring</h2>
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
          series={[{ name: 'rps', color: '#2f5aa8', values: points.map((p) => p.rps) }]}
        />
        <LineChart
          testId="chart-latency"
          title="Latency"
          unit="ms"
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
          max={100}
          times={t}
          series={[{ name: 'hits', color: '#6a4c93', values: pct(points.map((p) => p.cacheHitRate)) }]}
        />
      </div>
    </div>
  );
}

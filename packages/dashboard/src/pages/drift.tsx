import { useState } from 'react';
import { client } from '../api';
import { useLoad } from '../hooks';
import { BarPairs } from '../charts';
import { PageTitle } from '../page-title';

interface Column {
  column: string;
  testable: boolean;
  type?: string;
  testLabel?: string;
  score?: number;
  threshold?: number;
  drift?: boolean;
  nReference?: number;
  nCurrent?: number;
  reason?: string;
}
interface Histogram {
  column: string;
  labels: string[];
  reference: number[];
  current: number[];
}

export function DriftPage(props: { name?: string }) {
  const models = useLoad((signal) => client.models.list({ signal }), []);
  const name = props.name ?? models.data?.[0]?.name;
  const [window, setWindow] = useState('24h');
  const report = useLoad(
    (signal) => (name ? client.models.drift(name, { signal, window }) : Promise.resolve(undefined)),
    [name, window],
  );
  const hist = useLoad(
    (signal) =>
      name
        ? client.json<{ columns: Histogram[] }>(`/v1/models/${encodeURIComponent(name)}/drift/histograms`, {
            signal,
            query: { window },
            retry: false,
          })
        : Promise.resolve(undefined),
    [name, window],
  );
  const r = report.data as
    | undefined
    | {
        status?: string;
        detail?: string;
        current?: { rows: number };
        reference?: { rows: number };
        dataset?: { datasetDrift: boolean; share: number } | null;
        columns?: Column[];
      };
  return (
    <div>
      <PageTitle title="Drift">
        Whether a model's recent inputs still look like its reference data, feature by feature.
      </PageTitle>
      <div className="row">
        {models.data?.map((m) => (
          <a key={m.name} href={`#/drift/${m.name}`} className={m.name === name ? 'ok' : ''}>
            {m.name}
          </a>
        ))}
        <select value={window} onChange={(e) => setWindow(e.target.value)} aria-label="window">
          {['1h', '24h', '7d'].map((w) => (
            <option key={w}>{w}</option>
          ))}
        </select>
      </div>
      {report.error &&
        (/ships no reference data/.test(report.error) ? (
          <div className="card" data-testid="drift-no-reference">
            <b>{name} has no reference data, so its drift cannot be measured.</b>
            <p className="muted">
              Drift compares recent inputs with a sample of the data the model was trained on. Add one to the version
              folder and name it in its <code>ferry.yaml</code>: <code>reference: reference.jsonl</code> (CSV, JSON
              Lines or Parquet, one row per instance), then reload the model.
            </p>
          </div>
        ) : (
          <p className="error">{report.error}</p>
        ))}
      {r && (
        <div className="card" data-testid="drift-report">
          <p>
            status <b>{r.status}</b> · reference {r.reference?.rows ?? 0} rows · current {r.current?.rows ?? 0} rows{' '}
            {r.dataset && (
              <>
                · dataset drift{' '}
                <b className={r.dataset.datasetDrift ? 'error' : 'ok'}>{String(r.dataset.datasetDrift)}</b> (
                {(r.dataset.share * 100).toFixed(0)}% of columns)
              </>
            )}
          </p>
          {r.detail && <p className="muted">{r.detail}</p>}
          <table>
            <thead>
              <tr>
                <th>feature</th>
                <th>type</th>
                <th>test</th>
                <th>score</th>
                <th>threshold</th>
                <th>drift</th>
                <th>n ref / cur</th>
              </tr>
            </thead>
            <tbody>
              {r.columns?.map((c) => (
                <tr key={c.column}>
                  <td>{c.column}</td>
                  <td>{c.type}</td>
                  <td>{c.testLabel ?? c.reason}</td>
                  <td>{c.score?.toPrecision(3)}</td>
                  <td>{c.threshold}</td>
                  <td className={c.drift ? 'error' : 'ok'}>{c.testable ? String(c.drift) : '—'}</td>
                  <td>
                    {c.nReference} / {c.nCurrent}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="grid">
        {hist.data?.columns.map((h) => (
          <BarPairs
            key={h.column}
            testId={`histogram-${h.column}`}
            title={`${h.column}: reference vs current`}
            labels={h.labels}
            a={h.reference}
            b={h.current}
            aName="reference"
            bName="current"
          />
        ))}
      </div>
      {hist.error && !/ships no reference data/.test(hist.error) && (
        <p className="muted">Histograms unavailable: {hist.error}</p>
      )}
    </div>
  );
}

import { useState } from 'react';
import { client, describeError, isMissingRoute } from '../api';
import { useLoad } from '../hooks';
import { PageTitle } from '../page-title';

interface RunRow {
  runId: string;
  status: string;
  rowsScored: number;
  rowsRejected: number;
  chunks?: number;
  shards?: number;
  shardsCompleted?: number;
  startedAt?: string | null;
  finishedAt?: string | null;
  error?: string;
}

function lastRunText(r: RunRow | null): string {
  return r
    ? `${r.status}: ${r.rowsScored} rows, ${r.rowsRejected} rejected${r.finishedAt ? `, finished ${new Date(r.finishedAt).toLocaleString()}` : ''}`
    : 'never run';
}

export function PipelinesPage(props: { name?: string }) {
  const list = useLoad((signal) => client.pipelines.list({ signal, retry: false }), [], 5000);
  if (list.error && isMissingRoute(list.raw))
    return (
      <div>
        <PageTitle title="Pipelines">
          Scheduled batch pipelines score a whole dataset and store the results, which apps then read by key.
        </PageTitle>
        <p className="muted">This server has no pipelines API (/v1/pipelines).</p>
      </div>
    );
  const pipelines = list.data?.pipelines ?? [];
  return (
    <div>
      <PageTitle title="Pipelines">
        Scheduled batch pipelines score a whole dataset and store the results, which apps then read by key.
      </PageTitle>
      {list.error && <p className="error">{list.error}</p>}
      <div className="card">
        <table data-testid="pipelines-table">
          <thead>
            <tr>
              <th>pipeline</th>
              <th>model</th>
              <th>schedule</th>
              <th>last run</th>
            </tr>
          </thead>
          <tbody>
            {pipelines.map((p) => (
              <tr key={String(p.name)}>
                <td>
                  <a href={`#/pipelines/${String(p.name)}`}>{String(p.name)}</a>
                </td>
                <td>{String(p.model ?? '')}</td>
                <td>{String(p.schedule ?? '—')}</td>
                <td>
                  {lastRunText(p.lastRun as RunRow | null)}
                  {p.running ? <b className="ok"> · running</b> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {pipelines.length === 0 && !list.error && (
          <p className="muted">
            No pipelines configured (the <code>pipelines:</code> section of ferry.config.yaml).
          </p>
        )}
      </div>
      {props.name && <PipelineDetail name={props.name} />}
    </div>
  );
}

function PipelineDetail(props: { name: string }) {
  const runs = useLoad((signal) => client.pipelines.runs(props.name, { signal }), [props.name], 2000);
  const [key, setKey] = useState('');
  const [hit, setHit] = useState<string>();
  const lookup = async () => {
    try {
      setHit(JSON.stringify(await client.pipelines.prediction(props.name, key), null, 2));
    } catch (e) {
      setHit(describeError(e));
    }
  };
  return (
    <div className="card">
      <h3>{props.name}: runs</h3>
      {runs.error && <p className="error">{runs.error}</p>}
      <table data-testid="runs-table">
        <thead>
          <tr>
            <th>run</th>
            <th>status</th>
            <th>shards</th>
            <th>chunks</th>
            <th>rows scored</th>
            <th>rejected</th>
            <th>started</th>
            <th>finished</th>
          </tr>
        </thead>
        <tbody>
          {(runs.data?.runs as unknown as RunRow[] | undefined)?.map((r) => (
            <tr key={r.runId} data-run={r.runId} data-status={r.status} data-rows={r.rowsScored}>
              <td>{r.runId}</td>
              <td>
                {r.status}
                {r.error ? <span className="error"> {r.error}</span> : null}
              </td>
              <td style={{ width: '12%' }}>
                <div className="bar">
                  <div style={{ width: `${r.shards ? ((r.shardsCompleted ?? 0) / r.shards) * 100 : 0}%` }} />
                </div>
                {r.shardsCompleted ?? 0}/{r.shards ?? 1}
              </td>
              <td>{r.chunks ?? ''}</td>
              <td>{r.rowsScored}</td>
              <td>{r.rowsRejected}</td>
              <td>{r.startedAt ?? ''}</td>
              <td>{r.finishedAt ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          void lookup();
        }}
        style={{ marginTop: '.6rem' }}
      >
        <input value={key} onChange={(e) => setKey(e.target.value)} placeholder="key" aria-label="key" />
        <button type="submit">Look up prediction</button>
      </form>
      {hit && <pre data-testid="pipeline-prediction">{hit}</pre>}
    </div>
  );
}

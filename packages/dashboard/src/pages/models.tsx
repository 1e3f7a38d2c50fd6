import { client } from '../api';
import { useLoad } from '../hooks';
import { Markdown } from '../markdown';
import { PageTitle } from '../page-title';

export function ModelsPage(props: { name?: string; version?: string }) {
  const list = useLoad((signal) => client.models.list({ signal }), []);
  return (
    <div>
      <PageTitle title="Models">
        Every model this server serves: its versions, their state, the contract (what goes in and what comes out) and
        the model card.
      </PageTitle>
      {list.error && <p className="error">{list.error}</p>}
      <div className="card">
        <table data-testid="models-table">
          <thead>
            <tr>
              <th>model</th>
              <th>default</th>
              <th>versions</th>
              <th>aliases</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data?.map((m) => (
              <tr key={m.name}>
                <td>
                  <a href={`#/models/${m.name}`}>{m.name}</a>
                </td>
                <td>{m.defaultVersion}</td>
                <td>
                  {m.versions.map((v) => (
                    <a key={v.version} href={`#/models/${m.name}/${v.version}`} style={{ marginRight: '.5rem' }}>
                      {v.version} <span className={v.state === 'ready' ? 'ok' : 'muted'}>({v.state})</span>
                    </a>
                  ))}
                </td>
                <td>
                  {Object.entries(m.aliases)
                    .map(([a, v]) => `${a} → ${v}`)
                    .join(', ')}
                </td>
                <td>
                  <a href={`#/playground/${m.name}`}>playground →</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {props.name && <ModelDetail name={props.name} version={props.version} />}
    </div>
  );
}

function ModelDetail(props: { name: string; version?: string }) {
  const d = useLoad(
    (signal) => client.models.get(props.name, { signal, ...(props.version && { version: props.version }) }),
    [props.name, props.version],
  );
  if (d.error) return <p className="error">{d.error}</p>;
  if (!d.data) return <p className="muted">loading…</p>;
  const m = d.data;
  return (
    <div data-testid="model-detail">
      <h3>
        {m.name}@{m.version}{' '}
        <small className="muted">
          {m.state}
          {m.loadMs !== undefined ? ` · loaded in ${m.loadMs} ms` : ''}
          {m.warmupMs !== undefined ? ` · warm-up ${m.warmupMs} ms` : ''}
        </small>
      </h3>
      {m.description && <p>{m.description}</p>}
      <div className="grid">
        <div className="card">
          <h4>Inputs (contract)</h4>
          <table>
            <thead>
              <tr>
                <th>feature</th>
                <th>type</th>
                <th>constraints</th>
              </tr>
            </thead>
            <tbody>
              {m.contract.inputs.map((f) => (
                <tr key={f.name}>
                  <td>{f.name}</td>
                  <td>{f.type}</td>
                  <td className="muted">{constraints(f)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h4>Outputs</h4>
          <pre>{JSON.stringify({ outputs: m.contract.outputs, postprocess: m.contract.postprocess }, null, 2)}</pre>
        </div>
        <div className="card">
          <h4>Model card</h4>
          {m.card ? <Markdown text={m.card} testId="model-card" /> : <p className="muted">no card.md</p>}
        </div>
      </div>
      <details className="card">
        <summary>Full contract and JSON Schemas</summary>
        <pre>{JSON.stringify({ contract: m.contract, schemas: m.schemas }, null, 2)}</pre>
      </details>
    </div>
  );
}

function constraints(f: Record<string, unknown>): string {
  const parts: string[] = [];
  if (f.min !== undefined || f.max !== undefined) parts.push(`${f.min ?? '−∞'} … ${f.max ?? '∞'}`);
  if (Array.isArray(f.values))
    parts.push(`${f.values.length} values: ${f.values.slice(0, 6).join(', ')}${f.values.length > 6 ? ', …' : ''}`);
  if (f.maxLength !== undefined) parts.push(`≤ ${f.maxLength} chars`);
  if (Array.isArray(f.shape)) parts.push(`${f.dtype} [${f.shape.join(', ')}]`);
  if (f.optional) parts.push('optional');
  if (typeof f.description === 'string') parts.push(f.description);
  return parts.join(' · ');
}

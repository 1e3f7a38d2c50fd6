// The first page a person sees: what Ferry is, what this server has, and where to start.
import { client } from '../api';
import { useLoad } from '../hooks';

export function HomePage() {
  const list = useLoad((signal) => client.models.list({ signal }), []);
  const ready = useLoad((signal) => client.monitoring.ready({ signal }), [], 5000);
  const first = list.data?.[0]?.name;
  return (
    <div data-testid="home">
      <h2>Ferry</h2>
      <p className="lede" data-testid="page-lede">
        Ferry serves ONNX models to web apps: one <code>ferry.yaml</code> per model gives a typed, versioned and
        monitored REST API, jobs on a queue, streaming, batch pipelines and inference in the browser.
      </p>
      <div className="grid">
        <div className="card">
          <h3>This server</h3>
          <p>
            {list.data ? `${list.data.length} model${list.data.length === 1 ? '' : 's'}` : 'models: loading…'}
            {' · '}
            {ready.data?.ready ? <span className="ok">ready</span> : <span className="muted">not ready yet</span>}
          </p>
          {list.error && <p className="error">{list.error}</p>}
          <ul>
            {list.data?.map((m) => (
              <li key={m.name}>
                <a href={`#/models/${m.name}`}>{m.name}</a>{' '}
                <span className="muted">{m.versions.map((v) => v.version).join(', ')}</span>
              </li>
            ))}
          </ul>
        </div>
        <div className="card">
          <h3>Where to start</h3>
          <ol>
            <li>
              <a href="#/models">Models</a>: what each model takes and answers, and its card.
            </li>
            <li>
              <a href={first ? `#/playground/${first}` : '#/playground'}>Playground</a>: try one by hand, on the server
              or in this browser.
            </li>
            <li>
              <a href="/docs">API docs</a>: every route, generated from the server (<code>/openapi.json</code>).
            </li>
            <li>
              <a href="#/monitoring">Monitoring</a> and <a href="#/drift">Drift</a> fill in as traffic arrives.
            </li>
          </ol>
          <p className="muted">
            From an app: <code>npm install @ferry/client</code>, then{' '}
            <code>{`new FerryClient({ baseUrl }).predict('${first ?? 'my-model'}', [instance])`}</code>. A new model:{' '}
            <code>npx ferry init model.onnx --name my-model --repo models</code>.
          </p>
        </div>
      </div>
    </div>
  );
}

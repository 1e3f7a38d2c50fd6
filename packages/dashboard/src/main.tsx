import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { FerryProvider } from '@ferry/client/react';
import { createEdgeModel } from '@ferry/client/edge';
import { apiKey, client, onAuthNeeded } from './api';
import { useHashRoute } from './hooks';
import { HomePage } from './pages/home';
import { ModelsPage } from './pages/models';
import { PlaygroundPage } from './pages/playground';
import { JobsPage } from './pages/jobs';
import { PipelinesPage } from './pages/pipelines';
import { MonitoringPage } from './pages/monitoring';
import { DriftPage } from './pages/drift';
import { RolloutPage } from './pages/rollout';
import { LlmPage } from './pages/llm';
import './style.css';

const NAV: Array<[string, string]> = [
  ['models', 'Models'],
  ['playground', 'Playground'],
  ['jobs', 'Jobs'],
  ['pipelines', 'Pipelines'],
  ['monitoring', 'Monitoring'],
  ['drift', 'Drift'],
  ['rollout', 'Rollout'],
  ['llm', 'LLM'],
];

function KeyPrompt(props: { onDone(): void }) {
  const [value, setValue] = useState(apiKey.get() ?? '');
  return (
    <form
      className="keyprompt"
      data-testid="api-key-prompt"
      onSubmit={(e) => {
        e.preventDefault();
        apiKey.set(value.trim());
        props.onDone();
        location.reload();
      }}
    >
      <b>This server requires an API key.</b>
      <input
        type="password"
        placeholder="API key"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        aria-label="API key"
      />
      <button type="submit">Save</button>
      <span className="muted">
        Kept in this browser only (localStorage), sent as <code>Authorization: Bearer</code>.
      </span>
    </form>
  );
}

function App() {
  const route = useHashRoute();
  const [needKey, setNeedKey] = useState(false);
  useEffect(() => onAuthNeeded(() => setNeedKey(true)), []);
  const page = route[0];
  return (
    <FerryProvider client={client}>
      <header>
        <a href="#/" className="brand">
          Ferry
        </a>
        <nav>
          {NAV.map(([k, label]) => (
            <a key={k} href={`#/${k}`} className={page === k ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span className="spacer" />
        <a href="/docs">API docs</a>
        <button className="linkish" onClick={() => setNeedKey((v) => !v)}>
          {apiKey.get() ? 'API key ✓' : 'API key'}
        </button>
      </header>
      {needKey && <KeyPrompt onDone={() => setNeedKey(false)} />}
      <main>
        {page === 'home' && <HomePage />}
        {page === 'models' && <ModelsPage name={route[1]} version={route[2]} />}
        {page === 'playground' && <PlaygroundPage name={route[1]} />}
        {page === 'jobs' && <JobsPage id={route[1]} />}
        {page === 'pipelines' && <PipelinesPage name={route[1]} />}
        {page === 'llm' && <LlmPage />}
        {page === 'monitoring' && <MonitoringPage />}
        {page === 'drift' && <DriftPage name={route[1]} />}
        {page === 'rollout' && <RolloutPage />}
      </main>
    </FerryProvider>
  );
}

// For the browser console (and the browser tests): the same client and edge loader the pages use.
(window as unknown as { ferry: unknown }).ferry = { client, createEdgeModel };

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

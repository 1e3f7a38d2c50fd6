// The LLM gateway's page: spend by route and key, savings by control, tier and cache mix, all read from
// the ledger through GET /v1/llm/spend (docs/llm-gateway.md).
import { useState } from 'react';
import { apiKey } from '../api';
import { useLoad } from '../hooks';

interface SpendRow {
  group: string;
  requests: number;
  upstreamCalls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  savedUsd: number;
}
interface ControlRow {
  control: string;
  requests: number;
  savedUsd: number;
}
interface Summary {
  since: number;
  byControl: ControlRow[];
  byRoute: SpendRow[];
  byKey: SpendRow[];
  byTier: SpendRow[];
  byCache: SpendRow[];
  byProvider: SpendRow[];
}

async function loadSpend(days: number, signal: AbortSignal): Promise<Summary | 'missing'> {
  const key = apiKey.get();
  const res = await fetch(`/v1/llm/spend?sinceMs=${Date.now() - days * 86_400_000}`, {
    signal,
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  if (res.status === 404) return 'missing';
  if (!res.ok)
    throw new Error(`${res.status}: ${((await res.json()) as { detail?: string }).detail ?? res.statusText}`);
  return (await res.json()) as Summary;
}

const money = (x: number) => `$${x.toFixed(x < 1 ? 4 : 2)}`;

function Table(props: { title: string; rows: SpendRow[]; testId: string }) {
  const total = props.rows.reduce((s, r) => s + r.requests, 0);
  return (
    <div className="card">
      <h3>{props.title}</h3>
      <table data-testid={props.testId}>
        <thead>
          <tr>
            <th>{props.title.split(' ').at(-1)}</th>
            <th>requests</th>
            <th>share</th>
            <th>upstream calls</th>
            <th>prompt tokens</th>
            <th>completion tokens</th>
            <th>spent</th>
            <th>saved</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => (
            <tr key={r.group}>
              <td>{r.group || '—'}</td>
              <td>{r.requests}</td>
              <td>{total ? `${((100 * r.requests) / total).toFixed(1)}%` : ''}</td>
              <td>{r.upstreamCalls}</td>
              <td>{r.promptTokens}</td>
              <td>{r.completionTokens}</td>
              <td>{money(r.costUsd)}</td>
              <td>{money(r.savedUsd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** What each cost control saved, with its share of all savings (the guide's "not optional" controls). */
function Savings(props: { rows: ControlRow[]; spent: number }) {
  const saved = props.rows.reduce((a, r) => a + r.savedUsd, 0);
  return (
    <div className="card">
      <h3>Savings by control</h3>
      <table data-testid="llm-by-control">
        <thead>
          <tr>
            <th>control</th>
            <th>requests</th>
            <th>saved</th>
            <th>share of savings</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => (
            <tr key={r.control}>
              <td>{r.control}</td>
              <td>{r.requests}</td>
              <td>{money(r.savedUsd)}</td>
              <td>{saved > 0 ? `${((100 * r.savedUsd) / saved).toFixed(1)}%` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted">
        Without the controls this traffic would have cost {money(props.spent + saved)}; it cost {money(props.spent)}.
      </p>
    </div>
  );
}

export function LlmPage() {
  const [days, setDays] = useState(30);
  const spend = useLoad((signal) => loadSpend(days, signal), [days], 10_000);
  if (spend.data === 'missing')
    return (
      <div>
        <h2>LLM gateway</h2>
        <p className="muted">This server has no LLM gateway API (/v1/llm/spend).</p>
      </div>
    );
  const s = spend.data;
  const spent = s?.byRoute.reduce((a, r) => a + r.costUsd, 0) ?? 0;
  const saved = s?.byControl.reduce((a, r) => a + r.savedUsd, 0) ?? 0;
  return (
    <div>
      <h2>LLM gateway</h2>
      {spend.error && <p className="error">{spend.error}</p>}
      <p>
        Last{' '}
        <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
          {[1, 7, 30, 90].map((d) => (
            <option key={d} value={d}>
              {d} days
            </option>
          ))}
        </select>
        : spent <b data-testid="llm-spent">{money(spent)}</b>, saved by the cost controls{' '}
        <b data-testid="llm-saved">{money(saved)}</b>. Prices come from the server&apos;s price table (the shipped one
        is unverified).
      </p>
      {s && (
        <>
          <Savings rows={s.byControl} spent={spent} />
          <Table title="Spend by route" rows={s.byRoute} testId="llm-by-route" />
          <Table title="Spend by key" rows={s.byKey} testId="llm-by-key" />
          <Table title="Savings by cache" rows={s.byCache} testId="llm-by-cache" />
          <Table title="Tier mix by tier" rows={s.byTier} testId="llm-by-tier" />
          <Table title="Answers by provider" rows={s.byProvider} testId="llm-by-provider" />
        </>
      )}
    </div>
  );
}

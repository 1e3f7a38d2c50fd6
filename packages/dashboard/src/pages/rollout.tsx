import { client, describeError, isMissingRoute } from '../api';
import { useLoad } from '../hooks';
import { PageTitle } from '../page-title';

export function RolloutPage() {
  const data = useLoad(
    async (signal) => {
      const models = await client.models.list({ signal });
      return Promise.all(
        models.map(async (m) => {
          try {
            return {
              name: m.name,
              aliases: m.aliases,
              rollout: await client.models.rollout(m.name, { signal, retry: false }),
            };
          } catch (e) {
            return {
              name: m.name,
              aliases: m.aliases,
              error: isMissingRoute(e) ? 'no rollout API on this server' : describeError(e),
            };
          }
        }),
      );
    },
    [],
    5000,
  );
  return (
    <div>
      <PageTitle title="Rollout">
        Canary and shadow versions: how much traffic each gets and how often they agree with the stable version.
      </PageTitle>
      {data.error && <p className="error">{data.error}</p>}
      <div className="card">
        <table data-testid="rollout-table">
          <thead>
            <tr>
              <th>model</th>
              <th>aliases</th>
              <th>canary</th>
              <th>shadow</th>
              <th>deprecated</th>
            </tr>
          </thead>
          <tbody>
            {data.data?.map((m) => {
              const r = (m as { rollout?: Record<string, unknown> }).rollout as
                | undefined
                | {
                    canary?: { version?: string; weight?: number };
                    shadow?: {
                      version?: string;
                      labelAgreement?: number | null;
                      comparedInstances?: number;
                      errors?: number;
                      scoreDifference?: { p99?: number; max?: number };
                    } | null;
                    deprecated?: Array<{ version?: string; sunset?: string }>;
                  };
              return (
                <tr key={m.name}>
                  <td>{m.name}</td>
                  <td>
                    {Object.entries(m.aliases)
                      .map(([a, v]) => `${a} → ${v}`)
                      .join(', ') || '—'}
                  </td>
                  <td
                    data-testid={`canary-${m.name}`}
                    data-version={r?.canary?.version ?? ''}
                    data-weight={r?.canary?.weight ?? ''}
                  >
                    {r?.canary
                      ? `${r.canary.version} at ${r.canary.weight}%`
                      : ((m as { error?: string }).error ?? '—')}
                  </td>
                  <td
                    data-testid={`shadow-${m.name}`}
                    data-version={r?.shadow?.version ?? ''}
                    data-agreement={r?.shadow?.labelAgreement ?? ''}
                    data-compared={r?.shadow?.comparedInstances ?? ''}
                    data-p99={r?.shadow?.scoreDifference?.p99 ?? ''}
                    data-errors={r?.shadow?.errors ?? ''}
                  >
                    {r?.shadow
                      ? `${r.shadow.version}: label agreement ${r.shadow.labelAgreement == null ? '—' : `${(r.shadow.labelAgreement * 100).toFixed(1)}%`} over ${r.shadow.comparedInstances ?? 0} instances, score diff p99 ${r.shadow.scoreDifference?.p99?.toPrecision(2) ?? '—'}, ${r.shadow.errors ?? 0} errors`
                      : '—'}
                  </td>
                  <td>
                    {r?.deprecated?.length
                      ? r.deprecated.map((d) => `${d.version} (sunset ${d.sunset})`).join(', ')
                      : '—'}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

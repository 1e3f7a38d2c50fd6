import { useState } from 'react';
import { useJob } from '@ferry/client/react';
import type { Job } from '@ferry/client';
import { client, describeError, isMissingRoute } from '../api';
import { useLoad } from '../hooks';
import { PageTitle } from '../page-title';

function progressOf(j: Job): number | undefined {
  if (typeof j.progress === 'number') return j.progress > 1 ? j.progress / 100 : j.progress;
  if (j.progress && typeof j.progress === 'object') {
    const p = j.progress as { done?: number; total?: number; fraction?: number; percent?: number };
    if (p.fraction !== undefined) return p.fraction;
    if (p.percent !== undefined) return p.percent / 100;
    if (p.done !== undefined && p.total) return p.done / p.total;
  }
  return j.state === 'completed' ? 1 : undefined;
}

export function JobsPage(props: { id?: string }) {
  const jobs = useLoad((signal) => client.jobs.list({ limit: 50 }, { signal, retry: false }), [], 3000);
  const models = useLoad((signal) => client.models.list({ signal }), []);
  const [model, setModel] = useState('');
  const [body, setBody] = useState('');
  const [file, setFile] = useState<File>();
  const [error, setError] = useState<string>();
  const submit = async () => {
    setError(undefined);
    try {
      const m = model || models.data?.[0]?.name || '';
      const job = file
        ? await client.jobs.upload(m, 'file', file, { filename: file.name })
        : await client.jobs.submit(m, JSON.parse(body || '[]') as unknown[]);
      location.hash = `#/jobs/${job.id}`;
      jobs.reload();
    } catch (e) {
      setError(e instanceof SyntaxError ? `instances are not valid JSON: ${e.message}` : describeError(e));
    }
  };
  if (jobs.error && isMissingRoute(jobs.raw))
    return (
      <div>
        <PageTitle title="Jobs">
          Long or large inference runs as a job on a queue: submit one, watch its progress, read its result.
        </PageTitle>
        <p className="muted" data-testid="jobs-missing">
          This server has no jobs API (/v1/jobs).
        </p>
      </div>
    );
  return (
    <div>
      <PageTitle title="Jobs">
        Long or large inference runs as a job on a queue: submit one, watch its progress, read its result.
      </PageTitle>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
        data-testid="job-form"
      >
        <div className="row">
          <select value={model} onChange={(e) => setModel(e.target.value)} aria-label="model" data-testid="job-model">
            {models.data?.map((m) => (
              <option key={m.name}>{m.name}</option>
            ))}
          </select>
          <input type="file" accept="image/*" onChange={(e) => setFile(e.target.files?.[0])} data-testid="job-file" />
        </div>
        <textarea
          rows={3}
          style={{ width: '100%' }}
          placeholder='[{"text": "..."}] — or pick an image file for OCR'
          value={body}
          onChange={(e) => setBody(e.target.value)}
          aria-label="instances"
          data-testid="job-instances"
        />
        <button className="primary" type="submit" data-testid="job-submit">
          Submit job
        </button>
        {error && <p className="error">{error}</p>}
      </form>
      {props.id && <JobView id={props.id} />}
      <div className="card">
        <table data-testid="jobs-table">
          <thead>
            <tr>
              <th>id</th>
              <th>model</th>
              <th>state</th>
              <th>progress</th>
              <th>created</th>
            </tr>
          </thead>
          <tbody>
            {jobs.data?.jobs.map((j) => (
              <tr key={j.id}>
                <td>
                  <a href={`#/jobs/${j.id}`}>{j.id.slice(0, 12)}</a>
                </td>
                <td>
                  {j.model}@{j.version}
                </td>
                <td>{j.state}</td>
                <td style={{ width: '20%' }}>
                  <div className="bar">
                    <div style={{ width: `${(progressOf(j) ?? 0) * 100}%` }} />
                  </div>
                </td>
                <td>{j.createdAt}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {jobs.error && <p className="error">{jobs.error}</p>}
      </div>
    </div>
  );
}

function JobView(props: { id: string }) {
  const { job, error, done } = useJob(props.id);
  return (
    <div
      className="card"
      data-testid="job-view"
      data-state={job?.state}
      data-progress={job ? (progressOf(job) ?? '') : ''}
    >
      <h3>Job {props.id}</h3>
      {error && <p className="error">{describeError(error)}</p>}
      {job && (
        <>
          <p>
            state: <b data-testid="job-state">{job.state}</b> · attempts {job.attempts ?? 0}{' '}
            {done && <span className="ok">finished</span>}
          </p>
          <div className="bar">
            <div style={{ width: `${(progressOf(job) ?? 0) * 100}%` }} />
          </div>
          {job.result !== undefined && job.result !== null && (
            <pre data-testid="job-result">{JSON.stringify(job.result, null, 2)}</pre>
          )}
          {job.error ? <pre className="error">{JSON.stringify(job.error, null, 2)}</pre> : null}
          {job.state === 'queued' || job.state === 'active' ? (
            <button onClick={() => void client.jobs.cancel(props.id)}>Cancel</button>
          ) : null}
        </>
      )}
    </div>
  );
}

// Small SVG charts: no chart library, so the bundle stays small and the server ships it at once.
export interface Series {
  name: string;
  color: string;
  values: Array<number | null>;
}

export function LineChart(props: {
  title: string;
  times: number[];
  series: Series[];
  unit?: string;
  testId?: string;
  max?: number;
}) {
  const w = 520,
    h = 160,
    pad = 34;
  const all = props.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const top = props.max ?? Math.max(1e-9, ...all) * 1.1;
  const n = Math.max(props.times.length, 2);
  const x = (i: number) => pad + (i * (w - pad - 8)) / (n - 1);
  const y = (v: number) => h - 20 - (v / top) * (h - 34);
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3));
  return (
    <figure className="chart" data-testid={props.testId} data-points={all.length}>
      <figcaption>
        {props.title}
        {props.unit ? ` (${props.unit})` : ''}
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} width="100%" role="img" aria-label={props.title}>
        <line x1={pad} y1={h - 20} x2={w - 8} y2={h - 20} stroke="#bbb" />
        <text x={2} y={14} fontSize="10">
          {fmt(top)}
        </text>
        <text x={2} y={h - 22} fontSize="10">
          0
        </text>
        {props.times.length > 0 && (
          <text x={pad} y={h - 6} fontSize="10">
            {new Date(props.times[0]!).toLocaleTimeString()}
          </text>
        )}
        {props.times.length > 1 && (
          <text x={w - 70} y={h - 6} fontSize="10">
            {new Date(props.times.at(-1)!).toLocaleTimeString()}
          </text>
        )}
        {props.series.map((s) => {
          const pts = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : `${x(i)},${y(v)}`));
          const segments: string[][] = [[]];
          for (const p of pts) {
            if (p) segments.at(-1)!.push(p);
            else if (segments.at(-1)!.length) segments.push([]);
          }
          return segments
            .filter((sg) => sg.length)
            .map((sg, k) =>
              sg.length === 1 ? (
                <circle
                  key={`${s.name}${k}`}
                  cx={sg[0]!.split(',')[0]}
                  cy={sg[0]!.split(',')[1]}
                  r={2.5}
                  fill={s.color}
                />
              ) : (
                <polyline key={`${s.name}${k}`} points={sg.join(' ')} fill="none" stroke={s.color} strokeWidth={1.8} />
              ),
            );
        })}
      </svg>
      <div className="legend">
        {props.series.map((s) => (
          <span key={s.name} style={{ color: s.color }}>
            ■ {s.name}
          </span>
        ))}
      </div>
    </figure>
  );
}

export function BarPairs(props: {
  title: string;
  labels: string[];
  a: number[];
  b: number[];
  aName: string;
  bName: string;
  testId?: string;
}) {
  const w = 520,
    h = 150;
  const max = Math.max(1e-9, ...props.a, ...props.b);
  const bw = (w - 20) / Math.max(props.labels.length, 1);
  return (
    <figure
      className="chart"
      data-testid={props.testId}
      data-bins={props.labels.length}
      data-a={JSON.stringify(props.a)}
      data-b={JSON.stringify(props.b)}
    >
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} width="100%" role="img" aria-label={props.title}>
        {props.labels.map((l, i) => (
          <g key={l + i}>
            <rect
              x={10 + i * bw + 1}
              y={h - 20 - (props.a[i]! / max) * (h - 30)}
              width={bw / 2 - 2}
              height={(props.a[i]! / max) * (h - 30)}
              fill="#8aa4c8"
            />
            <rect
              x={10 + i * bw + bw / 2}
              y={h - 20 - (props.b[i]! / max) * (h - 30)}
              width={bw / 2 - 2}
              height={(props.b[i]! / max) * (h - 30)}
              fill="#e0904a"
            />
            {props.labels.length <= 16 && (
              <text x={10 + i * bw} y={h - 6} fontSize="9">
                {l.slice(0, 8)}
              </text>
            )}
          </g>
        ))}
      </svg>
      <div className="legend">
        <span style={{ color: '#8aa4c8' }}>■ {props.aName}</span>{' '}
        <span style={{ color: '#e0904a' }}>■ {props.bName}</span>
      </div>
    </figure>
  );
}

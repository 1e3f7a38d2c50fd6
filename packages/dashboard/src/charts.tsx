// Charts. Time series use uPlot (a maintained, small canvas chart library: time axis, value axis with
// units, a legend that shows the values under the cursor, gaps bridged); the drift histograms are SVG bars.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  name: string;
  color: string;
  values: Array<number | null>;
}

const fmt = (v: number | null | undefined, unit = ''): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const abs = Math.abs(v);
  const s = abs >= 100 ? v.toFixed(0) : abs >= 1 ? v.toFixed(1) : abs === 0 ? '0' : v.toPrecision(2);
  return unit ? `${s} ${unit}` : s;
};

export function LineChart(props: {
  title: string;
  times: number[];
  series: Series[];
  unit?: string;
  testId?: string;
  max?: number;
  /** Shown instead of the plot when no series has a value yet, or while `showEmpty` is true. */
  empty?: string;
  /** The caller knows there is nothing to show yet (e.g. no requests: every rate is 0). */
  showEmpty?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const all = props.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const key = `${props.unit}|${props.max}|${props.series.map((s) => `${s.name}:${s.color}`).join(',')}`;
  const hasData = all.length > 0 && !props.showEmpty;

  // One plot per series layout; data updates go through setData, so polling does not rebuild it.
  useEffect(() => {
    const el = box.current;
    if (!el || !hasData) return;
    const unit = props.unit ?? '';
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height: 190,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, props.max ?? (max > 0 ? max * 1.1 : 1)] },
      },
      axes: [
        { stroke: '#555', grid: { stroke: '#eee' } },
        {
          stroke: '#555',
          grid: { stroke: '#eee' },
          size: 56,
          label: unit,
          labelSize: 14,
          values: (_u, ticks) => ticks.map((t) => fmt(t)),
        },
      ],
      series: [
        { label: 'time', value: (_u, v) => (v === null ? '–' : new Date(v * 1000).toLocaleTimeString()) },
        ...props.series.map((s) => ({
          label: s.name,
          stroke: s.color,
          width: 1.8,
          spanGaps: true,
          points: { show: true, size: 4 },
          value: (_u: uPlot, v: number | null) => fmt(v, unit),
        })),
      ],
    };
    const u = new uPlot(opts, [[], ...props.series.map(() => [])], el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(240, el.clientWidth), height: 190 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, hasData]);

  useEffect(() => {
    plot.current?.setData([
      props.times.map((t) => t / 1000),
      ...props.series.map((s) => s.values),
    ] as uPlot.AlignedData);
  });

  return (
    <figure className="chart" data-testid={props.testId} data-points={all.length}>
      <figcaption>
        {props.title}
        {props.unit ? ` (${props.unit})` : ''}
      </figcaption>
      {hasData ? (
        <div ref={box} className="plot" role="img" aria-label={props.title} />
      ) : (
        <p className="empty muted" data-testid={props.testId && `${props.testId}-empty`}>
          {props.empty ?? 'No data yet.'}
        </p>
      )}
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
            <title>{`${l}: ${props.aName} ${fmt(props.a[i])}, ${props.bName} ${fmt(props.b[i])}`}</title>
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

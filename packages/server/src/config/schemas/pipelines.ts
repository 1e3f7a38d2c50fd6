// The `pipelines:` section of ferry.config.yaml: batch scoring jobs, keyed by pipeline name.
// Referenced with one line from config/schema.ts; the cross-field checks TypeBox cannot express
// (a cron that parses, a glob that is not empty, a key that is selected) live in validate.ts.
import { Type, type Static } from '@sinclair/typebox';

/** A file, or a glob (`data/*.parquet`) in the file name; files are read in sorted name order so chunks are
 * deterministic. Relative to the working directory.
 */
const FilePath = Type.String({ minLength: 1 });

const CsvSource = Type.Object(
  {
    kind: Type.Literal('csv'),
    path: FilePath,
    /** Field separator (default `,`). The first line is the header. */
    delimiter: Type.Optional(Type.String({ minLength: 1, maxLength: 1, default: ',' })),
  },
  { additionalProperties: false },
);

const FileSource = Type.Object(
  {
    kind: Type.Union([Type.Literal('jsonl'), Type.Literal('parquet'), Type.Literal('arrow')]),
    path: FilePath,
  },
  { additionalProperties: false },
);

const SqlSource = Type.Object(
  {
    kind: Type.Literal('sql'),
    /** `sqlite:PATH` or `postgres://…`; empty = Ferry's own store. */
    url: Type.Optional(Type.String({ default: '' })),
    /** A SELECT. It is read in order of `orderBy` (default: the key columns) so chunks are deterministic. */
    query: Type.String({ minLength: 1 }),
    orderBy: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: [] })),
  },
  { additionalProperties: false },
);

export const PipelineSourceSchema = Type.Union([CsvSource, FileSource, SqlSource]);

/** How one model feature is obtained from the source row. */
export const FeatureMappingSchema = Type.Object(
  {
    /** The model feature. */
    feature: Type.String({ minLength: 1 }),
    /** Source column (default: the feature's own name). */
    column: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * Conversion applied to the column: `number`, `integer`, `string`, `boolean`; or a part of a date/time
     * column (ISO text, epoch ms, or a Parquet/Arrow timestamp): `month` (1-12), `dayOfWeek` (0 = Sunday),
     * `hour` (fractional, 0-24), `dayOfMonth`, `year`.
     */
    transform: Type.Optional(
      Type.Union(
        ['number', 'integer', 'string', 'boolean', 'month', 'dayOfWeek', 'hour', 'dayOfMonth', 'year'].map((t) =>
          Type.Literal(t),
        ),
      ),
    ),
  },
  { additionalProperties: false },
);

export const PipelineSinkSchema = Type.Union([
  /** Results in the store (`pipeline_predictions`), served by `/v1/pipelines/{name}/predictions/{key}`. */
  Type.Object({ kind: Type.Literal('table') }, { additionalProperties: false }),
  /**
   * Part files `<dir>/<run>/part-<chunk>.<ext>`, each written whole then renamed, so a resumed run
   * overwrites a part instead of duplicating it. Rejects go to `<dir>/<run>/rejects-<chunk>.<ext>`.
   */
  Type.Object(
    { kind: Type.Union([Type.Literal('parquet'), Type.Literal('csv')]), dir: Type.String({ minLength: 1 }) },
    { additionalProperties: false },
  ),
]);

export const PipelineSchema = Type.Object(
  {
    description: Type.Optional(Type.String()),
    source: PipelineSourceSchema,
    /** `name@1` (newest 1.x.y), `name@1.2.0`, `name` (default version), or an alias. */
    model: Type.String({ minLength: 1 }),
    /**
     * The column(s) identifying a row; a composite key is joined with `|` in URLs. `$row` is the row's
     * 0-based position in the source: a stable id for an immutable file without an id column.
     */
    key: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
    /**
     * How features are read from the source: a string is a feature read from the same-named column; an
     * object names the column and a conversion. Features not listed read the same-named column (after `rename`).
     */
    select: Type.Optional(
      Type.Array(Type.Union([Type.String({ minLength: 1 }), FeatureMappingSchema]), { default: [] }),
    ),
    /** `{feature: column}`: shorthand for select entries that only rename. */
    rename: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1 }), { default: {} })),
    /** Where results go; default the store's table. */
    sink: Type.Optional(PipelineSinkSchema),
    /** Cron expression (5 or 6 fields, croner syntax); the server runs the pipeline on it. Empty = only on demand. */
    schedule: Type.Optional(Type.String({ default: '' })),
    /** Time zone for `schedule` (IANA name); default UTC. */
    timezone: Type.Optional(Type.String({ default: 'UTC' })),
    /** Rows per chunk: the unit of commit, checkpoint and sharding. Memory is bounded by a few chunks. */
    chunkRows: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 50_000 })),
    /** Rows per inference call inside a chunk (spread over the worker threads). */
    batchRows: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, default: 4096 })),
    /** Completed runs whose predictions are kept in the table sink; older ones are deleted after a run completes. */
    keepRuns: Type.Optional(Type.Integer({ minimum: 1, default: 2 })),
  },
  { additionalProperties: false },
);

export const PipelinesConfigSchema = Type.Record(
  Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' }),
  PipelineSchema,
  { default: {} },
);

/** A pipeline as written in the config (defaults not yet applied). */
export type PipelineInput = Static<typeof PipelineSchema>;
type Defaulted = 'select' | 'rename' | 'schedule' | 'timezone' | 'chunkRows' | 'batchRows' | 'keepRuns';
/** A pipeline with every default applied. */
export type PipelineConfig = Omit<PipelineInput, Defaulted> & Required<Pick<PipelineInput, Defaulted>>;

// TypeBox's Value.Default does not descend into Record values, so pipeline defaults are applied here.
export function pipelineWithDefaults(p: PipelineInput): PipelineConfig {
  return {
    ...p,
    select: p.select ?? [],
    rename: p.rename ?? {},
    schedule: p.schedule ?? '',
    timezone: p.timezone ?? 'UTC',
    chunkRows: p.chunkRows ?? 50_000,
    batchRows: p.batchRows ?? 4096,
    keepRuns: p.keepRuns ?? 2,
  };
}

/** Every configured pipeline, with defaults applied, by name. */
export function pipelinesOf(cfg: { pipelines: PipelinesConfig }): Record<string, PipelineConfig> {
  return Object.fromEntries(Object.entries(cfg.pipelines).map(([n, p]) => [n, pipelineWithDefaults(p)]));
}
export type PipelinesConfig = Static<typeof PipelinesConfigSchema>;
export type PipelineSource = Static<typeof PipelineSourceSchema>;
export type PipelineSink = Static<typeof PipelineSinkSchema>;

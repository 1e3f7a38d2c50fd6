// The inference contract: the typed schema of a model version's `ferry.yaml`.
// TypeBox gives us both the TypeScript type and a JSON Schema that Ajv compiles, so the manifest
// is described once and validated with the path of every bad key.
import { Type, type Static } from '@sinclair/typebox';

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'lower-case identifier' });
const FeatureName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$' });

/** ONNX element types Ferry can move in and out of a model. */
export const TENSOR_DTYPES = [
  'float32',
  'float64',
  'float16',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
  'string',
] as const;
export type TensorDtype = (typeof TENSOR_DTYPES)[number];
const Dtype = Type.Union(TENSOR_DTYPES.map((d) => Type.Literal(d)));

const common = {
  name: FeatureName,
  description: Type.Optional(Type.String()),
  /** Whether the feature may be omitted (then `default` or the preprocessing's impute step applies). */
  optional: Type.Optional(Type.Boolean()),
};

export const NumberFeature = Type.Object(
  {
    ...common,
    type: Type.Literal('number'),
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
    default: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

export const IntegerFeature = Type.Object(
  {
    ...common,
    type: Type.Literal('integer'),
    min: Type.Optional(Type.Integer()),
    max: Type.Optional(Type.Integer()),
    default: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

export const BooleanFeature = Type.Object(
  {
    ...common,
    type: Type.Literal('boolean'),
    default: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const CategoryFeature = Type.Object(
  {
    ...common,
    type: Type.Literal('category'),
    values: Type.Array(Type.String(), { minItems: 1, uniqueItems: true }),
    /** `error` refuses a value outside `values` (400); `ignore` encodes it as all-zeros / index -1. */
    unknown: Type.Optional(Type.Union([Type.Literal('error'), Type.Literal('ignore')])),
    default: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const StringFeature = Type.Object(
  {
    ...common,
    type: Type.Literal('string'),
    minLength: Type.Optional(Type.Integer({ minimum: 0 })),
    maxLength: Type.Optional(Type.Integer({ minimum: 1 })),
    default: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

/** A raw tensor input: one row, without the batch dimension, is sent per instance. */
export const TensorFeature = Type.Object(
  {
    ...common,
    type: Type.Literal('tensor'),
    dtype: Dtype,
    /** Full model shape including the batch dimension; -1 marks a dynamic dimension. */
    shape: Type.Array(Type.Integer({ minimum: -1 }), { minItems: 0 }),
    /** Smallest element value accepted (e.g. 0 for token ids); a smaller one is a 400 naming the element. */
    min: Type.Optional(Type.Number()),
    /** Largest element value accepted (e.g. the vocabulary size - 1 for `input_ids`). */
    max: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

/** An encoded picture: base64 text in JSON (or the raw request body), decoded on the server. */
export const ImageFeature = Type.Object(
  {
    ...common,
    type: Type.Literal('image'),
    formats: Type.Optional(
      Type.Array(Type.Union(['png', 'jpeg', 'webp', 'gif', 'tiff'].map((f) => Type.Literal(f))), {
        minItems: 1,
        uniqueItems: true,
      }),
    ),
    /** Largest width × height accepted (decompression bombs are refused before decoding). */
    maxPixels: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Largest encoded size accepted, in bytes. */
    maxBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const Feature = Type.Union([
  NumberFeature,
  IntegerFeature,
  BooleanFeature,
  CategoryFeature,
  StringFeature,
  TensorFeature,
  ImageFeature,
]);

/** One step of a column's preprocessing pipeline: an op name from the step registry plus its parameters. */
export const Step = Type.Unsafe<{ op: string; [param: string]: unknown }>(
  Type.Object(
    {
      op: Type.String({ minLength: 1 }),
    },
    { additionalProperties: true },
  ),
);

export const Column = Type.Object(
  {
    feature: FeatureName,
    steps: Type.Optional(Type.Array(Step)),
  },
  { additionalProperties: false },
);

/** How one model input tensor is assembled from features: columns concatenated left to right. */
export const TensorBinding = Type.Object(
  {
    input: Type.String({ minLength: 1, description: 'ONNX input name' }),
    dtype: Type.Optional(Dtype),
    columns: Type.Array(Column, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export const Output = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'ONNX output name (or, for a pipeline, the name of its result)' }),
    /** What a pipeline output holds, e.g. `ocr-lines`. */
    kind: Type.Optional(Type.String()),
    dtype: Type.Optional(Dtype),
    shape: Type.Optional(Type.Array(Type.Integer({ minimum: -1 }))),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const ClassificationPost = Type.Object(
  {
    kind: Type.Literal('classification'),
    /** Output tensor holding one score per label (or one score for a binary model with `threshold`). */
    output: Type.String({ minLength: 1 }),
    labels: Type.Array(Type.String(), { minItems: 1, uniqueItems: true }),
    /** Applied to the output before reporting scores; `none` when the model already emits probabilities. */
    activation: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('softmax'), Type.Literal('sigmoid')])),
    /** For a single-score binary output: the probability of labels[1] at which labels[1] is chosen. */
    threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    topK: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const RegressionPost = Type.Object(
  {
    kind: Type.Literal('regression'),
    output: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

export const RawPost = Type.Object({ kind: Type.Literal('raw') }, { additionalProperties: false });

/**
 * Token classification (named entities, PII spans): one score vector per token of `output`
 * ([batch, sequence, labels]); tokens are mapped back onto the text with the tokenizer's character offsets.
 */
export const TokenClassificationPost = Type.Object(
  {
    kind: Type.Literal('token-classification'),
    output: Type.String({ minLength: 1 }),
    labels: Type.Array(Type.String(), { minItems: 1, uniqueItems: true }),
    /** Scores of the output: `softmax` (default) for logits, `none` for probabilities. */
    activation: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('softmax')])),
    /**
     * Hugging Face's strategies: `none` (one result per token), `simple` (adjacent tokens of one entity type,
     * B-/I- prefixes understood, merged), `first` / `average` / `max` (word-level: a word's label from its first
     * token, the mean of its tokens' scores, or its highest-scoring token).
     */
    aggregation: Type.Optional(Type.Union(['none', 'simple', 'first', 'average', 'max'].map((a) => Type.Literal(a)))),
    /** Labels never reported (default `O`). */
    ignoreLabels: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

/** Sentence embeddings from a [batch, sequence, hidden] output (or an already pooled [batch, hidden] one). */
export const EmbeddingPost = Type.Object(
  {
    kind: Type.Literal('embedding'),
    output: Type.String({ minLength: 1 }),
    /** `mean`: mean over real (unpadded) tokens; `cls`: the first token; `none`: the output is already pooled. */
    pooling: Type.Optional(Type.Union([Type.Literal('mean'), Type.Literal('cls'), Type.Literal('none')])),
    /** Scale each embedding to unit L2 length (cosine similarity becomes a dot product). */
    normalize: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const Postprocess = Type.Union([
  ClassificationPost,
  RegressionPost,
  RawPost,
  TokenClassificationPost,
  EmbeddingPost,
]);

/**
 * Text → token ids with a Hugging Face `tokenizer.json` beside the model (WordPiece, BPE, byte-level BPE,
 * Unigram; its normalizer, pre-tokenizer and post-processor template). Produces the model's id, mask and
 * segment inputs; the rows of one request are padded to its longest (see `batching.padding`).
 */
export const TokenizerSection = Type.Object(
  {
    /** File inside the version folder. Default `tokenizer.json`. */
    file: Type.Optional(Type.String({ minLength: 1 })),
    /** The string feature that holds the text. */
    text: FeatureName,
    /** A second string feature for text pairs (question/context, premise/hypothesis). */
    textPair: Type.Optional(FeatureName),
    /** Longest sequence in tokens, special tokens included (the model's position table). */
    maxLength: Type.Integer({ minimum: 2, maximum: 1_000_000 }),
    /**
     * What happens to a longer text: `longest_first` (default) trims the longer side of a pair token by token,
     * `only_first` / `only_second` trim one side, `none` refuses it with a 400.
     */
    truncation: Type.Optional(
      Type.Union(['longest_first', 'only_first', 'only_second', 'none'].map((t) => Type.Literal(t))),
    ),
    /** ONNX input names fed; leave one out when the model has no such input. */
    inputIds: Type.Optional(Type.String({ minLength: 1 })),
    attentionMask: Type.Optional(Type.String({ minLength: 1 })),
    tokenTypeIds: Type.Optional(Type.String({ minLength: 1 })),
    /** Fed 0, 1, … over each row's tokens (special tokens included) and the pad value after them. */
    positionIds: Type.Optional(Type.String({ minLength: 1 })),
    /** Element type of the produced tensors (int64 as exported by PyTorch, or int32). Default int64. */
    dtype: Type.Optional(Type.Union([Type.Literal('int64'), Type.Literal('int32')])),
  },
  { additionalProperties: false },
);

/**
 * Ragged batching for inputs with a dynamic sequence axis (axis 1): rows of different lengths are padded to the
 * longest row of their batch with each input's pad value, and sequence outputs are cut back to each request.
 */
export const Padding = Type.Object(
  {
    /** Pad value per ONNX input (e.g. `input_ids`: the pad token id, `attention_mask`: 0). */
    values: Type.Record(Type.String({ minLength: 1 }), Type.Number()),
    /** Most tokens (rows × padded length) in one batch; requests past it wait for the next batch. */
    maxTokensPerBatch: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Group requests of similar length into a batch (default true), so short texts do not pay for a long one. */
    lengthAware: Type.Optional(Type.Boolean()),
    /**
     * With `lengthAware`: a request joins a batch only while padded tokens ÷ real tokens stays at or under this
     * (default 1.25); the others wait for the next batch, which is cut around their own length.
     */
    maxPaddingRatio: Type.Optional(Type.Number({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const Batching = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
    maxQueueDelayUs: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
    preferredBatchSizes: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }))),
    maxQueueDepth: Type.Optional(Type.Integer({ minimum: 1 })),
    maxQueueTimeMs: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Worker threads holding a session of this model version. */
    instances: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    padding: Type.Optional(Padding),
  },
  { additionalProperties: false },
);

export const Cache = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const Fallback = Type.Object(
  {
    policy: Type.Union([
      Type.Literal('none'),
      Type.Literal('static'),
      Type.Literal('version'),
      Type.Literal('stale-cache'),
    ]),
    /** For `static`: the prediction returned. */
    value: Type.Optional(Type.Unknown()),
    /** For `version`: the version (or range, e.g. `1`) answering instead. */
    version: Type.Optional(Type.String()),
    breaker: Type.Optional(
      Type.Object(
        {
          failures: Type.Optional(Type.Integer({ minimum: 1 })),
          coolDownMs: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const Sla = Type.Object(
  {
    p50Ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    p99Ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

export const Runtime = Type.Object(
  {
    /**
     * `auto` (default): sessions live in worker threads; for a model whose inputs are fixed in shape but
     * for the rows and whose one-row run, timed at warm-up, is within the server's
     * `runtime.inlineMaxRunUs`, a copy also lives on the main thread and a batch runs there while the
     * model is idle (nothing else of it running or queued, none of its requests having waited behind
     * another batch) and its estimated run stays within that bound, so an idle model pays no thread hop
     * (docs/production.md, "Where a batch runs"). `worker`: always in the worker threads, never blocking
     * HTTP. `inline`: always on the main thread (one batch at a time).
     */
    placement: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('worker'), Type.Literal('inline')])),
    intraOpThreads: Type.Optional(Type.Integer({ minimum: 0, maximum: 256 })),
    interOpThreads: Type.Optional(Type.Integer({ minimum: 0, maximum: 256 })),
    graphOptimizationLevel: Type.Optional(
      Type.Union([Type.Literal('disabled'), Type.Literal('basic'), Type.Literal('extended'), Type.Literal('all')]),
    ),
    executionProviders: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

export const Warmup = Type.Object(
  {
    /** Instances (in the request's feature form) used to warm the model; derived from the contract when absent. */
    instances: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()), { minItems: 1 })),
    runs: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);

const PipelineModel = Type.Object(
  {
    /** ONNX file inside the version folder. */
    model: Type.String({ minLength: 1 }),
    input: Type.String({ minLength: 1 }),
    output: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

/** A multi-model pipeline run by a built-in handler instead of a single model and preprocess section. */
export const Pipeline = Type.Object(
  {
    kind: Type.Literal('ocr'),
    detector: PipelineModel,
    recognizer: PipelineModel,
    charset: Type.Object(
      {
        file: Type.String({ minLength: 1 }),
        /** `paddleocr`: blank first, then one symbol a line, then a space when `spaceChar`. */
        format: Type.Literal('paddleocr'),
        blankIndex: Type.Optional(Type.Integer({ minimum: 0 })),
        spaceChar: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    /** Parameters of the handler (for OCR: @ferry/core's OcrParams). */
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

/**
 * A generative (decoder-only) model served token by token at /openai/v1 instead of /predict: the ONNX
 * file follows the Hugging Face decoder export layout and the folder holds its tokenizer and chat template.
 */
export const Generation = Type.Object(
  {
    /** Hugging Face `tokenizer.json` inside the version folder. Default `tokenizer.json`. */
    tokenizer: Type.Optional(Type.String({ minLength: 1 })),
    /** Hugging Face `tokenizer_config.json` (eos token, chat template); read when present. Default
     * `tokenizer_config.json`.
     */
    tokenizerConfig: Type.Optional(Type.String({ minLength: 1 })),
    /** Jinja chat template file; overrides `chat_template` of the tokenizer config. Default `chat_template.jinja` when
     * present.
     */
    chatTemplate: Type.Optional(Type.String({ minLength: 1 })),
    /** Largest prompt + completion, in tokens (the model's position table). */
    contextLength: Type.Integer({ minimum: 2 }),
    /** Tokens that end a generation; default the tokenizer config's `eos_token`. */
    eosTokens: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** Request defaults when the client leaves them out. */
    defaults: Type.Optional(
      Type.Object(
        {
          maxTokens: Type.Optional(Type.Integer({ minimum: 1 })),
          temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
          topP: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Monitoring of this version: drift test overrides per column (Evidently's names) and the dataset share. */
export const MonitoringSection = Type.Object(
  {
    drift: Type.Optional(
      Type.Object(
        {
          columns: Type.Optional(
            Type.Record(
              Type.String(),
              Type.Object(
                {
                  test: Type.Optional(
                    Type.Union(
                      ['ks', 'chisquare', 'z', 'wasserstein', 'jensenshannon', 'psi', 'kl_div'].map((t) =>
                        Type.Literal(t),
                      ),
                    ),
                  ),
                  threshold: Type.Optional(Type.Number({ minimum: 0 })),
                },
                { additionalProperties: false },
              ),
            ),
          ),
          datasetDriftShare: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/**
 * A streaming mode (GET /v1/models/{model}/stream): the server frames a client's stream, feeds the
 * model one frame per call per session, and carries the recurrent state from call to call itself.
 */
export const StateBinding = Type.Object(
  {
    /** Model input that takes the state (zeros for a session's first frame). */
    input: FeatureName,
    /** Model output whose value is fed back as `input` with the session's next frame. */
    output: FeatureName,
    /** Axis of the state tensor that indexes sessions (Silero VAD: [layers, streams, units] → 1). */
    batchAxis: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 })),
  },
  { additionalProperties: false },
);

export const VadSettings = Type.Object(
  {
    /** Probability at which speech starts. */
    startThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Probability below which speech may end (hysteresis: at most startThreshold). */
    endThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Speech shorter than this is dropped (no events). */
    minSpeechMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
    /** Silence must last this long before speech ends. */
    minSilenceMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
    /** Reported segments are widened by this much on each side (within the audio). */
    speechPadMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 5_000 })),
  },
  { additionalProperties: false },
);

export const Streaming = Type.Object(
  {
    /** `audio`: mono PCM in, one score per frame out, voice-activity events (speech_start, speech_end). */
    kind: Type.Literal('audio'),
    sampleRate: Type.Integer({ minimum: 1000, maximum: 192_000 }),
    /** Samples per model call (Silero VAD at 16 kHz: 512). */
    frameSamples: Type.Integer({ minimum: 1, maximum: 65_536 }),
    /** Model input that takes the frames, [sessions, frameSamples]. */
    input: FeatureName,
    /** Model output holding one score per session, [sessions, 1] or [sessions]. */
    output: FeatureName,
    state: Type.Optional(Type.Array(StateBinding)),
    /** Inputs fed the same value on every call (e.g. Silero's `sr`), shaped as the contract declares them. */
    constants: Type.Optional(Type.Record(FeatureName, Type.Unknown())),
    /**
     * Frames of concurrent sessions run as one call, stacked on axis 0 of `input` and on each state's
     * `batchAxis` (stateful sequence batching). 1 = every frame alone.
     */
    maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    /** How long a frame waits for others to join its batch. */
    maxQueueDelayUs: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    vad: Type.Optional(VadSettings),
  },
  { additionalProperties: false },
);

export const Manifest = Type.Object(
  {
    name: Type.Optional(Name),
    version: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    model: Type.Optional(
      Type.String({ description: 'ONNX file name inside the version folder', default: 'model.onnx' }),
    ),
    inputs: Type.Array(Feature, { minItems: 1 }),
    /** Feature → tensor bindings. When absent, every `tensor` feature feeds the ONNX input of the same name. */
    preprocess: Type.Optional(Type.Array(TensorBinding, { minItems: 1 })),
    outputs: Type.Array(Output, { minItems: 1 }),
    postprocess: Type.Optional(Postprocess),
    tokenizer: Type.Optional(TokenizerSection),
    pipeline: Type.Optional(Pipeline),
    generation: Type.Optional(Generation),
    batching: Type.Optional(Batching),
    cache: Type.Optional(Cache),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
    fallback: Type.Optional(Fallback),
    sla: Type.Optional(Sla),
    runtime: Type.Optional(Runtime),
    warmup: Type.Optional(Warmup),
    /** Reference data file for drift, relative to the version folder (JSON Lines or Parquet). */
    reference: Type.Optional(Type.String()),
    monitoring: Type.Optional(MonitoringSection),
    /** A streaming mode: the model is also served at GET /v1/models/{model}/stream (WebSocket). */
    streaming: Type.Optional(Streaming),
    tags: Type.Optional(Type.Record(Type.String(), Type.String())),
    /**
     * A TypeScript (`.ts`, `.mts`) or JavaScript (`.js`, `.mjs`) module in the version folder exporting a
     * `ModelHandler` (default export): preprocess / postprocess / predict in code, run in the worker threads.
     */
    handler: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*\\.(ts|mts|js|mjs)$' })),
  },
  { additionalProperties: false, $id: 'https://ferry.dev/schemas/ferry.yaml.json' },
);

export type Manifest = Static<typeof Manifest>;
export type Feature = Static<typeof Feature>;
export type NumberFeature = Static<typeof NumberFeature>;
export type IntegerFeature = Static<typeof IntegerFeature>;
export type CategoryFeature = Static<typeof CategoryFeature>;
export type StringFeature = Static<typeof StringFeature>;
export type BooleanFeature = Static<typeof BooleanFeature>;
export type TensorFeature = Static<typeof TensorFeature>;
export type ImageFeature = Static<typeof ImageFeature>;
export type Pipeline = Static<typeof Pipeline>;
export type Streaming = Static<typeof Streaming>;
export type StateBinding = Static<typeof StateBinding>;
export type VadSettings = Static<typeof VadSettings>;
export type Generation = Static<typeof Generation>;
/** A step: its `op` and any parameters (validated by the step itself at compile time). */
export type Step = { op: string; [param: string]: unknown };
export type Column = Static<typeof Column>;
export type TensorBinding = Static<typeof TensorBinding>;
export type Output = Static<typeof Output>;
export type Postprocess = Static<typeof Postprocess>;
export type ClassificationPost = Static<typeof ClassificationPost>;
export type TokenClassificationPost = Static<typeof TokenClassificationPost>;
export type EmbeddingPost = Static<typeof EmbeddingPost>;
export type TokenizerSection = Static<typeof TokenizerSection>;
export type Padding = Static<typeof Padding>;
export type Batching = Static<typeof Batching>;
export type Fallback = Static<typeof Fallback>;

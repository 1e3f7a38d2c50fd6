// Flag parsing shared by the baseline servers: `--port N --host H` and repeatable `--model name=dir`.
export interface BaselineArgs {
  port: number;
  host: string;
  /** model name → version folder */
  models: Map<string, string>;
  /** ONNX Runtime session options per model name (the ones Ferry uses, resolved by the bench). */
  sessionOptions: Record<string, Record<string, unknown>>;
}

export function parseBaselineArgs(argv: readonly string[]): BaselineArgs {
  const out: BaselineArgs = { port: 0, host: '127.0.0.1', models: new Map(), sessionOptions: {} };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    i++;
    switch (flag) {
      case '--port':
        out.port = Number(value);
        break;
      case '--host':
        out.host = value;
        break;
      case '--model': {
        const eq = value.indexOf('=');
        if (eq < 1) throw new Error(`--model expects name=versionDir, got ${value}`);
        out.models.set(value.slice(0, eq), value.slice(eq + 1));
        break;
      }
      case '--session-options':
        out.sessionOptions = JSON.parse(value) as BaselineArgs['sessionOptions'];
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  // Options keyed by anything but a served model would be dropped in silence, and the model would run on
  // ONNX Runtime's defaults: an intra-op thread per core, pinned by ONNX Runtime itself past any taskset.
  for (const [name, options] of Object.entries(out.sessionOptions)) {
    if (!out.models.has(name))
      throw new Error(
        `--session-options: "${name}" is not a --model; the options are keyed by model name ({"<model>": {...}})`,
      );
    if (options === null || typeof options !== 'object' || Array.isArray(options))
      throw new Error(`--session-options: "${name}" must map to an object of session options`);
  }
  return out;
}

// `ferry init model.onnx`: adds an ONNX file to the repository with a ferry.yaml written from the
// model's own inputs and outputs (or another version's contract).
import type { Command } from 'commander';
import { initModel } from '../../serving/repository/init-model.js';
import type { CliContext } from '../shared.js';

interface InitOpts {
  name?: string;
  modelVersion?: string;
  repo: string;
  force?: boolean;
  contractFrom?: string;
  measureBatching: boolean;
}

export function registerInitCommand(program: Command, ctx: CliContext): void {
  program
    .command('init <onnx>')
    .description('add an ONNX file to the repository with a ferry.yaml written from its own inputs and outputs')
    .option('-n, --name <name>', 'model name (default: the file name)')
    .option('-V, --model-version <version>', 'semantic version (default 1.0.0)')
    .option('-r, --repo <dir>', 'model repository folder', 'models')
    .option('-f, --force', 'overwrite an existing ferry.yaml')
    .option(
      '--contract-from <name@version>',
      'reuse the contract of an existing version (e.g. for its quantised build)',
    )
    .option('--no-measure-batching', 'do not time the model to choose batching (ferry serve then measures at warm-up)')
    .action(async (onnx: string, o: InitOpts) => {
      const { dir } = await initModel({
        onnxPath: onnx,
        repo: o.repo,
        ...(o.name && { name: o.name }),
        ...(o.modelVersion && { version: o.modelVersion }),
        ...(o.force && { force: true }),
        ...(o.contractFrom && { contractFrom: o.contractFrom }),
        measureBatching: o.measureBatching,
      });
      ctx.io.stdout(`wrote ${dir}/model.onnx and ${dir}/ferry.yaml\n`);
    });
}

/** `ferry init model.onnx --version 1.2.0` reads naturally; commander reserves --version for the program. */
export function initVersionFlag(args: readonly string[]): string[] {
  return args.map((a, i) => (a === '--version' && args[0] === 'init' && i > 0 ? '--model-version' : a));
}

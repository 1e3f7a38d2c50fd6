// `ferry quantize IN.onnx OUT.onnx [--validate DATA] [--max-delta 0.01] ...`: INT8-quantise a model, measure
// what it cost on validation data and refuse to write it when the cost is too high. The work is done by
// @ferry/tools, loaded only when the command runs.
import { Option, type Command } from 'commander';
import { argumentErrorsExitWith, type CliContext } from '../shared.js';
import { QUANT_FORMATS, QUANTIZE_EXIT, QUANTIZE_MIN_ELEMENTS_DEFAULT, type QuantizeFlags } from '../tool-commands.js';

export function registerQuantizeCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('quantize')
    .summary(
      'INT8-quantise a model: ferry quantize IN.onnx OUT.onnx [--validate DATA] [--max-delta 0.01] (see ferry quantize --help)',
    )
    .description(
      "Quantise a model's MatMul/Gemm weights (dynamic quantisation) and embedding tables to INT8, and measure what it costs.",
    )
    .argument('<in>', 'float32 ONNX model to read')
    .argument('<out>', 'quantised ONNX model to write')
    .option(
      '--validate <data>',
      'validation data: JSON Lines of instances (with an optional "label"), or JSON raw tensors',
    )
    .option(
      '--max-delta <x>',
      'fail (exit 1, OUT not written) when the accuracy delta, or without labels the top-1 disagreement rate, exceeds x',
    )
    .option('--per-channel', 'one weight scale per output channel (the default)')
    .option('--per-tensor', 'one weight scale per weight matrix')
    .addOption(
      new Option(
        '--format <form>',
        'graph form of the quantised MatMul (default integer-ops; contrib below opset 11)',
      ).choices([...QUANT_FORMATS]),
    )
    .option(
      '--min-elements <n>',
      `leave weights and embedding tables with fewer elements in float (default ${QUANTIZE_MIN_ELEMENTS_DEFAULT})`,
    )
    .option('--asymmetric', 'uint8 weights with a zero point instead of symmetric int8')
    .option('--reduce-range', '7-bit weights, for CPUs without VNNI')
    .option('--exclude <nodes>', 'comma-separated node names to leave in float')
    .option(
      '--manifest <ferry.yaml>',
      'contract to encode feature instances and name classes (default: ferry.yaml beside IN)',
    )
    .option('--label-key <key>', 'key of the label in each instance (default "label")')
    .option('--classifier-output <name>', 'output holding class scores (default: from ferry.yaml, else detected)')
    .option('--batch-size <n>', 'rows per run when validating (default: ferry.yaml batching.maxBatchSize, else 32)')
    .option('--limit <n>', 'validate on at most n rows')
    .option('--json', 'print the reports as JSON')
    .action(async (inPath: string, outPath: string, flags: QuantizeFlags) => {
      const tools = await ctx.tools('quantize');
      ctx.setExitCode(await tools.quantize(inPath, outPath, flags, ctx.io));
    });
  argumentErrorsExitWith(cmd, QUANTIZE_EXIT.error);
}

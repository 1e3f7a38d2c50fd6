// Classical (scikit-learn) ONNX-ML exports for tests, committed with the script that built them
// (fixtures/onnx-ml/build.py, card.md): real trained models in the shapes skl2onnx writes, ending in a
// ZipMap, plus models that must fail alone. Tests read them from here; nothing needs Python.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DIR = new URL('../fixtures/onnx-ml/', import.meta.url);

export type OnnxMlFixture = 'iris-forest' | 'wine-logistic' | 'diabetes-boosting' | 'unsupported-op' | 'gather-index';

/** Absolute path of a fixture's .onnx file. */
export function onnxMlFixture(name: OnnxMlFixture): string {
  return fileURLToPath(new URL(`${name}.onnx`, DIR));
}

/** scikit-learn's own answers on held-out rows (fixtures/onnx-ml/expected.json). */
export interface OnnxMlExpected {
  'iris-forest': {
    accuracy: number;
    rows: Array<{ instance: Record<string, number>; label: string; probabilities: Record<string, number> }>;
  };
  'wine-logistic': {
    accuracy: number;
    rows: Array<{ features: number[]; label: number; probabilities: Record<string, number> }>;
  };
  'diabetes-boosting': {
    r2: number;
    rows: Array<{ instance: { sex: string; age: number; bmi: number; bp: number }; value: number }>;
  };
}

export function onnxMlExpected(): OnnxMlExpected {
  return JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8')) as OnnxMlExpected;
}

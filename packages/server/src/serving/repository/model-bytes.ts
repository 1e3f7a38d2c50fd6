// How many bytes a model's weights take on disk: the ONNX file and the external data files it names.
// A model exported with external data (`save_as_external_data`, the usual form past 2 GB) keeps its
// weights beside a small graph file, so the graph file's size alone says nothing of its memory.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

/** The `location`s of every tensor stored outside the graph file, in the graph and its subgraphs. */
function externalLocations(model: OnnxTypes.IModelProto): Set<string> {
  const found = new Set<string>();
  const tensor = (t: OnnxTypes.ITensorProto | null | undefined) => {
    for (const e of t?.externalData ?? []) if (e.key === 'location' && e.value) found.add(e.value);
  };
  const graph = (g: OnnxTypes.IGraphProto | null | undefined) => {
    if (!g) return;
    for (const t of g.initializer ?? []) tensor(t);
    for (const s of g.sparseInitializer ?? []) {
      tensor(s.values);
      tensor(s.indices);
    }
    for (const n of g.node ?? [])
      for (const a of n.attribute ?? []) {
        tensor(a.t);
        for (const t of a.tensors ?? []) tensor(t);
        graph(a.g);
        for (const sg of a.graphs ?? []) graph(sg);
      }
  };
  graph(model.graph);
  return found;
}

/**
 * The model file's size plus that of each external data file it names (each counted once, however
 * many tensors it holds). A named file that does not exist counts nothing: ONNX Runtime refuses such
 * a model at load, with its own message. A graph file already over `enough` bytes is neither read nor
 * decoded: its own size is the answer.
 */
export function modelBytes(modelPath: string, enough = Number.POSITIVE_INFINITY): number {
  const fileBytes = statSync(modelPath).size;
  if (fileBytes > enough) return fileBytes;
  const bytes = readFileSync(modelPath);
  let total = bytes.byteLength;
  const dir = dirname(modelPath);
  for (const location of externalLocations(onnx.ModelProto.decode(bytes))) {
    const path = resolve(dir, location);
    if (existsSync(path)) total += statSync(path).size;
  }
  return total;
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Repository, RepositoryError, ManifestError, readManifest } from './index.js';
import { FerryError } from '../../errors.js';
import { tempModelRepository, tinyClassifier, tinyLinearModel, writeModelVersion } from '@ferry/test-kit';

const linear = tinyLinearModel();
const cls = tinyClassifier();

async function repoWith(versions: Array<[string, string, object?]>, aliases?: Record<string, Record<string, string>>) {
  const repo = await tempModelRepository();
  for (const [name, version, manifest] of versions) {
    await writeModelVersion(repo.dir, name, version, { onnx: linear.onnx, manifest: manifest ?? linear.manifest });
  }
  for (const [name, a] of Object.entries(aliases ?? {}))
    writeFileSync(join(repo.dir, name, 'aliases.yaml'), stringify(a));
  return repo;
}

test('resolves names, majors, minors, exact versions, latest and aliases', async () => {
  const repo = await repoWith(
    [
      ['m', '1.0.0'],
      ['m', '1.2.0'],
      ['m', '1.10.1'],
      ['m', '2.0.0'],
      ['m', '2.1.0-rc.1'],
    ],
    { m: { stable: '1.2.0', canary: '2.0.0' } },
  );
  try {
    const r = Repository.load(repo.dir);
    assert.equal(r.resolve('m').version, '1.2.0', 'unpinned follows the stable alias');
    assert.equal(r.resolve('m@1').version, '1.10.1', 'newest 1.x.y by semver, not by string order');
    assert.equal(r.resolve('m@1.2').version, '1.2.0');
    assert.equal(r.resolve('m@2').version, '2.0.0', 'a pre-release is not picked by a major range');
    assert.equal(r.resolve('m@2.1.0-rc.1').version, '2.1.0-rc.1', 'but can be pinned exactly');
    assert.equal(r.resolve('m@latest').version, '2.1.0-rc.1');
    assert.equal(r.resolve('m@canary').version, '2.0.0');
    assert.equal(r.resolve('m', '1.0.0').version, '1.0.0');
    assert.equal(r.resolve('m', 'stable').version, '1.2.0');
    assert.throws(
      () => r.resolve('m@3'),
      (e: unknown) => e instanceof FerryError && e.code === 'version-not-found' && /1\.10\.1/.test(e.detail),
    );
    assert.throws(
      () => r.resolve('m@nope'),
      (e: unknown) => e instanceof FerryError && e.status === 404,
    );
    assert.throws(
      () => r.resolve('x'),
      (e: unknown) => e instanceof FerryError && e.code === 'model-not-found' && /available: m/.test(e.detail),
    );
    assert.throws(
      () => r.resolve('../etc/passwd'),
      (e: unknown) => e instanceof FerryError && e.code === 'model-not-found',
    );
    assert.throws(
      () => r.resolve('m@1', '1.0.0'),
      (e: unknown) => e instanceof FerryError && e.status === 400,
    );
  } finally {
    await repo.remove();
  }
});

test('without a stable alias the newest version answers', async () => {
  const repo = await repoWith([
    ['m', '1.0.0'],
    ['m', '1.1.0'],
  ]);
  try {
    assert.equal(Repository.load(repo.dir).resolve('m').version, '1.1.0');
  } finally {
    await repo.remove();
  }
});

test('refuses versions of one major whose contracts differ, naming both and the difference', async () => {
  const changed = { ...linear.manifest, inputs: [{ name: 'x', type: 'tensor', dtype: 'float32', shape: [-1, 9] }] };
  const repo = await repoWith([
    ['m', '1.0.0'],
    ['m', '1.1.0', changed],
  ]);
  try {
    assert.throws(
      () => Repository.load(repo.dir),
      (e: unknown) =>
        e instanceof RepositoryError && /1\.0\.0 and 1\.1\.0/.test(e.message) && /input "x" changed/.test(e.message),
    );
  } finally {
    await repo.remove();
  }
});

test('a new major may change the contract; label changes inside a major are refused', async () => {
  const repo = await tempModelRepository();
  try {
    await writeModelVersion(repo.dir, 'c', '1.0.0', cls);
    await writeModelVersion(repo.dir, 'c', '2.0.0', {
      ...cls,
      manifest: {
        ...cls.manifest,
        postprocess: { kind: 'classification', output: 'probabilities', labels: ['neg', 'pos'] },
      },
    });
    assert.equal(Repository.load(repo.dir).resolve('c@2').version, '2.0.0');
    await writeModelVersion(repo.dir, 'c', '2.0.1', {
      ...cls,
      manifest: {
        ...cls.manifest,
        postprocess: { kind: 'classification', output: 'probabilities', labels: ['a', 'b'] },
      },
    });
    assert.throws(() => Repository.load(repo.dir), /labels changed/);
  } finally {
    await repo.remove();
  }
});

test('bad aliases, folders and names are refused with the file', async () => {
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    [
      'alias to a missing version',
      (d) => writeFileSync(join(d, 'm', 'aliases.yaml'), 'stable: 9.9.9\n'),
      /aliases\.yaml: \/stable: version "9\.9\.9" does not exist/,
    ],
    ['alias named latest', (d) => writeFileSync(join(d, 'm', 'aliases.yaml'), 'latest: 1.0.0\n'), /invalid alias name/],
    ['non-semver folder', (d) => mkdirSync(join(d, 'm', 'v1')), /semantic versions/],
    ['folder without ferry.yaml', (d) => mkdirSync(join(d, 'm', '3.0.0')), /missing ferry\.yaml/],
    ['upper-case model name', (d) => mkdirSync(join(d, 'Bad')), /invalid model name/],
  ];
  for (const [what, mutate, expected] of cases) {
    const repo = await repoWith([['m', '1.0.0']]);
    try {
      mutate(repo.dir);
      assert.throws(() => Repository.load(repo.dir), expected, what);
    } finally {
      await repo.remove();
    }
  }
});

test('manifest errors name the file and the JSON path of the bad key', async () => {
  const repo = await tempModelRepository();
  const file = join(repo.dir, 'ferry.yaml');
  const cases: Array<[unknown, string, RegExp]> = [
    [{ ...linear.manifest, inptus: [] }, '/inptus', /unknown key "inptus"/],
    [
      { ...linear.manifest, inputs: [{ name: 'x', type: 'tensor', dtype: 'float33', shape: [-1, 8] }] },
      '/inputs/0/dtype',
      /must be one of "float32"/,
    ],
    [{ ...linear.manifest, inputs: [{ name: 'x', type: 'vector' }] }, '/inputs/0/type', /unsupported type "vector"/],
    [{ ...cls.manifest, inputs: [{ name: 'color', type: 'category' }] }, '/inputs/0', /required property .values./],
    [
      { ...cls.manifest, inputs: [{ name: 'amount', type: 'number', min: 'low' }, ...cls.manifest.inputs.slice(1)] },
      '/inputs/0/min',
      /number/,
    ],
    [
      {
        ...cls.manifest,
        preprocess: [{ input: 'features', columns: [{ feature: 'amount', steps: [{ op: 'standardise' }] }] }],
      },
      '/preprocess/0/columns/0/steps/0/op',
      /unknown preprocessing step "standardise"/,
    ],
    [
      {
        ...cls.manifest,
        preprocess: [{ input: 'features', columns: [{ feature: 'amount', steps: [{ op: 'standardize', mean: 1 }] }] }],
      },
      '/preprocess/0/columns/0/steps/0/std',
      /bad parameters/,
    ],
    [
      { ...cls.manifest, preprocess: [{ input: 'features', columns: [{ feature: 'nope' }] }] },
      '/preprocess/0/columns/0/feature',
      /unknown feature "nope"/,
    ],
    [
      { ...cls.manifest, postprocess: { kind: 'classification', output: 'logits', labels: ['a', 'b'] } },
      '/postprocess/output',
      /not one of the declared outputs/,
    ],
    [{ ...linear.manifest, outputs: [] }, '/outputs', /fewer than 1/],
    [{ ...linear.manifest, batching: { maxBatchSize: 0 } }, '/batching/maxBatchSize', />= 1/],
  ];
  try {
    for (const [manifest, path, message] of cases) {
      writeFileSync(file, stringify(manifest));
      assert.throws(
        () => readManifest(file),
        (e: unknown) => {
          assert.ok(e instanceof ManifestError, `expected ManifestError for ${path}, got ${String(e)}`);
          assert.equal(e.path, path, `path for ${e.message}`);
          assert.ok(e.message.startsWith(file), e.message);
          assert.match(e.message, message);
          return true;
        },
      );
    }
    writeFileSync(file, 'inputs: [oops');
    assert.throws(() => readManifest(file), /invalid YAML/);
  } finally {
    await repo.remove();
  }
});

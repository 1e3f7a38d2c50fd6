// ESLint for the whole monorepo (flat config, ESLint 9). `npm run lint` runs it with `prettier --check`;
// `npm run format` runs `prettier --write` then `eslint --fix`. Prettier owns layout (120 columns,
// .prettierrc.json); this file owns correctness, import cycles and the server's layer rules.
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig, globalIgnores } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import stylistic from '@stylistic/eslint-plugin';
import reactHooks from 'eslint-plugin-react-hooks';
import eslintConfigPrettier from 'eslint-config-prettier/flat';
import globals from 'globals';

// ---------------------------------------------------------------------------------------------------
// Layers of packages/server/src (docs/architecture.md draws them). A folder's layer decides which other
// folders and packages it may not import; the rules below are generated from these two tables, so
// placing a new folder is one line in SERVER_FOLDERS. Files at src/ root: index.ts is the package's
// public face (it may re-export any layer); errors.ts and version.ts are foundations.
// Test files (*.test.ts) are exempt: nothing imports a test, so it cannot add a layer edge or a cycle,
// and tests beside a domain module may boot the app and drive it through Fastify's inject().
// ---------------------------------------------------------------------------------------------------

const FASTIFY = ['fastify', '@fastify/*'];
const COMMANDER = ['commander'];
const GRPC = ['@grpc/*', 'grpc-health-check'];

/** What each layer may not import: other layers' folders (by layer name) and npm packages. */
const LAYERS = {
  // Composition root: builds the server from every other layer (createServer); may import anything.
  app: { forbidLayers: [], forbidPackages: [] },
  // HTTP transport: Fastify routes, plugins and the error handler only. Knows nothing of the CLI or of
  // how the app is assembled (it is handed its dependencies).
  http: { forbidLayers: ['cli', 'app', 'grpc'], forbidPackages: COMMANDER },
  // gRPC transport (the Open Inference Protocol's gRPC service): @grpc/grpc-js only, beside http/ and
  // calling the same transport-free serving core. Neither transport imports the other.
  grpc: { forbidLayers: ['http', 'cli', 'app'], forbidPackages: [...FASTIFY, ...COMMANDER] },
  // Command line: commander only. Starts the server through app (createServer), never through http
  // internals.
  cli: { forbidLayers: ['http', 'grpc'], forbidPackages: FASTIFY },
  // Domain modules: transport-free. Their routes live in http/ and their commands in cli/.
  domain: { forbidLayers: ['http', 'grpc', 'cli', 'app'], forbidPackages: [...FASTIFY, ...COMMANDER, ...GRPC] },
  // The data plane (repository, runtime, batching, cache, predict): decode -> infer -> encode, with no
  // knowledge of transports or of the domain modules built on it.
  serving: {
    forbidLayers: ['http', 'grpc', 'cli', 'app', 'domain'],
    forbidPackages: [...FASTIFY, ...COMMANDER, ...GRPC],
  },
  // Foundations everything else stands on: the store, the config schema (every module's settings are
  // in config/schemas/, so config needs no module), lifecycle, metrics.
  foundation: {
    forbidLayers: ['http', 'grpc', 'cli', 'app', 'serving', 'domain'],
    forbidPackages: [...FASTIFY, ...COMMANDER, ...GRPC],
  },
};

/** Folder of packages/server/src -> its layer. Adding a folder is one line here. */
const SERVER_FOLDERS = {
  app: 'app',
  http: 'http',
  grpc: 'grpc',
  cli: 'cli',
  auth: 'domain',
  generation: 'domain',
  llm: 'domain',
  jobs: 'domain',
  monitoring: 'domain',
  pipelines: 'domain',
  rollout: 'domain',
  streaming: 'domain',
  serving: 'serving',
  config: 'foundation',
  lifecycle: 'foundation',
  metrics: 'foundation',
  store: 'foundation',
  webhooks: 'foundation',
  telemetry: 'foundation',
};

// ---------------------------------------------------------------------------------------------------

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `fastify` also covers `fastify/...`; `@fastify/*` covers the whole scope. */
const packagePattern = (name) =>
  name.endsWith('/*') ? `^${escapeRe(name.slice(0, -1))}` : `^${escapeRe(name)}(?:/|$)`;
/** A relative import that climbs out of the folder (one or more `../`) into one of `folders`. */
const folderPattern = (folders) => `^(?:\\.\\./)+(?:${folders.join('|')})(?:/|$)`;

/** no-restricted-imports patterns for one folder of packages/server/src. */
function serverLayerPatterns(folder) {
  const layerName = SERVER_FOLDERS[folder];
  const layer = LAYERS[layerName];
  const forbidden = Object.keys(SERVER_FOLDERS).filter(
    (f) => f !== folder && layer.forbidLayers.includes(SERVER_FOLDERS[f]),
  );
  const message =
    `${folder}/ is in the ${layerName} layer, which may not import ${layer.forbidLayers.join(', ')}. ` +
    'See the layer table in eslint.config.js.';
  const patterns = [];
  if (forbidden.length > 0) patterns.push({ regex: folderPattern(forbidden), message });
  // The server never imports the tools (the CLI loads them lazily, cli/tool-commands.ts) or the test kit
  // (which depends on the server): either would be a package cycle.
  patterns.push({
    regex: ['@ferry/tools', '@ferry/test-kit'].map(packagePattern).join('|'),
    message: '@ferry/server may not import @ferry/tools or @ferry/test-kit statically (package cycle).',
  });
  if (layer.forbidPackages.length > 0) {
    patterns.push({
      regex: layer.forbidPackages.map(packagePattern).join('|'),
      message: `${folder}/ is in the ${layerName} layer, which may not use ${layer.forbidPackages.join(', ')}.`,
    });
  }
  return patterns;
}

const serverLayerConfigs = Object.keys(SERVER_FOLDERS)
  .map((folder) => ({ folder, patterns: serverLayerPatterns(folder) }))
  .filter(({ patterns }) => patterns.length > 0)
  .map(({ folder, patterns }) => ({
    name: `ferry/layers/server/${folder}`,
    files: [`packages/server/src/${folder}/**/*.ts`],
    ignores: ['**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  }));

// packages/core runs in Node and in browsers: no server, client, Fastify or commander, and Node
// built-ins only in its tests (where they are today; src/ itself imports none).
const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));
const crossPackage = (names, why) => names.map((name) => ({ regex: packagePattern(name), message: why }));
const coreBans = [
  ...crossPackage(
    ['@ferry/server', '@ferry/client'],
    '@ferry/core is below server and client: it may not import them.',
  ),
  ...crossPackage([...FASTIFY, ...COMMANDER], '@ferry/core is transport-free: no Fastify or commander.'),
];
const coreNodeBan = {
  regex: `^(?:node:|(?:${nodeBuiltins.map(escapeRe).join('|')})(?:/|$))`,
  message: '@ferry/core also runs in browsers: Node built-ins are for its tests only.',
};

// Workspace packages export only their build output (`./dist/x.js`). Each export is aliased to its
// source (`./src/x.ts`) so that import-x follows @ferry/* imports whether or not `npm run build` has
// run; without it an unbuilt package does not resolve and the cycle rule stops at its edge.
function workspaceSourceAliases(dirs) {
  const aliases = {};
  for (const dir of dirs) {
    const pkg = JSON.parse(readFileSync(new URL(`./${dir}/package.json`, import.meta.url), 'utf8'));
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      const built = typeof target === 'string' ? target : target.default;
      const source = built.replace(/^\.\/dist\//, './src/').replace(/\.js$/, '.ts');
      // `$`: exact match, so `@ferry/server` does not also capture `@ferry/server/testing`.
      aliases[`${pkg.name}${subpath.slice(1)}$`] = [fileURLToPath(new URL(`./${dir}/${source}`, import.meta.url))];
    }
  }
  return aliases;
}

// ---------------------------------------------------------------------------------------------------

const TS_FILES = ['**/*.{ts,tsx,mts,cts}'];
const JS_FILES = ['**/*.{js,mjs,cjs}'];

export default defineConfig([
  globalIgnores([
    '**/node_modules/',
    '**/dist/', // tsc output of every package, Vite output of dashboard and web-app
    'models/',
    '**/coverage/',
    '**/test-output/',
    'bench/results/',
    'examples/data/',
    '**/*.tsbuildinfo',
    '**/*.d.ts', // only build output carries .d.ts here; sources are .ts
    '.ferry/',
    '.cache/', // the deployment tests' base image root and the Node 22 binary (scripts/node22.mjs)
    'packages/server/dashboard/', // the dashboard copied in by `npm pack`, removed after it
  ]),

  // typescript-eslint's recommended set without type information: the type-checked set needs a
  // TypeScript program per tsconfig and took 2 min 46 s of wall time (88 s CPU) for the repo on this
  // 2-core machine, against about 30 s CPU for this set; budget for the whole lint is about 60 s.
  {
    name: 'ferry/base',
    files: [...TS_FILES, ...JS_FILES],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
    rules: {
      // Unused code is an error; `_name` marks an argument or binding kept on purpose (a callback's
      // position, a destructured rest sibling).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'all',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Warn, not error: `any` shows up at untyped edges (ONNX Runtime tensors, parsed YAML, test
      // doubles); a warning keeps it visible without blocking.
      '@typescript-eslint/no-explicit-any': 'warn',
      // Off: `x!` after a check TypeScript cannot follow (Map.get after has, array index in range) is a
      // deliberate, local assertion; about 1,600 of them, with noUncheckedIndexedAccess off.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Kept from the recommended sets as errors and not listed here: prefer-const, no-useless-escape,
      // no-unused-expressions, no-empty-object-type and the rest; each has a handful of hits, fixed by
      // hand or by `eslint --fix`.
      // Functions over 100 lines (blank lines and comments not counted) are a warning for the code as
      // it is. New code over the limit needs a reason: an
      // `// eslint-disable-next-line max-lines-per-function -- <why>` on the function.
      'max-lines-per-function': ['warn', { max: 100, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },

  // Tests: a test case reads as one script from setup to assertions, so its length follows the scenario;
  // splitting it into helpers would hide the order of events the test checks.
  {
    name: 'ferry/tests',
    files: ['**/*.test.{ts,tsx}', '**/test/**/*.{ts,tsx}', '**/integration/**/*.ts'],
    rules: { 'max-lines-per-function': 'off' },
  },

  // Cycles, resolved the way TypeScript resolves (`./x.js` finds `./x.ts`, each folder's tsconfig), with
  // @ferry/* imports taken to the workspace package's source (workspaceSourceAliases above).
  {
    name: 'ferry/import-cycles',
    files: TS_FILES,
    plugins: { 'import-x': importX },
    settings: {
      // Without these, import-x skips .ts files when it follows imports (its defaults are JS only).
      'import-x/extensions': ['.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.cjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx', '.mts', '.cts'] },
      'import-x/external-module-folders': ['node_modules', 'node_modules/@types'],
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          alwaysTryTypes: true,
          alias: workspaceSourceAliases([
            'packages/core',
            'packages/client',
            'packages/server',
            'packages/tools',
            'packages/test-kit',
          ]),
          noWarnOnMultipleProjects: true,
          project: [
            'packages/*/tsconfig.json',
            'packages/client/test/tsconfig.json',
            'packages/server/tsconfig.test.json',
            'packages/server/test/tsconfig.json',
            'packages/tools/src/onnx/tsconfig.json',
            'examples/tsconfig.json',
            'examples/web-app/tsconfig.json',
            'bench/tsconfig.json',
          ],
        }),
      ],
    },
    rules: {
      // `import type` and imports whose every specifier is `type` are skipped by the rule: they vanish
      // at run time (verbatimModuleSyntax), so they cannot make a load-order cycle. npm packages are
      // not followed (ignoreExternal).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },

  // Layer rules. Each file is in at most one of these, so no-restricted-imports options never need to
  // merge (flat config replaces a rule's options, it does not concatenate them).
  ...serverLayerConfigs,
  {
    name: 'ferry/layers/core',
    files: ['packages/core/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [...coreBans, coreNodeBan] }] },
  },
  {
    name: 'ferry/layers/core-tests',
    files: ['packages/core/src/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: coreBans }] },
  },
  {
    name: 'ferry/layers/client',
    files: ['packages/client/src/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: crossPackage(
            ['@ferry/server'],
            '@ferry/client ships to browsers: it may not import @ferry/server.',
          ),
        },
      ],
    },
  },

  // Browser code: the dashboard, the client (browser and Node) and the example web app.
  {
    name: 'ferry/browser',
    files: ['packages/dashboard/src/**', 'packages/client/src/**', 'examples/web-app/src/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  // React hooks: the two classic rules only (the code already carries exhaustive-deps disables). The
  // plugin's v7 recommended set adds React Compiler rules this code was not written for.
  {
    name: 'ferry/react-hooks',
    files: ['packages/dashboard/src/**/*.{ts,tsx}', 'packages/client/src/react/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: { 'react-hooks/rules-of-hooks': 'error', 'react-hooks/exhaustive-deps': 'warn' },
  },

  // Must stay after every config that sets a formatting rule: turns off what Prettier owns.
  eslintConfigPrettier,

  // max-len is one of eslint-config-prettier's "special rules": off by default, compatible when its
  // options leave Prettier's output alone. Prettier wraps code at 120 columns (.prettierrc.json); this
  // catches what it cannot wrap, comments included. URLs, strings, template literals and regular
  // expressions are allowed to run long.
  {
    name: 'ferry/max-len',
    files: [...TS_FILES, ...JS_FILES],
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/max-len': [
        'error',
        {
          code: 120,
          tabWidth: 2,
          ignoreUrls: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
        },
      ],
    },
  },
]);

#!/usr/bin/env node
// The `ferry` command. A committed shim, so npm links it at install time, before the TypeScript
// build has produced dist/ (npm skips bin links whose target does not exist yet).
await import('../dist/cli/main.js');

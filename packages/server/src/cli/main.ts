#!/usr/bin/env node
// The `ferry` binary: runs the program on process.argv. A command that threw exits at once (a server
// half started must not keep the process alive); one that set an exit code ends when its work is done.
import { runProgram } from './program.js';

const outcome = await runProgram(process.argv.slice(2));
if (outcome.failed) process.exit(outcome.code);
process.exitCode = outcome.code;

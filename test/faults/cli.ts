/**
 * The `tenant-gate` command run from the TypeScript sources, exactly as bin/tenant-gate.js
 * runs the built one: `node --import tsx test/faults/cli.ts serve --config FILE`.
 */
import { main } from '../../src/main.js';

process.exitCode = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
});

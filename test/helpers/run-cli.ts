/** Runs the command line from source (tests start it with `node --import tsx`). */
import { main } from '../../src/main.js';

const code = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
});
process.exitCode = code;

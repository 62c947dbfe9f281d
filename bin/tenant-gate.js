#!/usr/bin/env node
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  const builder = fileURLToPath(new URL('../scripts/build-if-needed.js', import.meta.url));
  if (!existsSync(builder)) {
    process.stderr.write('tenant-gate is not built: run `npm run build` first\n');
    process.exit(1);
  }
  execFileSync(process.execPath, [builder], { stdio: ['ignore', 'inherit', 'inherit'], cwd: fileURLToPath(new URL('..', import.meta.url)) });
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
});
process.exitCode = code;

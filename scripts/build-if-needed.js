// Builds dist/ when it is missing or older than any file under src/.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const stale = !existsSync('dist/main.js') || newest('src') > newest('dist') || statSync('package.json').mtimeMs > newest('dist');
if (stale) {
  process.stderr.write('building tenant-gate...\n');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}

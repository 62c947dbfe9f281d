import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import autocannon from 'autocannon';
import { addAcme, gatewayConfig, launchGateway, TENANT_HOST } from '../gateways.ts';
import { waitForPort } from '../servers.ts';
mkdirSync('/dev/shm/tgb-h', { recursive: true });
const gw = await launchGateway('gw', { config: gatewayConfig({ mode: 'route', upstream: 'http://127.0.0.1:9', dir: '/dev/shm/tgb-h', logLevel: 'warn' }) });
await addAcme(gw.adminUrl);
const plain = spawn(process.execPath, ['bench/.scratch/redir-server.mjs', '41077'], { stdio: 'inherit' });
await waitForPort(41077);
const headers = { host: TENANT_HOST, accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
for (const [name, url, pid] of [['gateway', `${gw.url}/projects/all`, gw.handle.pid], ['plain', 'http://127.0.0.1:41077/h/projects/all', plain.pid!]] as const) {
  await autocannon({ url, connections: 20, duration: 1, headers });
  const st = spawn('strace', ['-c', '-f', '-p', String(pid), '-o', `/tmp/tgb/strace-${name}.txt`]);
  await new Promise((r) => setTimeout(r, 500));
  const r = await autocannon({ url, connections: 20, duration: 3, headers });
  st.kill('SIGINT'); await new Promise((res) => st.once('exit', res));
  console.log(name, r.requests.total, 'requests', JSON.stringify(r.statusCodeStats));
}
plain.kill(); await gw.stop();

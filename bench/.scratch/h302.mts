import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { addAcme, gatewayConfig, launchGateway, TENANT_HOST } from '../gateways.ts';
mkdirSync('/dev/shm/tgb-h', { recursive: true });
const gw = await launchGateway('gw', { config: gatewayConfig({ mode: 'route', upstream: 'http://127.0.0.1:9', dir: '/dev/shm/tgb-h', logLevel: 'warn' }) });
await addAcme(gw.adminUrl);
const raw = (req: string) => new Promise<string>((resolve) => {
  const s = net.connect(gw.port, '127.0.0.1', () => s.write(req));
  let b = ''; s.on('data', (c) => { b += c; }); setTimeout(() => { s.destroy(); resolve(b); }, 300);
});
console.log(await raw(`GET /projects/all HTTP/1.1\r\nHost: ${TENANT_HOST}\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: document\r\nAccept: text/html\r\n\r\n`));
console.log(await raw(`POST /login HTTP/1.1\r\nHost: ml.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 22\r\n\r\nemail=alice%40acme.com`));
await gw.stop();

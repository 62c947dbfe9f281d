import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { launchServer } from '../servers.ts';
import { addAcme, gatewayConfig, launchGateway, TENANT_HOST } from '../gateways.ts';
const up = await launchServer('upstream', { kind: 'upstream' });
const bare = await launchServer('bare', { kind: 'bare-proxy', upstream: up.url, logLevel: 'warn' });
mkdirSync('/dev/shm/tgb-h', { recursive: true });
const gw = await launchGateway('gw', { config: gatewayConfig({ mode: 'route', upstream: up.url, dir: '/dev/shm/tgb-h', logLevel: 'warn' }) });
await addAcme(gw.adminUrl);
const raw = (port: number) => new Promise<string>((resolve) => {
  const s = net.connect(port, '127.0.0.1', () => s.write(`GET /projects/all?page=1 HTTP/1.1\r\nHost: ${TENANT_HOST}\r\nAccept: application/json\r\nCookie: clearml_token_basic=x\r\n\r\n`));
  let b = ''; s.on('data', (c) => { b += c; if (b.includes('\r\n\r\n') && b.endsWith('}')) { s.destroy(); resolve(b); } });
});
console.log('--- bare\n' + await raw(bare.port));
console.log('--- gateway\n' + await raw(gw.port));
await gw.stop(); await bare.stop(); await up.stop();

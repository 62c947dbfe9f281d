import net from 'node:net';
const port = Number(process.argv[2]);
const s = net.connect(port, '127.0.0.1', () => s.write('GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
let buf = ''; const t0 = Date.now();
s.on('data', (c) => buf += c);
s.on('close', () => { console.log(JSON.stringify(buf), 'closed after', Date.now() - t0, 'ms'); process.exit(0); });
setTimeout(() => { console.log('NOT CLOSED after 3s:', JSON.stringify(buf)); process.exit(1); }, 3000);

import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';
const app = Fastify({ logger: { level: 'warn' } });
await app.register(httpProxy, { upstream: 'http://127.0.0.1:' + process.argv[3], prefix: '/' });
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2]) });
setTimeout(() => process.exit(0), 60000);

import Fastify from 'fastify';
const app = Fastify({ logger: { level: 'warn' } });
app.addHook('onRequest', async (req, reply) => {
  if (req.url.startsWith('/h')) return reply.redirect('/login/acme?redirect=%2Fprojects%2Fall', 302);
});
app.get('/', async () => ({ hello: 'world' }));
app.get('/*', async () => ({ never: true }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2]) });
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(0), 60000);

/**
 * Entry of a reference server's process: starts the server named by the job.
 */
import { runChild } from './child-process.js';
import { serveAuthOk, serveBareProxy, serveHello, serveIdp, serveUpstream, type ServerJob } from './servers.js';

runChild<ServerJob & { maxLifetimeMs?: number }>(async (job) => {
  switch (job.kind) {
    case 'upstream':
      return serveUpstream();
    case 'bare-proxy':
      return serveBareProxy(job.upstream, job.logLevel);
    case 'hello':
      return serveHello(job.logLevel);
    case 'idp':
      return serveIdp(job);
    case 'auth-ok':
      return serveAuthOk();
  }
});

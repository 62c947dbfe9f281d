import http from 'node:http';
const s = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, {'content-type':'application/json','content-length':2}); res.end('{}'); }); });
s.listen(Number(process.argv[2]), '127.0.0.1');
setTimeout(() => process.exit(0), 60000);

import Database from 'better-sqlite3';
import { SqliteTenantStore } from '../../src/directory/sqlite-store.ts';
const path = '/dev/shm/tgb-sq.db';
const N = 100_000;
const s = new SqliteTenantStore({ path });
await s.init();
const t0 = performance.now();
for (let i = 0; i < N; i++) await s.putCompany({ company: `company-${String(i).padStart(6,'0')}`, sso: { tenant: `tenant-${String(i).padStart(6,'0')}`, group_mapping: { a: 'A', b: ['B','C'] }, admin_groups: ['a'], groups: [], domains: [`t${i}.example.com`], hosts: [], display_name: `T ${i}` } });
console.log('seeded', ((performance.now()-t0)/1000).toFixed(1), 's');
const bench = async (label: string, n: number, f: (id: string) => unknown) => {
  let x = 12345; const t = performance.now(); let ops = 0;
  while (performance.now() - t < 2000) { for (let k = 0; k < 100; k++) { x = (x * 1103515245 + 12345) % 2147483648; await f(`tenant-${String(x % n).padStart(6,'0')}`); ops++; } }
  console.log(label, Math.round(ops / ((performance.now() - t) / 1000)), '/s');
};
await bench('store findTenant 100k', N, (id) => s.findTenant(id));
await bench('store findTenant 10', 10, (id) => s.findTenant(id));
await s.close();
for (const pragma of ['', 'cache_size = -65536', 'mmap_size = 268435456']) {
  const db = new Database(path); if (pragma) db.pragma(pragma);
  const q1 = db.prepare('SELECT * FROM companies WHERE tenant_key = ?');
  const q2 = db.prepare('SELECT * FROM providers WHERE company = ? ORDER BY id');
  const q3 = db.prepare('SELECT domain AS name FROM company_domains WHERE company = ? ORDER BY position');
  const q4 = db.prepare('SELECT host AS name FROM company_hosts WHERE company = ? ORDER BY position');
  const tx = db.transaction((id: string) => { const r = q1.get(id) as any; if (!r) return; q2.all(r.company); q3.all(r.company); q4.all(r.company); JSON.parse(r.sso); });
  await bench(`raw 100k [${pragma || 'default'}]`, N, tx);
  await bench(`raw 10 [${pragma || 'default'}]`, 10, tx);
  db.close();
}

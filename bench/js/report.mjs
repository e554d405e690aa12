// Reads the JSON lines of bench_verify (ours) and the peer drivers, prints a table of statuses
// and rates, and the summary line bench/verify ends with. Exit 1 when a peer disagrees.
// usage: node report.mjs OURS.json WASM.json JS.json
import fs from 'node:fs';

const load = (p) => {
  const lines = fs.readFileSync(p, 'utf8').trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
};
const [ours, wasm, js] = process.argv.slice(2).map(load);
const peers = [wasm, js];

const show = (c) =>
  !c ? 'missing'
    : c.status === null ? `error: ${c.error}`
    : c.status + (c.advisory_ids.length ? ` [${c.advisory_ids.join(',')}]` : '');
const same = (a, b) =>
  a && b && a.status !== null && a.status === b.status &&
  JSON.stringify(a.advisory_ids) === JSON.stringify(b.advisory_ids);

let agree = 0, total = 0;
const disagreements = [];
for (const c of ours.cases) {
  console.log(`${c.name}:`);
  console.log(`  ${'dstack'.padEnd(14)} ${show(c)}`);
  for (const p of peers) {
    const pc = p.cases.find((x) => x.name === c.name);
    total++;
    if (same(c, pc)) agree++;
    else disagreements.push(`${c.name}: ${p.verifier} says ${show(pc)}, dstack says ${show(c)}`);
    console.log(`  ${p.verifier.padEnd(14)} ${show(pc)}${same(c, pc) ? '' : '   <-- differs'}`);
  }
}
console.log('');
const rate = (r) => Math.round(r.per_sec);
for (const r of [ours, ...peers]) {
  const note = r.timed_cases.join(',') === ours.timed_cases.join(',') ? '' : '   (other quote set!)';
  console.log(`${r.verifier.padEnd(14)} ${String(rate(r)).padStart(8)}/s  ` +
              `${r.verifications} verifications in ${r.seconds.toFixed(2)} s over ` +
              `${r.timed_cases.join(',') || 'nothing'}${note}`);
}
if (ours.cold_verifications > 0)
  console.log(`${'dstack cold'.padEnd(14)} ${String(Math.round(ours.cold_per_sec)).padStart(8)}/s  ` +
              `${ours.cold_verifications} verifications in ${ours.cold_seconds.toFixed(2)} s, ` +
              'caches flushed before each (reference only)');
const ratio = (p) => (p.per_sec > 0 ? ours.per_sec / p.per_sec : 0);
console.log(`ratio dstack/dcap-qvl-wasm ${ratio(wasm).toFixed(2)}, dstack/dcap-qvl-js ${ratio(js).toFixed(2)}`);
for (const d of disagreements) console.log(`DISAGREE ${d}`);
console.log(`verify: dstack ${rate(ours)}/s, dcap-qvl-wasm ${rate(wasm)}/s, dcap-qvl-js ${rate(js)}/s, ` +
            `ratio-wasm ${ratio(wasm).toFixed(2)}, agree ${agree}/${total}`);
process.exit(agree === total ? 0 : 1);

// Shared by the peer drivers: argument parsing, first-pass statuses, timed loop,
// one JSON line on stdout.
// usage: node verify_X.mjs [--seconds S] [--max N] NAME=QUOTE,COLLATERAL_JSON,UNIX_TIME ...
import fs from 'node:fs';

export function parseArgs(argv) {
  const o = { seconds: 3, max: 1000000, cases: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') o.seconds = Number(argv[++i]);
    else if (a === '--max') o.max = Number(argv[++i]);
    else {
      const m = /^([^=]+)=([^,]+),([^,]+),(\d+)$/.exec(a);
      if (!m) throw new Error(`bad case argument: ${a}`);
      o.cases.push({
        name: m[1],
        quote: new Uint8Array(fs.readFileSync(m[2])),
        collateral: JSON.parse(fs.readFileSync(m[3], 'utf8')),
        time: Number(m[4]),
      });
    }
  }
  if (!(o.seconds > 0) || !(o.max > 0) || o.cases.length === 0)
    throw new Error('need --seconds > 0, --max > 0 and at least one case');
  return o;
}

function errText(e) {
  let s = e instanceof Error ? e.message : String(e);
  for (let c = e && e.cause; c; c = c.cause) s += `: ${c.message || c}`;
  return s;
}

// verifyOne(case) returns {status, advisory_ids} or throws.
export function run(verifier, verifyOne, argv = process.argv.slice(2)) {
  const o = parseArgs(argv);
  const results = [];
  const ok = [];
  for (const c of o.cases) {
    try {
      const r = verifyOne(c);
      results.push({ name: c.name, status: r.status, advisory_ids: [...(r.advisory_ids || [])].sort() });
      ok.push(c);
    } catch (e) {
      results.push({ name: c.name, status: null, error: errText(e) });
    }
  }
  // Timed loop: round robin over the quotes this verifier accepted, one thread.
  let n = 0;
  let elapsed = 0;
  if (ok.length > 0) {
    const limit = o.seconds * 1e9;
    const t0 = process.hrtime.bigint();
    for (;;) {
      for (const c of ok) verifyOne(c);
      n += ok.length;
      elapsed = Number(process.hrtime.bigint() - t0);
      if (elapsed >= limit || n >= o.max) break;
    }
  }
  const secs = elapsed / 1e9;
  process.stdout.write(JSON.stringify({
    verifier,
    cases: results,
    timed_cases: ok.map((c) => c.name),
    verifications: n,
    seconds: Number(secs.toFixed(6)),
    per_sec: secs > 0 ? n / secs : 0,
  }) + '\n');
}

// Starts `kms --dev DIR` in a fresh temporary directory, makes simulated CVM identities (RA-TLS
// client certificates) it accepts, and calls its pRPC methods over HTTPS / mutual TLS.
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { REPO, findFile } from './tappd.mjs';

function buildDir() {
  return process.env.DSTACK_BUILD ? path.resolve(REPO, process.env.DSTACK_BUILD) : path.join(REPO, 'build');
}
export function kmsBinary() {
  return process.env.KMS_BIN || path.join(buildDir(), 'src', 'kms', 'kms');
}
export function tdxctlBinary() {
  return process.env.TDXCTL_BIN || path.join(buildDir(), 'src', 'tdxctl', 'tdxctl');
}

// Resolves to { dir, port, url, log(), stop() } once kms printed `listening https://HOST:PORT`.
export async function startKms({ timeoutMs = 60000, extraArgs = [] } = {}) {
  const bin = kmsBinary();
  if (!fs.existsSync(bin)) throw new Error(`kms not built at ${bin} (set DSTACK_BUILD)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-kms-'));
  const env = { ...process.env };
  for (const k of ['DSTACK_TEE', 'DSTACK_SIM_DIR']) delete env[k];
  const proc = spawn(bin, ['--dev', dir, ...extraArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });

  const deadline = Date.now() + timeoutMs;
  let port;
  for (;;) {
    if (exited) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`kms exited early (${JSON.stringify(exited)}):\n${output}`);
    }
    const m = output.match(/listening https:\/\/127\.0\.0\.1:(\d{1,5})\b/);
    if (m) { port = Number(m[1]); break; }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`kms did not print its listening line within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  // Stops kms; throws when it had died before, did not exit cleanly on SIGTERM, or printed a
  // sanitizer report.
  async function stop() {
    const diedEarly = exited;
    if (!exited) {
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await done;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    if (diedEarly) throw new Error(`kms died during the tests (${JSON.stringify(diedEarly)}):\n${output}`);
    if (/Sanitizer|runtime error:/.test(output)) throw new Error(`kms sanitizer report:\n${output}`);
    if (exited.code !== 0) throw new Error(`kms exit on SIGTERM: ${JSON.stringify(exited)}:\n${output.slice(-3000)}`);
    return exited;
  }
  return { dir, port, url: `https://127.0.0.1:${port}`, proc, log: () => output, stop };
}

// Runs tdxctl; resolves { code, stdout (Buffer), stderr } and never rejects on a non-zero exit.
export function tdxctl(args, { env = {}, input = null, timeoutMs = 30000 } = {}) {
  return new Promise((resolve) => {
    const p = execFile(tdxctlBinary(), args,
      { env: { ...process.env, ...env }, encoding: 'buffer', maxBuffer: 64 << 20, timeout: timeoutMs },
      (err, stdout, stderr) => resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr: stderr.toString(),
      }));
    if (input != null) p.stdin.end(input);
    else p.stdin.end();
  });
}

async function tdxctlOk(args, opts) {
  const r = await tdxctl(args, opts);
  if (r.code !== 0) throw new Error(`tdxctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.toString();
}

// First directory under dir (depth-limited) that holds a simulated platform (sim.json).
export function findSimDir(dir, depth = 3) {
  const marker = findFile(dir, 'sim.json', depth);
  return marker ? path.dirname(marker) : null;
}

// A simulated CVM the dev KMS accepts: a copy of the KMS's simulated platform (same PCK chain and
// collateral, so its quotes verify against the root the KMS trusts; its own TD state), RTMR3
// events for an app (the newest boot's runtime events: system-preparing, app-id, compose-hash,
// instance-id, boot-mr-done, as `tdxctl extend --payload` writes them) and a
// boot-time RA-TLS client certificate signed by the KMS's tmp CA (tdxctl gen-ra-cert).
// Resolves to { dir, appId, composeHash, instanceId, cert, key, certPath, keyPath, cleanup() }.
export async function makeCvm(kms, { compose = 'services: {}\n', appId = null } = {}) {
  const kmsSim = process.env.KMS_SIM_DIR || findSimDir(kms.dir);
  if (!kmsSim) throw new Error(`no simulated platform (sim.json) under the kms dev dir ${kms.dir}`);
  const caCert = findFile(kms.dir, 'tmp-ca.cert');
  const caKey = findFile(kms.dir, 'tmp-ca.key');
  if (!caCert || !caKey) throw new Error(`no tmp-ca.cert / tmp-ca.key under ${kms.dir}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-cvm-'));
  const sim = path.join(dir, 'sim');
  fs.cpSync(kmsSim, sim, { recursive: true });
  // A fresh TD on the copied platform: RTMR3 back to zero and only the boot events (RTMR0..2)
  // kept, as right after `tdxctl sim init`, so no event the KMS itself measured is inherited.
  const tdPath = path.join(sim, 'td.json');
  const td = JSON.parse(fs.readFileSync(tdPath, 'utf8'));
  td.rtmr3 = '00'.repeat(48);
  fs.writeFileSync(tdPath, JSON.stringify(td, null, 2) + '\n');
  const logPath = path.join(sim, 'eventlog.jsonl');
  const boot = fs.readFileSync(logPath, 'utf8').split('\n').filter((l) => l.trim() && JSON.parse(l).imr !== 3);
  fs.writeFileSync(logPath, boot.map((l) => l + '\n').join(''), { mode: 0o600 });
  const env = { DSTACK_TEE: 'sim', DSTACK_SIM_DIR: sim };
  const composeHash = crypto.createHash('sha256').update(compose).digest('hex');
  appId = appId || composeHash.slice(0, 40);
  const instanceId = crypto.randomBytes(20).toString('hex');
  // The newest guest's boot events, in its order (names bound to digests; identity is taken
  // only from before boot-mr-done).
  const events = [['system-preparing', ''], ['app-id', appId], ['compose-hash', composeHash],
    ['instance-id', instanceId], ['boot-mr-done', '']];
  for (const [name, value] of events)
    await tdxctlOk(['extend', '-a', name, '--payload', value], { env });
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  await tdxctlOk(['gen-ra-cert', '--ca-cert', caCert, '--ca-key', caKey, '-c', certPath, '-k', keyPath], { env });
  return {
    dir, appId, composeHash, instanceId, certPath, keyPath,
    cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// POST url+target with a JSON body over HTTPS (optionally with a client certificate), on a new
// connection. The KMS's server certificate is not checked here (its chain is not under test).
// Resolves { status, headers, body (string), json (or undefined) }.
export function httpsJson(url, target, body, { cert, key, method = 'POST', timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const data = body == null ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = https.request({
      host: u.hostname, port: u.port, path: target, method, cert, key, agent: false,
      rejectUnauthorized: false, timeout: timeoutMs,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: timed out`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

export function hexBytes(h, what = 'hex') {
  if (typeof h !== 'string' || !/^(0x)?([0-9a-fA-F]{2})*$/.test(h)) throw new Error(`${what} is not hex: ${JSON.stringify(h)}`);
  return Buffer.from(h.replace(/^0x/, ''), 'hex');
}

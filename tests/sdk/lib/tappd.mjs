// Starts `tappd --dev DIR` in a fresh temporary directory and tells the tests where its
// sockets and external port are. One tappd per test file.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..', '..');

export function tappdBinary() {
  if (process.env.TAPPD_BIN) return process.env.TAPPD_BIN;
  const build = process.env.DSTACK_BUILD || path.join(REPO, 'build');
  return path.join(build, 'src', 'tappd', 'tappd');
}

function canConnect(sock) {
  return new Promise((resolve) => {
    const c = net.createConnection({ path: sock });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

// Resolves to { dir, tappdSock, dstackSock, externalPort, log(), stop() } once tappd printed its
// `listening` lines and both sockets accept connections.
export async function startTappd({ timeoutMs = 30000, extraArgs = [] } = {}) {
  const bin = tappdBinary();
  if (!fs.existsSync(bin)) throw new Error(`tappd not built at ${bin} (set DSTACK_BUILD)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-tappd-'));
  const env = { ...process.env };
  for (const k of ['DSTACK_TEE', 'DSTACK_SIM_DIR', 'DSTACK_SIMULATOR_ENDPOINT', 'TAPPD_SIMULATOR_ENDPOINT'])
    delete env[k];
  const proc = spawn(bin, ['--dev', dir, ...extraArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });

  const tappdSock = path.join(dir, 'tappd.sock');
  const dstackSock = path.join(dir, 'dstack.sock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`tappd exited early (${JSON.stringify(exited)}):\n${output}`);
    }
    const lines = output.split('\n').filter((l) => /listening/i.test(l));
    const sawSockets = lines.some((l) => l.includes('tappd.sock')) && lines.some((l) => l.includes('dstack.sock'));
    if (sawSockets && fs.existsSync(tappdSock) && fs.existsSync(dstackSock) &&
        (await canConnect(tappdSock)) && (await canConnect(dstackSock))) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`tappd did not print its listening lines within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // The external HTTP port: the first listening line that names host:port.
  let externalPort = null;
  for (const l of output.split('\n')) {
    if (!/listening/i.test(l) || /\.sock/.test(l)) continue;
    const m = l.match(/(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]*\]|localhost|\*):(\d{1,5})\b/);
    if (m) { externalPort = Number(m[1]); break; }
  }

  // Stops tappd; throws when it had died before, did not exit cleanly on SIGTERM, or printed a
  // sanitizer report (ASan/UBSan/LSan builds).
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
    if (diedEarly) throw new Error(`tappd died during the tests (${JSON.stringify(diedEarly)}):\n${output}`);
    if (/Sanitizer|runtime error:/.test(output)) throw new Error(`tappd sanitizer report:\n${output}`);
    if (exited.code !== 0) throw new Error(`tappd exit on SIGTERM: ${JSON.stringify(exited)}:\n${output.slice(-3000)}`);
    return exited;
  }
  return { dir, tappdSock, dstackSock, externalPort, proc, log: () => output, stop };
}

// First file called `name` under dir (depth-limited), or null.
export function findFile(dir, name, depth = 3) {
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return null; }
  for (const e of entries) if (e.isFile() && e.name === name) return path.join(dir, e.name);
  if (depth > 0)
    for (const e of entries)
      if (e.isDirectory()) {
        const r = findFile(path.join(dir, e.name), name, depth - 1);
        if (r) return r;
      }
  return null;
}

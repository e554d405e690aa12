// Plain HTTP/1.1 over a unix socket (one request per connection, Connection: close) and curl,
// so a failing check can show the exact request and response.
import { execFile } from 'node:child_process';
import net from 'node:net';

// Returns { status, headers (lower-case names), raw (header text), body (Buffer) }.
export function rawRequest(sock, method, target, { body = null, headers = {}, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const c = net.createConnection({ path: sock });
    const chunks = [];
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`${method} ${target}: timed out`)); }, timeoutMs);
    c.on('connect', () => {
      const b = body == null ? null : Buffer.from(body);
      let req = `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`;
      for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
      if (b) req += `Content-Length: ${b.length}\r\n`;
      req += '\r\n';
      c.write(req);
      if (b) c.write(b);
    });
    c.on('data', (d) => chunks.push(d));
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
    c.on('end', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const sep = all.indexOf('\r\n\r\n');
      if (sep < 0) { reject(new Error(`${method} ${target}: no header end in ${JSON.stringify(all.toString())}`)); return; }
      const raw = all.subarray(0, sep).toString('latin1');
      const lines = raw.split('\r\n');
      const m = lines[0].match(/^HTTP\/1\.[01] (\d{3})/);
      if (!m) { reject(new Error(`bad status line ${JSON.stringify(lines[0])}`)); return; }
      const hdrs = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let bodyBuf = all.subarray(sep + 4);
      if (/chunked/i.test(hdrs['transfer-encoding'] || '')) bodyBuf = dechunk(bodyBuf);
      resolve({ status: Number(m[1]), headers: hdrs, raw, body: bodyBuf });
      c.destroy();
    });
  });
}

function dechunk(b) {
  const out = [];
  let i = 0;
  for (;;) {
    const e = b.indexOf('\r\n', i);
    if (e < 0) break;
    const n = parseInt(b.subarray(i, e).toString(), 16);
    if (!n) break;
    out.push(b.subarray(e + 2, e + 2 + n));
    i = e + 2 + n + 2;
  }
  return Buffer.concat(out);
}

// Runs curl with args; resolves { code, stdout, stderr } (never rejects on a non-zero exit).
export function curl(args, { timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
  });
}

// curl -i split into status, headers and body.
export async function curlI(args, opts) {
  const r = await curl(['-i', ...args], opts);
  const sep = r.stdout.indexOf('\r\n\r\n');
  const head = sep < 0 ? r.stdout : r.stdout.slice(0, sep);
  const body = sep < 0 ? '' : r.stdout.slice(sep + 4);
  const lines = head.split('\r\n');
  const m = (lines[0] || '').match(/^HTTP\/[\d.]+ (\d{3})/);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { ...r, status: m ? Number(m[1]) : 0, headers, head, body, cmd: `curl -sS -i ${args.map(shq).join(' ')}` };
}

function shq(a) {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

// A one-line description of an exchange for assertion messages.
export function describe(req, res) {
  const body = Buffer.isBuffer(res.body) ? res.body.toString() : String(res.body);
  return `${req}\n=> ${res.status} ${JSON.stringify(res.headers)}\n${body.length > 600 ? body.slice(0, 600) + '...' : body}`;
}

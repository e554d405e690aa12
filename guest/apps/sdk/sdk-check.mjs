// dstack-demo-sdk: calls the dstack guest agent through the published @phala/dstack-sdk
// (socket /var/run/dstack.sock, bind-mounted into the container) and serves the result as JSON
// on :8081; the first result is also printed on stdout.
import http from 'node:http';
import { DstackClient } from '@phala/dstack-sdk';

const endpoint = process.env.DSTACK_SOCKET || '/var/run/dstack.sock';
const port = Number(process.env.PORT || 8081);

// Uint8Array and Buffer values as hex, so the result is plain JSON
function plain(value) {
  return JSON.parse(JSON.stringify(value, (k, v) => {
    if (v && v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data).toString('hex');
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    if (typeof v === 'bigint') return v.toString();
    return v;
  }));
}

async function step(out, name, fn) {
  try {
    out[name] = plain(await fn());
  } catch (e) {
    out.ok = false;
    out[name + '_error'] = String(e && e.message ? e.message : e);
  }
}

async function check() {
  const client = new DstackClient(endpoint);
  const out = { ok: true, endpoint, sdk: '@phala/dstack-sdk' };
  await step(out, 'info', () => client.info());
  await step(out, 'key', async () => {
    const k = await client.getKey('dstack-demo', 'sdk-check');
    return { key: k.key, signature_chain: k.signature_chain };
  });
  await step(out, 'quote', async () => {
    const q = await client.getQuote('dstack-demo-sdk-check');
    return { quote: q.quote, event_log: q.event_log || '' };
  });
  return out;
}

// PID 1 in a container: leave on TERM/INT instead of waiting for SIGKILL
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

const first = await check();
console.log(JSON.stringify(first));
http.createServer(async (req, res) => {
  const body = JSON.stringify(req.url === '/first' ? first : await check());
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body + '\n');
}).listen(port, () => console.log(`dstack-demo-sdk: serving on :${port}`));

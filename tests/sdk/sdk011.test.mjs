// @phala/dstack-sdk 0.1.11 (TappdClient: deriveKey, tdxQuote, info) against tappd.sock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { TappdClient } from 'sdk011';
import { toViemAccount } from 'sdk011/viem';
import { toKeypair } from 'sdk011/solana';
import { startTappd, findFile } from './lib/tappd.mjs';
import { checkKeyAndChain, checkQuoteReply, quietSdk } from './lib/checks.mjs';
import { tdxQuoteReportData, hexToBuf, pemCerts, replay, parseQuote } from './lib/attest.mjs';

quietSdk();
let td, client, rootPem;

before(async () => {
  td = await startTappd();
  const r = findFile(td.dir, 'root_ca.pem');
  rootPem = r ? (await import('node:fs')).readFileSync(r, 'utf8') : null;
  // 0.1.11 reads DSTACK_SIMULATOR_ENDPOINT (it overrides the constructor argument).
  process.env.DSTACK_SIMULATOR_ENDPOINT = td.tappdSock;
  client = new TappdClient();
});

after(async () => { await td?.stop(); });

test('endpoint: DSTACK_SIMULATOR_ENDPOINT and the constructor argument', async () => {
  const a = await client.deriveKey('endpoint/check');
  const saved = process.env.DSTACK_SIMULATOR_ENDPOINT;
  delete process.env.DSTACK_SIMULATOR_ENDPOINT;
  try {
    const b = await new TappdClient(td.tappdSock).deriveKey('endpoint/check');
    assert.equal(a.key, b.key);
  } finally {
    process.env.DSTACK_SIMULATOR_ENDPOINT = saved;
  }
});

test('deriveKey: deterministic per path, different across paths', async () => {
  const a1 = await client.deriveKey('/app/a', 'a.example');
  const a2 = await client.deriveKey('/app/a', 'a.example');
  const b = await client.deriveKey('/app/b', 'a.example');
  assert.equal(a1.key, a2.key, 'same path must give the same key');
  assert.notEqual(a1.key, b.key, 'different paths must give different keys');
  const pub = (r) => crypto.createPublicKey(r.key).export({ type: 'spki', format: 'der' }).toString('hex');
  assert.notEqual(pub(a1), pub(b));
  // subject does not enter the key
  const a3 = await client.deriveKey('/app/a', 'other.example');
  assert.equal(a3.key, a1.key, 'subject must not change the derived key');
});

test('deriveKey: chain verifies to the app CA, subject and alt names', async () => {
  const r = await client.deriveKey('/tls', 'svc.example', ['www.svc.example', 'api.svc.example']);
  const { leaf } = checkKeyAndChain(r, { subject: 'svc.example', altNames: ['www.svc.example', 'api.svc.example'] });
  assert.ok(leaf.subjectAltName, 'alt names asked for');
  // without a subject the client sends subject = path
  const d = await client.deriveKey('/only/path');
  checkKeyAndChain(d, { subject: '/only/path' });
  // every path chains to the same app CA
  const ca1 = pemCerts(r.certificate_chain.at(-1))[0], ca2 = pemCerts(d.certificate_chain.at(-1))[0];
  assert.equal(ca1.fingerprint256, ca2.fingerprint256, 'all derived keys chain to one app CA');
});

test('deriveKey: asUint8Array() is the PKCS#8 DER; viem and solana helpers take it', async () => {
  const r = await client.deriveKey('/wallet', 'wallet');
  const der = Buffer.from(r.asUint8Array());
  const pem = crypto.createPrivateKey(r.key).export({ type: 'pkcs8', format: 'der' });
  const k = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  assert.deepEqual(k.export({ type: 'pkcs8', format: 'der' }), pem);
  assert.equal(r.asUint8Array(32).length, 32);
  assert.match(toViemAccount(r).address, /^0x[0-9a-fA-F]{40}$/);
  assert.equal(toKeypair(r).publicKey.toBytes().length, 32);
});

test('deriveKey: 32 concurrent calls agree', async () => {
  const rs = await Promise.all(Array.from({ length: 32 }, () => client.deriveKey('/concurrent', 'c')));
  for (const r of rs) assert.equal(r.key, rs[0].key);
});

const ALGS = [undefined, 'sha256', 'sha384', 'sha512', 'sha3-256', 'sha3-384', 'sha3-512',
  'keccak256', 'keccak384', 'keccak512'];

for (const alg of ALGS) {
  test(`tdxQuote(${alg ?? 'default'}): report_data = ${alg ?? 'sha512'}("app-data:" data), padded`, async () => {
    const data = `sdk011 quote ${alg ?? 'default'} ${'x'.repeat(100)}`;
    const r = await client.tdxQuote(data, alg);
    checkQuoteReply(r, tdxQuoteReportData(alg, Buffer.from(data)), { rootPem });
    assert.equal(r.hash_algorithm, alg ?? 'sha512', 'hash_algorithm echoed');
    assert.equal(r.prefix, 'app-data', 'prefix echoed');
    // bytes input takes the same path
    const b = await client.tdxQuote(Buffer.from([0, 1, 2, 0xff]), alg);
    checkQuoteReply(b, tdxQuoteReportData(alg, Buffer.from([0, 1, 2, 0xff])), { rootPem });
  });
}

test('tdxQuote(raw): 64 bytes as they are; the client left-pads shorter data', async () => {
  const full = crypto.randomBytes(64);
  const r = await client.tdxQuote(full, 'raw');
  checkQuoteReply(r, full, { rootPem });
  assert.equal(r.hash_algorithm, 'raw');
  assert.equal(r.prefix, '');
  const short = Buffer.from('0123456789');
  const s = await client.tdxQuote(short, 'raw');
  checkQuoteReply(s, Buffer.concat([Buffer.alloc(54), short]), { rootPem });
});

test('tdxQuote: unknown hash algorithm is an error the client throws', async () => {
  await assert.rejects(client.tdxQuote('data', 'md5'));
});

test('info(): fields filled, tcb_info matches a fresh quote and its event log', async () => {
  const info = await client.info();
  assert.match(info.app_id, /^[0-9a-f]{40}$/, 'app_id');
  assert.match(info.instance_id, /^[0-9a-f]+$/, 'instance_id');
  assert.ok(pemCerts(info.app_cert).length >= 1, 'app_cert holds PEM certificates');
  assert.equal(typeof info.app_name, 'string');
  const tcb = info.tcb_info;
  assert.equal(typeof tcb, 'object');
  for (const k of ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3']) assert.match(tcb[k], /^[0-9a-f]{96}$/, k);
  assert.ok(Array.isArray(tcb.event_log) && tcb.event_log.length > 0, 'tcb_info.event_log');
  assert.deepEqual(replay(tcb.event_log), [tcb.rtmr0, tcb.rtmr1, tcb.rtmr2, tcb.rtmr3], 'tcb_info event log replays to its RTMRs');
  const q = parseQuote(hexToBuf((await client.tdxQuote('info', 'sha512')).quote));
  assert.equal(tcb.mrtd, q.mrtd);
  assert.deepEqual([tcb.rtmr0, tcb.rtmr1, tcb.rtmr2, tcb.rtmr3], q.rtmrs);
  // the app CA the derived keys chain to is in app_cert
  const ca = pemCerts((await client.deriveKey('/info')).certificate_chain.at(-1))[0];
  assert.ok(pemCerts(info.app_cert).some((c) => c.fingerprint256 === ca.fingerprint256 || c.verify(ca.publicKey)),
    'app_cert must contain or be issued by the app CA of the derived chains');
});

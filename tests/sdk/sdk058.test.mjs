// @phala/dstack-sdk 0.5.8: DstackClient against dstack.sock and TappdClient against tappd.sock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { DstackClient, TappdClient, getComposeHash } from 'sdk058';
import { toViemAccount, toViemAccountSecure } from 'sdk058/viem';
import { toKeypair, toKeypairSecure } from 'sdk058/solana';
import { startTappd, findFile } from './lib/tappd.mjs';
import { checkKeyAndChain, checkQuoteReply, quietSdk } from './lib/checks.mjs';
import {
  hexToBuf, pad64, parseQuote, verifyQuote, replay, pemCerts, certExtensions, unwrapOctet, OID,
  spkiDer, commonName, tdxQuoteReportData, keccak, recoverK256, k256Pub, k256Verify, ed25519Pub,
  ed25519Verify, kdf, sha256, sha512, checkEventLog, RUNTIME_EVENT,
} from './lib/attest.mjs';

quietSdk();
let td, client, tappd, rootPem, appK256 = null;

before(async () => {
  td = await startTappd();
  const r = findFile(td.dir, 'root_ca.pem');
  rootPem = r ? fs.readFileSync(r, 'utf8') : null;
  // Dev app keys, when tappd keeps them in upstream's appkeys.json shape (k256_key hex).
  const ak = findFile(td.dir, 'appkeys.json');
  if (ak) {
    try {
      const j = JSON.parse(fs.readFileSync(ak, 'utf8'));
      if (typeof j.k256_key === 'string' && /^(0x)?[0-9a-f]{64}$/i.test(j.k256_key))
        appK256 = Buffer.from(j.k256_key.replace(/^0x/, ''), 'hex');
    } catch { /* other format: the exact-derivation check is left out */ }
  }
  process.env.DSTACK_SIMULATOR_ENDPOINT = td.dstackSock;
  process.env.TAPPD_SIMULATOR_ENDPOINT = td.tappdSock;
  client = new DstackClient();
  tappd = new TappdClient();
});

after(async () => { await td?.stop(); });

const hex = (b) => Buffer.from(b).toString('hex');

// ------------------------------------------------------------------ endpoints, Version

test('endpoints: env variables, constructor argument, isReachable()', async () => {
  assert.equal(await client.isReachable(), true, 'DstackClient via DSTACK_SIMULATOR_ENDPOINT');
  assert.equal(await new DstackClient(td.dstackSock).isReachable(), true, 'DstackClient(path)');
  assert.equal(await tappd.isReachable(), true, 'TappdClient via TAPPD_SIMULATOR_ENDPOINT');
  assert.equal(await new TappdClient(td.tappdSock).isReachable(), true, 'TappdClient(path)');
  assert.throws(() => new DstackClient(`${td.dir}/missing.sock`), /does not exist/);
});

test('version(): version and rev', async () => {
  const v = await client.version();
  assert.equal(typeof v.version, 'string');
  assert.ok(v.version.length > 0, 'version filled');
  assert.equal(typeof v.rev, 'string');
});

// ------------------------------------------------------------------ GetKey

let appPub = null; // app k256 public key (compressed), recovered from signature_chain[0]

function checkGetKey(r, purpose, pubHex) {
  assert.equal(r.key.length, 32, 'key is 32 bytes');
  assert.equal(r.signature_chain.length, 2, 'signature_chain has 2 entries');
  const p = recoverK256(keccak(`${purpose}:${pubHex}`), Buffer.from(r.signature_chain[0]));
  if (appPub) assert.deepEqual(p, appPub, 'signature_chain[0] must be by the one app key');
  appPub = p;
  assert.equal(r.signature_chain[1].length, 65, 'signature_chain[1] is a 65-byte recoverable signature');
  return p;
}

test('getKey: deterministic per path, different across paths; purpose changes only the signature', async () => {
  const a1 = await client.getKey('wallet/eth', 'signing');
  const a2 = await client.getKey('wallet/eth', 'signing');
  const a3 = await client.getKey('wallet/eth', 'encryption');
  const b = await client.getKey('wallet/other', 'signing');
  const e = await client.getKey();
  for (const [r, purpose] of [[a1, 'signing'], [a3, 'encryption'], [b, 'signing'], [e, '']])
    checkGetKey(r, purpose, hex(k256Pub(r.key)));
  assert.equal(hex(a1.key), hex(a2.key), 'same path, same key');
  assert.deepEqual(a1.signature_chain.map(hex), a2.signature_chain.map(hex), 'same request, same signatures');
  assert.equal(hex(a1.key), hex(a3.key), 'purpose must not change the key');
  assert.notEqual(hex(a1.signature_chain[0]), hex(a3.signature_chain[0]), 'purpose is signed');
  assert.notEqual(hex(a1.key), hex(b.key), 'different path, different key');
  assert.notEqual(hex(a1.key), hex(e.key));
  if (appK256) {
    assert.equal(hex(a1.key), hex(kdf(appK256, 'wallet/eth')), 'key = HKDF-SHA256(app k256 key, "RATLS", path)');
    assert.deepEqual(appPub, k256Pub(appK256), 'signature_chain[0] is by the app k256 key');
  }
});

test('getKey: signature_chain[1] is the KMS signature over the app key', async () => {
  const info = await client.info();
  const r = await client.getKey('kms/check', 'x');
  const p = checkGetKey(r, 'x', hex(k256Pub(r.key)));
  const msg = Buffer.concat([Buffer.from('dstack-kms-issued:'), hexToBuf(info.app_id, 'app_id'), p]);
  const kms1 = recoverK256(keccak(msg), Buffer.from(r.signature_chain[1]));
  const r2 = await client.getKey('kms/other', 'y');
  const kms2 = recoverK256(keccak(msg), Buffer.from(r2.signature_chain[1]));
  assert.deepEqual(kms1, kms2, 'one KMS key signs the app key');
  assert.notDeepEqual(kms1, p, 'the KMS key is not the app key');
});

test('getKey: "k256" alias and ed25519', async () => {
  const s = await client.getKey('alg/path', 'p', 'secp256k1');
  const k = await client.getKey('alg/path', 'p', 'k256');
  assert.equal(hex(k.key), hex(s.key), 'k256 = secp256k1');
  const ed = await client.getKey('alg/path', 'p', 'ed25519');
  checkGetKey(ed, 'p', hex(ed25519Pub(Buffer.from(ed.key))));
  assert.equal(hex(ed.key), hex(s.key), 'ed25519 secret = the same HKDF output');
  await assert.rejects(client.getKey('alg/path', 'p', 'rsa'), 'unsupported algorithm must fail');
});

test('getKey: viem and solana helpers', async () => {
  const r = await client.getKey('viem/acct', 'eth');
  const a = toViemAccount(r), a2 = toViemAccount(await client.getKey('viem/acct', 'eth'));
  assert.match(a.address, /^0x[0-9a-fA-F]{40}$/);
  assert.equal(a.address, a2.address);
  assert.equal(toViemAccountSecure(r).address, a.address);
  assert.equal(a.publicKey.slice(2, 4), '04');
  const addr = keccak(k256Pub(r.key, false).subarray(1)).subarray(12);
  assert.equal(a.address.toLowerCase(), `0x${hex(addr)}`, 'address = keccak(pubkey)[12:]');
  const e = await client.getKey('sol/acct', 'sol', 'ed25519');
  assert.equal(hex(toKeypair(e).publicKey.toBytes()), hex(ed25519Pub(Buffer.from(e.key))));
  assert.equal(hex(toKeypairSecure(e).publicKey.toBytes()), hex(ed25519Pub(Buffer.from(e.key))));
});

// ------------------------------------------------------------------ GetTlsKey / DeriveKey

let appCaFp = null, appCa = null;

test('getTlsKey: random key per call, chain to the app CA, subject, alt names, usages', async () => {
  const a = await client.getTlsKey({ subject: 'tls.example', altNames: ['a.tls.example', 'b.tls.example'] });
  const { leaf, ca } = checkKeyAndChain(a, { subject: 'tls.example', altNames: ['a.tls.example', 'b.tls.example'] });
  assert.ok((leaf.keyUsage || []).includes(OID.serverAuth), 'usageServerAuth defaults to true');
  assert.ok(!(leaf.keyUsage || []).includes(OID.clientAuth), 'no clientAuth unless asked');
  appCaFp = ca.fingerprint256;
  appCa = ca;
  const b = await client.getTlsKey({ subject: 'tls.example' });
  assert.notEqual(a.key, b.key, 'GetTlsKey keys are random');
  const c = await client.getTlsKey({ subject: 'client', usageServerAuth: false, usageClientAuth: true });
  const cc = checkKeyAndChain(c, { subject: 'client' });
  assert.ok((cc.leaf.keyUsage || []).includes(OID.clientAuth), 'usageClientAuth');
  assert.ok(!(cc.leaf.keyUsage || []).includes(OID.serverAuth), 'usageServerAuth false');
  assert.equal(cc.ca.fingerprint256, appCaFp, 'one app CA');
  assert.equal(Buffer.from(a.asUint8Array()).length > 32, true);
});

test('getTlsKey(usageRaTls): the certificate carries a quote over its own public key', async () => {
  const r = await client.getTlsKey({ subject: 'ratls', usageRaTls: true });
  const { leaf } = checkKeyAndChain(r, { subject: 'ratls' });
  const ext = certExtensions(leaf);
  const want = pad64(Buffer.from(sha512(Buffer.concat([Buffer.from('ratls-cert:'), spkiDer(leaf)]))));
  assert.ok(ext.has(OID.quote) || ext.has(OID.attestation), `no RA-TLS quote/attestation extension in ${[...ext.keys()]}`);
  if (ext.has(OID.quote)) {
    assert.equal(ext.get(OID.quote).critical, false);
    const qb = unwrapOctet(ext.get(OID.quote).value);
    const q = parseQuote(qb);
    verifyQuote(qb, q, { rootPem });
    assert.equal(q.reportData.toString('hex'), want.toString('hex'), 'report_data = sha512("ratls-cert:" SPKI)');
    assert.ok(ext.has(OID.eventLog), 'event log extension next to the quote');
    const ev = checkEventLog(unwrapOctet(ext.get(OID.eventLog).value).toString());
    assert.deepEqual(replay(ev), q.rtmrs, 'certificate event log replays to the quote RTMRs');
  } else {
    assert.ok(unwrapOctet(ext.get(OID.attestation).value).includes(want), 'attestation holds the report_data');
  }
  const plain = checkKeyAndChain(await client.getTlsKey({ subject: 'plain' }), { subject: 'plain' });
  assert.ok(!certExtensions(plain.leaf).has(OID.quote), 'no quote unless usageRaTls');
});

test('getTlsKey(notBefore, notAfter, withAppInfo)', async () => {
  const nb = Math.floor(Date.now() / 1000) - 3600, na = nb + 7 * 86400;
  const r = await client.getTlsKey({ subject: 'validity', notBefore: nb, notAfter: na, withAppInfo: true });
  const { leaf } = checkKeyAndChain(r, { subject: 'validity' });
  assert.equal(Date.parse(leaf.validFrom) / 1000, nb, 'notBefore');
  assert.equal(Date.parse(leaf.validTo) / 1000, na, 'notAfter');
  const ext = certExtensions(leaf);
  assert.ok(ext.has(OID.appInfo) || ext.has(OID.appId), `app info extension missing: ${[...ext.keys()]}`);
});

test('TappdClient.deriveKey: deterministic per path, chain to the same app CA', async () => {
  const a1 = await tappd.deriveKey('/legacy/a', 'legacy.example', ['x.legacy.example']);
  const a2 = await tappd.deriveKey('/legacy/a', 'legacy.example');
  const b = await tappd.deriveKey('/legacy/b');
  assert.equal(a1.key, a2.key);
  assert.notEqual(a1.key, b.key);
  const { ca } = checkKeyAndChain(a1, { subject: 'legacy.example', altNames: ['x.legacy.example'] });
  checkKeyAndChain(b, { subject: '/legacy/b' });
  if (appCaFp) assert.equal(ca.fingerprint256, appCaFp, 'DeriveKey and GetTlsKey chain to one app CA');
  assert.equal(a1.__name__, 'GetTlsKeyResponse');
});

// ------------------------------------------------------------------ quotes

test('getQuote: report_data is the data zero-padded, not hashed', async () => {
  for (const data of ['hello dstack', Buffer.from([1, 2, 3]), crypto.randomBytes(64), '']) {
    const raw = Buffer.from(data);
    const r = await client.getQuote(data);
    checkQuoteReply(r, pad64(raw), { rootPem });
    assert.equal(r.report_data, pad64(raw).toString('hex'), 'report_data field');
    assert.equal(typeof r.vm_config, 'string');
  }
  await assert.rejects(client.getQuote(Buffer.alloc(65)), /too large/);
});

test('DstackClient.tdxQuote(raw) goes through GetQuote', async () => {
  const r = await client.tdxQuote('legacy raw', 'raw');
  checkQuoteReply(r, pad64(Buffer.from('legacy raw')), { rootPem });
});

test('attest(): attestation holds the report_data', async () => {
  const data = crypto.randomBytes(48);
  const r = await client.attest(data);
  const a = hexToBuf(r.attestation, 'attestation');
  assert.ok(a.length > 632, 'attestation too short');
  assert.ok(a.includes(pad64(data)), 'attestation must contain the padded report_data');
});

for (const alg of [undefined, 'sha256', 'sha384', 'sha512', 'sha3-256', 'sha3-384', 'sha3-512',
  'keccak256', 'keccak384', 'keccak512']) {
  test(`TappdClient.tdxQuote(${alg ?? 'default'}): report_data = ${alg ?? 'sha512'}("app-data:" data)`, async () => {
    const data = crypto.randomBytes(33);
    const r = await tappd.tdxQuote(data, alg);
    checkQuoteReply(r, tdxQuoteReportData(alg, data), { rootPem });
    assert.equal(r.hash_algorithm, alg ?? 'sha512');
  });
}

test('TappdClient.tdxQuote(raw)', async () => {
  const d = crypto.randomBytes(64);
  checkQuoteReply(await tappd.tdxQuote(d, 'raw'), d, { rootPem });
  const s = Buffer.from('short');
  checkQuoteReply(await tappd.tdxQuote(s, 'raw'), Buffer.concat([Buffer.alloc(59), s]), { rootPem });
  await assert.rejects(tappd.tdxQuote('x', 'sha1'));
});

// ------------------------------------------------------------------ Info

test('info(): every field filled and consistent with quotes and the compose file', async () => {
  const info = await client.info();
  for (const k of ['app_id', 'instance_id', 'device_id', 'mr_aggregated', 'os_image_hash', 'compose_hash'])
    assert.match(info[k], /^[0-9a-f]+$/, `${k} must be non-empty hex without 0x (got ${JSON.stringify(info[k])})`);
  assert.equal(info.app_id.length, 40, 'app_id is 20 bytes');
  assert.equal(info.compose_hash.length, 64, 'compose_hash is 32 bytes');
  for (const k of ['app_name', 'key_provider_info', 'vm_config'])
    assert.ok(typeof info[k] === 'string' && info[k].length > 0, `${k} must be filled`);
  JSON.parse(info.vm_config);
  assert.ok(pemCerts(info.app_cert).length >= 1, 'app_cert holds PEM certificates');
  if (appCa)
    assert.ok(pemCerts(info.app_cert).some((c) => c.fingerprint256 === appCaFp || c.verify(appCa.publicKey)),
      'app_cert must contain or be issued by the app CA');
  const tcb = info.tcb_info;
  for (const k of ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3']) assert.match(tcb[k], /^[0-9a-f]{96}$/, `tcb_info.${k}`);
  for (const k of ['mr_aggregated', 'os_image_hash', 'compose_hash', 'device_id'])
    assert.equal(tcb[k], info[k], `tcb_info.${k} = ${k}`);
  assert.equal(typeof tcb.app_compose, 'string');
  assert.equal(hex(sha256(Buffer.from(tcb.app_compose))), info.compose_hash, 'compose_hash = sha256(app_compose)');
  const compose = JSON.parse(tcb.app_compose);
  if (info.app_name) assert.equal(compose.name ?? info.app_name, info.app_name, 'app_name from the compose file');
  if (JSON.stringify(compose) === tcb.app_compose)
    assert.equal(getComposeHash(compose), info.compose_hash, 'SDK getComposeHash agrees');
  assert.deepEqual(replay(tcb.event_log), [tcb.rtmr0, tcb.rtmr1, tcb.rtmr2, tcb.rtmr3], 'tcb_info.event_log replays to its RTMRs');
  const q = checkQuoteReply(await client.getQuote('info'), pad64(Buffer.from('info')), { rootPem });
  assert.equal(tcb.mrtd, q.mrtd, 'mrtd');
  assert.deepEqual([tcb.rtmr0, tcb.rtmr1, tcb.rtmr2, tcb.rtmr3], q.rtmrs, 'RTMRs of Info = of a fresh quote');
  const ch = tcb.event_log.find((e) => e.imr === 3 && e.event === 'compose-hash');
  if (ch) assert.equal(ch.event_payload, info.compose_hash, 'compose-hash event = compose_hash');
  const aid = tcb.event_log.find((e) => e.imr === 3 && e.event === 'app-id');
  if (aid) assert.equal(aid.event_payload, info.app_id, 'app-id event = app_id');
});

// ------------------------------------------------------------------ Sign / Verify

test('sign()/verify(): ed25519, secp256k1, secp256k1_prehashed', async () => {
  const data = Buffer.from('dstack sdk sign test');
  const digest = Buffer.from(sha256(data));
  for (const alg of ['ed25519', 'secp256k1', 'secp256k1_prehashed']) {
    const input = alg === 'secp256k1_prehashed' ? digest : data;
    const s = await client.sign(alg, input);
    const kr = await client.getKey('vms', 'signing', alg === 'ed25519' ? 'ed25519' : 'secp256k1');
    const pub = alg === 'ed25519' ? ed25519Pub(Buffer.from(kr.key)) : k256Pub(kr.key);
    assert.equal(hex(s.public_key), hex(pub), `${alg}: public_key = key of GetKey("vms","signing")`);
    assert.equal(s.signature.length, 64, `${alg}: 64-byte signature`);
    const ok = alg === 'ed25519' ? ed25519Verify(Buffer.from(s.signature), input, Buffer.from(s.public_key))
      : k256Verify(s.signature, alg === 'secp256k1' ? digest : input, s.public_key);
    assert.ok(ok, `${alg}: signature verifies`);
    assert.equal(s.signature_chain.length, 3, `${alg}: signature_chain has 3 entries`);
    assert.equal(hex(s.signature_chain[0]), hex(s.signature));
    assert.deepEqual(s.signature_chain.slice(1).map(hex), kr.signature_chain.map(hex), `${alg}: chain continues with GetKey's`);
    assert.equal((await client.verify(alg, input, s.signature, s.public_key)).valid, true, `${alg}: verify() true`);
    const bad = Buffer.from(input); bad[0] ^= 1;
    assert.equal((await client.verify(alg, bad, s.signature, s.public_key)).valid, false, `${alg}: verify() false on other data`);
  }
  await assert.rejects(client.sign('rsa', data), 'unsupported algorithm');
});

// ------------------------------------------------------------------ EmitEvent (last: it moves RTMR3)

test('emitEvent(): the event is extended into RTMR3 and shows in the event log', async () => {
  const before0 = checkQuoteReply(await client.getQuote('e0'), pad64(Buffer.from('e0')), { rootPem });
  const payload = crypto.randomBytes(20);
  await client.emitEvent('sdk-test-event', payload);
  const r = await client.getQuote('e1');
  const q = checkQuoteReply(r, pad64(Buffer.from('e1')), { rootPem });
  assert.deepEqual(q.rtmrs.slice(0, 3), before0.rtmrs.slice(0, 3), 'RTMR0-2 unchanged');
  assert.notEqual(q.rtmrs[3], before0.rtmrs[3], 'RTMR3 extended');
  const ev = JSON.parse(r.event_log);
  const e = ev.at(-1);
  assert.equal(e.imr, 3);
  assert.equal(e.event, 'sdk-test-event');
  assert.equal(e.event_payload, payload.toString('hex'));
  assert.equal(e.event_type, RUNTIME_EVENT);
  const ext = crypto.createHash('sha384').update(Buffer.from(before0.rtmrs[3], 'hex')).update(Buffer.from(e.digest, 'hex')).digest('hex');
  assert.equal(q.rtmrs[3], ext, 'RTMR3 = SHA-384(old RTMR3 || digest)');
  const info = await client.info();
  assert.equal(info.tcb_info.rtmr3, q.rtmrs[3], 'Info follows');
});

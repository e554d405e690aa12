// Plain curl --unix-socket, as upstream's README and sdk/curl/*.md show it, plus the HTTP
// details the SDKs' hand-written socket clients rely on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { startTappd, findFile } from './lib/tappd.mjs';
import { curlI, rawRequest, describe } from './lib/http.mjs';
import {
  hexToBuf, pad64, parseQuote, verifyQuote, replay, checkEventLog, pemCerts, certExtensions,
  unwrapOctet, OID, spkiDer, tdxQuoteReportData, sha512, commonName,
} from './lib/attest.mjs';

let td, rootPem;
before(async () => {
  td = await startTappd();
  const r = findFile(td.dir, 'root_ca.pem');
  rootPem = r ? fs.readFileSync(r, 'utf8') : null;
});
after(async () => { await td?.stop(); });

// curl -i; asserts a 200 JSON reply with a Content-Length (the 0.1.x SDKs cannot read chunked
// replies) and returns the parsed body.
async function curlJson(sock, args, { status = 200 } = {}) {
  const r = await curlI(['--unix-socket', sock, ...args]);
  const what = `${r.cmd}\n=> ${r.head}\n${r.body.slice(0, 800)}\n${r.stderr}`;
  assert.equal(r.code, 0, `curl failed: ${what}`);
  assert.equal(r.status, status, what);
  assert.ok(r.headers['content-length'] !== undefined, `no Content-Length: ${what}`);
  assert.ok(!/chunked/i.test(r.headers['transfer-encoding'] || ''), `chunked reply: ${what}`);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body), `Content-Length mismatch: ${what}`);
  assert.match(r.headers['content-type'] || '', /^application\/json/, `Content-Type: ${what}`);
  try {
    return { json: JSON.parse(r.body), what };
  } catch (e) {
    throw new Error(`reply is not JSON: ${what}`);
  }
}

function checkQuoteJson(j, expected, what) {
  const buf = hexToBuf(j.quote, 'quote');
  const q = parseQuote(buf);
  verifyQuote(buf, q, { rootPem });
  assert.equal(q.reportData.toString('hex'), expected.toString('hex'), `report_data: ${what}`);
  assert.deepEqual(replay(checkEventLog(j.event_log)), q.rtmrs, `event log replay: ${what}`);
  return q;
}

// ------------------------------------------------------------------ tappd.sock

test('curl Tappd.TdxQuote?json with a 0x report_data (seed README example)', async () => {
  const { json, what } = await curlJson(td.tappdSock,
    ['-d', '{"report_data":"0x1234deadbeef"}', 'http://localhost/prpc/Tappd.TdxQuote?json']);
  checkQuoteJson(json, tdxQuoteReportData('sha512', Buffer.from('1234deadbeef', 'hex')), what);
  assert.equal(json.hash_algorithm, 'sha512');
  assert.equal(json.prefix, 'app-data');
});

test('curl Tappd.TdxQuote with hash_algorithm and a custom prefix (sdk/curl/api-tappd.md)', async () => {
  const { json, what } = await curlJson(td.tappdSock, ['-X', 'POST', 'http://localhost/prpc/Tappd.TdxQuote',
    '-H', 'Content-Type: application/json', '-d',
    '{"report_data":"1234deadbeaf","hash_algorithm":"sha256","prefix":"app-data:"}']);
  checkQuoteJson(json, tdxQuoteReportData('sha256', Buffer.from('1234deadbeaf', 'hex'), 'app-data:'), what);
  assert.equal(json.hash_algorithm, 'sha256');
});

test('curl Tappd.DeriveKey with RA-TLS usage (sdk/curl/api-tappd.md)', async () => {
  const body = JSON.stringify({ path: 'my/key/path', subject: 'example.com', alt_names: ['www.example.com', 'api.example.com'],
    usage_ra_tls: true, usage_server_auth: true, usage_client_auth: false, random_seed: false });
  const { json, what } = await curlJson(td.tappdSock, ['-X', 'POST', 'http://localhost/prpc/Tappd.DeriveKey',
    '-H', 'Content-Type: application/json', '-d', body]);
  assert.match(json.key, /^-----BEGIN PRIVATE KEY-----/, what);
  const chain = json.certificate_chain.map((p) => pemCerts(p)[0]);
  assert.ok(chain.length >= 2, what);
  assert.equal(commonName(chain[0]), 'example.com');
  assert.ok(chain[0].verify(chain.at(-1).publicKey) || chain[0].verify(chain[1].publicKey), 'leaf signed');
  const ext = certExtensions(chain[0]);
  assert.ok(ext.has(OID.quote), `usage_ra_tls: quote extension missing (${[...ext.keys()]})`);
  const qb = unwrapOctet(ext.get(OID.quote).value);
  const q = parseQuote(qb);
  verifyQuote(qb, q, { rootPem });
  assert.equal(q.reportData.toString('hex'),
    pad64(Buffer.from(sha512(Buffer.concat([Buffer.from('ratls-cert:'), spkiDer(chain[0])])))).toString('hex'),
    'RA-TLS report_data = sha512("ratls-cert:" SPKI)');
  // deterministic: same path, same key, also without random_seed given
  const again = await curlJson(td.tappdSock, ['-H', 'Content-Type: application/json',
    '-d', '{"path":"my/key/path","subject":"example.com"}', 'http://localhost/prpc/Tappd.DeriveKey']);
  assert.equal(again.json.key, json.key, 'same path, same key');
  const rnd = await curlJson(td.tappdSock, ['-H', 'Content-Type: application/json',
    '-d', '{"path":"my/key/path","subject":"example.com","random_seed":true}', 'http://localhost/prpc/Tappd.DeriveKey']);
  assert.notEqual(rnd.json.key, json.key, 'random_seed gives another key');
});

test('curl Tappd.DeriveK256Key equals GetKey on dstack.sock', async () => {
  const body = '{"path":"my/key/path","purpose":"signing"}';
  const a = await curlJson(td.tappdSock, ['-X', 'POST', 'http://localhost/prpc/Tappd.DeriveK256Key',
    '-H', 'Content-Type: application/json', '-d', body]);
  assert.match(a.json.k256_key, /^[0-9a-f]{64}$/, a.what);
  assert.equal(a.json.k256_signature_chain.length, 2, a.what);
  const b = await curlJson(td.dstackSock, ['-X', 'POST', 'http://dstack/GetKey', '-H', 'Content-Type: application/json', '-d', body]);
  assert.equal(b.json.key, a.json.k256_key, `${a.what}\n${b.what}`);
  assert.deepEqual(b.json.signature_chain, a.json.k256_signature_chain);
});

test('curl Tappd.RawQuote by POST and by GET query', async () => {
  const rd = crypto.randomBytes(64).toString('hex');
  const a = await curlJson(td.tappdSock, ['-X', 'POST', 'http://localhost/prpc/Tappd.RawQuote',
    '-H', 'Content-Type: application/json', '-d', JSON.stringify({ report_data: rd })]);
  checkQuoteJson(a.json, Buffer.from(rd, 'hex'), a.what);
  const b = await curlJson(td.tappdSock, [`http://localhost/prpc/Tappd.RawQuote?report_data=${rd}`]);
  checkQuoteJson(b.json, Buffer.from(rd, 'hex'), b.what);
});

test('curl Tappd.Info (GET), also as /prpc/Info', async () => {
  const a = await curlJson(td.tappdSock, ['http://localhost/prpc/Tappd.Info']);
  assert.match(a.json.app_id, /^[0-9a-f]{40}$/, a.what);
  assert.ok(pemCerts(a.json.app_cert).length >= 1, a.what);
  JSON.parse(a.json.tcb_info);
  const b = await curlJson(td.tappdSock, ['http://localhost/prpc/Info']);
  assert.equal(b.json.app_id, a.json.app_id);
});

// ------------------------------------------------------------------ dstack.sock

test('curl GetTlsKey (sdk/curl/api.md)', async () => {
  const { json, what } = await curlJson(td.dstackSock, ['-X', 'POST', 'http://dstack/GetTlsKey',
    '-H', 'Content-Type: application/json', '-d',
    '{"subject":"example.com","alt_names":["www.example.com","api.example.com"],"usage_ra_tls":true,"usage_server_auth":true,"usage_client_auth":false}']);
  const leaf = pemCerts(json.certificate_chain[0])[0];
  assert.equal(commonName(leaf), 'example.com', what);
  assert.ok(leaf.subjectAltName.includes('DNS:api.example.com'), what);
  assert.ok(certExtensions(leaf).has(OID.quote) || certExtensions(leaf).has(OID.attestation), what);
});

test('curl GetKey by POST and by GET query agree', async () => {
  const a = await curlJson(td.dstackSock, ['-X', 'POST', 'http://dstack/GetKey', '-H', 'Content-Type: application/json',
    '-d', '{"path":"my/key/path","purpose":"signing"}']);
  assert.match(a.json.key, /^[0-9a-f]{64}$/, a.what);
  const b = await curlJson(td.dstackSock, ['http://dstack/GetKey?path=my/key/path&purpose=signing']);
  assert.deepEqual(b.json, a.json, `${a.what}\n${b.what}`);
  const c = await curlJson(td.dstackSock, ['http://dstack/GetKey?path=my/other&purpose=signing']);
  assert.notEqual(c.json.key, a.json.key);
});

test('curl GetQuote by POST and by GET query', async () => {
  const a = await curlJson(td.dstackSock, ['-X', 'POST', 'http://dstack/GetQuote', '-H', 'Content-Type: application/json',
    '-d', '{"report_data":"1234deadbeaf"}']);
  checkQuoteJson(a.json, pad64(Buffer.from('1234deadbeaf', 'hex')), a.what);
  assert.equal(a.json.report_data, pad64(Buffer.from('1234deadbeaf', 'hex')).toString('hex'), a.what);
  const z = '00'.repeat(64);
  const b = await curlJson(td.dstackSock, [`http://dstack/GetQuote?report_data=${z}`]);
  checkQuoteJson(b.json, Buffer.alloc(64), b.what);
});

test('curl Info and Version (GET)', async () => {
  const a = await curlJson(td.dstackSock, ['http://dstack/Info']);
  for (const k of ['app_id', 'instance_id', 'app_cert', 'tcb_info', 'compose_hash', 'device_id'])
    assert.ok(a.json[k], `${k} filled: ${a.what}`);
  const v = await curlJson(td.dstackSock, ['http://dstack/Version']);
  assert.ok(v.json.version, v.what);
});

test('curl EmitEvent answers 200', async () => {
  const r = await curlI(['--unix-socket', td.dstackSock, '-X', 'POST', 'http://dstack/EmitEvent',
    '-H', 'Content-Type: application/json', '-d', '{"event":"custom-event","payload":"deadbeef"}']);
  assert.equal(r.status, 200, `${r.cmd}\n=> ${r.head}\n${r.body}`);
  const q = await curlJson(td.dstackSock, ['http://dstack/GetQuote?report_data=01']);
  const ev = JSON.parse(q.json.event_log);
  assert.ok(ev.some((e) => e.imr === 3 && e.event === 'custom-event' && e.event_payload === 'deadbeef'), 'event in the log');
});

test('one keep-alive connection serves several requests', async () => {
  const r = await curlI(['--unix-socket', td.dstackSock, '-w', '\\n%{num_connects}\\n',
    'http://dstack/Version', 'http://dstack/Version', 'http://dstack/Version']);
  assert.equal(r.code, 0, r.stderr);
  const connects = r.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
  assert.deepEqual(connects, [1, 0, 0], `curl should reuse the connection: ${r.stdout}`);
});

// ------------------------------------------------------------------ errors

test('errors: unknown method 404, bad JSON 400, oversized report_data 400, all {"error"} JSON', async () => {
  const cases = [
    [td.dstackSock, 'POST', '/NoSuchMethod', '{}', 404],
    [td.tappdSock, 'POST', '/prpc/Tappd.NoSuchMethod?json', '{}', 404],
    [td.dstackSock, 'POST', '/GetQuote', '{"report_data":', 400],
    [td.dstackSock, 'POST', '/GetQuote', JSON.stringify({ report_data: '00'.repeat(65) }), 400],
    [td.tappdSock, 'POST', '/prpc/Tappd.TdxQuote', JSON.stringify({ report_data: '00', hash_algorithm: 'raw' }), 400],
    [td.tappdSock, 'POST', '/prpc/Tappd.TdxQuote', JSON.stringify({ report_data: '00', hash_algorithm: 'md5' }), 400],
  ];
  for (const [sock, m, p, body, status] of cases) {
    const res = await rawRequest(sock, m, p, { body, headers: { 'Content-Type': 'application/json' } });
    const what = describe(`${m} ${p} ${body}`, res);
    assert.equal(res.status, status, what);
    assert.ok(res.headers['content-length'] !== undefined, `no Content-Length: ${what}`);
    assert.equal(typeof JSON.parse(res.body.toString()).error, 'string', what);
  }
});

// ------------------------------------------------------------------ external port

test('external port: Worker.* served, Tappd.* and DstackGuest methods not', async (t) => {
  if (!td.externalPort) {
    assert.fail(`no external host:port in tappd's listening lines:\n${td.log()}`);
  }
  const base = `http://127.0.0.1:${td.externalPort}`;
  const v = await curlI([`${base}/prpc/Worker.Version`]);
  assert.equal(v.status, 200, `${v.cmd}\n${v.head}\n${v.body}`);
  assert.ok(JSON.parse(v.body).version);
  const i = await curlI([`${base}/prpc/Worker.Info`]);
  assert.equal(i.status, 200, `${i.cmd}\n${i.head}\n${i.body}`);
  assert.match(JSON.parse(i.body).app_id, /^[0-9a-f]{40}$/);
  for (const p of ['/prpc/Tappd.DeriveKey?json', '/GetKey', '/prpc/DeriveKey?json']) {
    const r = await curlI(['-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{"path":"x"}', `${base}${p}`]);
    assert.ok(r.status >= 400 && r.status < 500, `key method ${p} must not be served on the external port: ${r.cmd}\n${r.head}\n${r.body.slice(0, 300)}`);
    assert.ok(!/PRIVATE KEY|"key"/.test(r.body), `key material on the external port: ${r.body.slice(0, 200)}`);
  }
});

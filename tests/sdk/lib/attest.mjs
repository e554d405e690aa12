// What the tests check the replies against: a TDX quote parser and verifier (quote signature,
// QE report binding, PCK chain), report_data rules, RTMR replay, small DER and key helpers.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2';
import { sha3_256, sha3_384, sha3_512, keccak_256, keccak_384, keccak_512 } from '@noble/hashes/sha3';
import { secp256k1 } from '@noble/curves/secp256k1';

// ---------- hex ----------

// Lower/upper hex without 0x, even length; throws otherwise (what Buffer.from(x,'hex') in the
// SDKs silently truncates).
export function hexToBuf(s, what = 'hex') {
  assert.equal(typeof s, 'string', `${what}: expected a hex string, got ${typeof s}`);
  assert.ok(!s.startsWith('0x'), `${what}: hex must not carry a 0x prefix (newest prpc): ${s.slice(0, 20)}`);
  assert.ok(s.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(s), `${what}: not hex: ${s.slice(0, 40)}`);
  return Buffer.from(s, 'hex');
}

export const pad64 = (b) => { assert.ok(b.length <= 64); return Buffer.concat([b, Buffer.alloc(64 - b.length)]); };

// ---------- report_data rules (upstream dstack) ----------

export const HASHES = {
  sha256, sha384, sha512,
  'sha3-256': sha3_256, 'sha3-384': sha3_384, 'sha3-512': sha3_512,
  keccak256: keccak_256, keccak384: keccak_384, keccak512: keccak_512,
};

// report_data of Tappd.TdxQuote: H(prefix ":" data) zero-padded; raw = data itself (64 bytes).
export function tdxQuoteReportData(alg, data, prefix = 'app-data') {
  if (alg === 'raw') { assert.equal(data.length, 64); return Buffer.from(data); }
  const h = HASHES[alg || 'sha512'];
  assert.ok(h, `unknown hash ${alg}`);
  return pad64(Buffer.from(h(Buffer.concat([Buffer.from(prefix), Buffer.from(':'), data]))));
}

// ---------- quote ----------

const u16 = (b, o) => b.readUInt16LE(o);
const u32 = (b, o) => b.readUInt32LE(o);

// Parses an Intel TDX quote v4 (TD10 body) or v5 (TD10/TD15 body).
export function parseQuote(buf) {
  assert.ok(buf.length >= 48 + 584 + 4, `quote too short: ${buf.length} bytes`);
  const q = {
    version: u16(buf, 0), attKeyType: u16(buf, 2), teeType: u32(buf, 4),
    qeVendorId: buf.subarray(12, 28).toString('hex'),
  };
  assert.ok(q.version === 4 || q.version === 5, `quote version ${q.version}`);
  assert.equal(q.attKeyType, 2, 'attestation key type must be 2 (ECDSA P-256)');
  assert.equal(q.teeType, 0x81, 'tee type must be 0x81 (TDX)');
  let off = 48, bodyLen = 584;
  if (q.version === 5) {
    q.bodyType = u16(buf, 48);
    bodyLen = u32(buf, 50);
    off = 54;
    assert.ok((q.bodyType === 2 && bodyLen === 584) || (q.bodyType === 3 && bodyLen === 648), `v5 body ${q.bodyType}/${bodyLen}`);
  }
  const body = buf.subarray(off, off + bodyLen);
  const f = (o, n) => body.subarray(o, o + n);
  q.teeTcbSvn = f(0, 16).toString('hex');
  q.mrSeam = f(16, 48).toString('hex');
  q.tdAttributes = f(120, 8).toString('hex');
  q.xfam = f(128, 8).toString('hex');
  q.mrtd = f(136, 48).toString('hex');
  q.mrConfigId = f(184, 48).toString('hex');
  q.rtmrs = [0, 1, 2, 3].map((i) => f(328 + 48 * i, 48).toString('hex'));
  q.reportData = Buffer.from(f(520, 64));
  q.signedLen = off + bodyLen;
  const sigLen = u32(buf, q.signedLen);
  const sig = buf.subarray(q.signedLen + 4, q.signedLen + 4 + sigLen);
  assert.equal(sig.length, sigLen, 'signature data truncated');
  assert.ok(sigLen >= 128 + 6, 'signature data too short');
  q.totalLen = q.signedLen + 4 + sigLen;
  q.signature = sig.subarray(0, 64);
  q.attestKey = sig.subarray(64, 128);
  // certification data: type 6 (QE report) holding type 5 (PCK chain)
  let cd = sig.subarray(128);
  const cdType = u16(cd, 0), cdLen = u32(cd, 2);
  assert.equal(cdType, 6, `certification data type ${cdType}`);
  cd = cd.subarray(6, 6 + cdLen);
  assert.equal(cd.length, cdLen, 'certification data truncated');
  q.qeReport = cd.subarray(0, 384);
  q.qeReportSig = cd.subarray(384, 448);
  const authLen = u16(cd, 448);
  q.qeAuth = cd.subarray(450, 450 + authLen);
  const inner = cd.subarray(450 + authLen);
  assert.equal(u16(inner, 0), 5, 'inner certification data must be type 5 (PCK chain)');
  const pemLen = u32(inner, 2);
  q.pckChainPem = inner.subarray(6, 6 + pemLen).toString('latin1');
  return q;
}

function p256Pub(xy) {
  const jwk = { kty: 'EC', crv: 'P-256', x: Buffer.from(xy.subarray(0, 32)).toString('base64url'),
    y: Buffer.from(xy.subarray(32, 64)).toString('base64url') };
  return crypto.createPublicKey({ key: jwk, format: 'jwk' });
}

// Signature over header+body by the attestation key, QE report bound to that key and signed by
// the PCK leaf, PCK chain linked (and anchored at rootPem when given).
export function verifyQuote(buf, q, { rootPem = null } = {}) {
  const ok = crypto.verify('sha256', buf.subarray(0, q.signedLen),
    { key: p256Pub(q.attestKey), dsaEncoding: 'ieee-p1363' }, q.signature);
  assert.ok(ok, 'quote signature does not verify with its attestation key');
  const bind = crypto.createHash('sha256').update(q.attestKey).update(q.qeAuth).digest();
  assert.deepEqual(Buffer.from(q.qeReport.subarray(320, 352)), bind, 'QE report_data does not bind the attestation key');
  const chain = pemCerts(q.pckChainPem);
  assert.ok(chain.length >= 2, 'PCK chain must hold at least leaf and CA');
  const okQe = crypto.verify('sha256', q.qeReport, { key: chain[0].publicKey, dsaEncoding: 'ieee-p1363' }, q.qeReportSig);
  assert.ok(okQe, 'QE report signature does not verify with the PCK leaf');
  for (let i = 0; i + 1 < chain.length; i++)
    assert.ok(chain[i].verify(chain[i + 1].publicKey), `PCK chain link ${i} broken`);
  if (rootPem) {
    const root = new crypto.X509Certificate(rootPem);
    assert.equal(chain[chain.length - 1].fingerprint256, root.fingerprint256, 'PCK chain does not end at the platform root');
  }
}

// ---------- event log ----------

export function replay(events) {
  const out = [];
  for (let i = 0; i < 4; i++) {
    let mr = Buffer.alloc(48);
    for (const e of events.filter((x) => x.imr === i)) {
      let d = Buffer.from(e.digest, 'hex');
      if (d.length < 48) d = Buffer.concat([d, Buffer.alloc(48 - d.length)]);
      mr = crypto.createHash('sha384').update(mr).update(d).digest();
    }
    out.push(mr.toString('hex'));
  }
  return out;
}

export const RUNTIME_EVENT = 0x08000001;

// Digest V1 of a runtime event (upstream dstack).
export function runtimeDigestV1(name, payload) {
  const t = Buffer.alloc(4); t.writeUInt32LE(RUNTIME_EVENT);
  return crypto.createHash('sha384').update(t).update(':').update(name).update(':').update(payload).digest('hex');
}

// Checks the shape of an event log (JSON array text) and, for runtime events with a payload,
// that the digest is the V1 or V2 one. Returns the parsed array.
export function checkEventLog(text) {
  const ev = JSON.parse(text);
  assert.ok(Array.isArray(ev), 'event_log must be a JSON array');
  assert.ok(ev.length > 0, 'event_log must not be empty');
  for (const e of ev) {
    assert.ok(Number.isInteger(e.imr) && e.imr >= 0 && e.imr < 4, `bad imr in ${JSON.stringify(e)}`);
    assert.ok(Number.isInteger(e.event_type), `bad event_type in ${JSON.stringify(e)}`);
    assert.match(e.digest, /^[0-9a-f]{96}$/, `digest must be 48 bytes hex: ${JSON.stringify(e)}`);
    assert.equal(typeof e.event, 'string');
    assert.equal(typeof e.event_payload, 'string');
    if (e.imr === 3 && e.event_type === RUNTIME_EVENT && (e.version ?? 1) === 1) {
      assert.equal(e.digest, runtimeDigestV1(e.event, Buffer.from(e.event_payload, 'hex')),
        `runtime event digest is not the V1 digest: ${JSON.stringify(e)}`);
    }
  }
  return ev;
}

// ---------- certificates ----------

export function pemCerts(text) {
  const m = String(text).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) || [];
  return m.map((p) => new crypto.X509Certificate(p));
}

function tlv(b, o) {
  const tag = b[o];
  let len = b[o + 1], hl = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    assert.ok(n >= 1 && n <= 4, 'DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[o + 2 + i];
    hl = 2 + n;
  }
  assert.ok(o + hl + len <= b.length, 'DER truncated');
  return { tag, start: o + hl, end: o + hl + len };
}
function children(b, t) {
  const out = [];
  for (let o = t.start; o < t.end;) { const c = tlv(b, o); out.push(c); o = c.end; }
  return out;
}
function oidStr(b) {
  const parts = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (const x of b.subarray(1)) { v = v * 128 + (x & 0x7f); if (!(x & 0x80)) { parts.push(v); v = 0; } }
  return parts.join('.');
}

// Map OID -> { critical, value (extnValue content) } for an X509Certificate.
export function certExtensions(cert) {
  const der = cert.raw;
  const tbs = children(der, tlv(der, 0))[0];
  const out = new Map();
  const ext3 = children(der, tbs).find((c) => c.tag === 0xa3);
  if (!ext3) return out;
  for (const e of children(der, children(der, ext3)[0])) {
    const p = children(der, e);
    const oid = oidStr(der.subarray(p[0].start, p[0].end));
    const critical = p.length === 3 && der[p[1].start] === 0xff;
    const v = p[p.length - 1];
    out.set(oid, { critical, value: der.subarray(v.start, v.end) });
  }
  return out;
}

// RA-TLS extensions hold a DER OCTET STRING inside extnValue (upstream dstack).
export function unwrapOctet(v) {
  const t = tlv(v, 0);
  assert.equal(t.tag, 0x04, 'RA-TLS extension content must be a DER OCTET STRING');
  assert.equal(t.end, v.length, 'trailing bytes after the OCTET STRING');
  return Buffer.from(v.subarray(t.start, t.end));
}

export const OID = {
  quote: '1.3.6.1.4.1.62397.1.1',
  eventLog: '1.3.6.1.4.1.62397.1.2',
  appId: '1.3.6.1.4.1.62397.1.3',
  usage: '1.3.6.1.4.1.62397.1.4',
  attestation: '1.3.6.1.4.1.62397.1.8',
  appInfo: '1.3.6.1.4.1.62397.1.9',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

export const spkiDer = (cert) => cert.publicKey.export({ type: 'spki', format: 'der' });

export function commonName(cert) {
  const m = cert.subject.match(/(?:^|\n)CN=([^\n]*)/);
  return m ? m[1] : null;
}

// ---------- k256 / ed25519 ----------

export const keccak = (data) => Buffer.from(keccak_256(Buffer.from(data)));

// Compressed public key that made sig65 (r||s||v, v in {0,1}) over the 32-byte hash.
export function recoverK256(hash, sig65) {
  assert.equal(sig65.length, 65, 'recoverable signature must be 65 bytes');
  const v = sig65[64];
  assert.ok(v === 0 || v === 1, `recovery id must be 0 or 1, got ${v}`);
  const s = secp256k1.Signature.fromCompact(Buffer.from(sig65.subarray(0, 64)).toString('hex')).addRecoveryBit(v);
  return Buffer.from(s.recoverPublicKey(hash).toRawBytes(true));
}

export const k256Pub = (priv32, compressed = true) => Buffer.from(secp256k1.getPublicKey(priv32, compressed));

export function k256Verify(sig64, msgHash32, pub) {
  return secp256k1.verify(Buffer.from(sig64), Buffer.from(msgHash32), Buffer.from(pub), { lowS: false });
}

export function ed25519Pub(seed32) {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed32]);
  const k = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  return crypto.createPublicKey(k).export({ type: 'spki', format: 'der' }).subarray(12);
}

export function ed25519Verify(sig, data, pub32) {
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub32]);
  return crypto.verify(null, data, crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig);
}

// HKDF-SHA256, salt "RATLS", info = path (upstream dstack).
export const kdf = (ikm, info) =>
  Buffer.from(crypto.hkdfSync('sha256', ikm, Buffer.from('RATLS'), Buffer.from(info), 32));

export { sha256, sha512 };

// Checks shared by the test files: certificate chains and quotes as the SDKs hand them back.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { hexToBuf, parseQuote, verifyQuote, checkEventLog, replay, pemCerts, commonName, certExtensions } from './attest.mjs';

// key + certificate_chain of DeriveKey / GetTlsKey: the key is a PKCS#8 P-256 key, the leaf
// carries its public key, the CN and SANs asked for, and every link verifies up to the last
// certificate (the app CA), which is a CA. Returns { key, chain, leaf, ca }.
export function checkKeyAndChain(res, { subject, altNames = [] } = {}) {
  assert.match(res.key, /^-----BEGIN PRIVATE KEY-----\n/, 'key must be PKCS#8 PEM');
  const key = crypto.createPrivateKey(res.key);
  assert.equal(key.asymmetricKeyType, 'ec');
  assert.equal(key.asymmetricKeyDetails.namedCurve, 'prime256v1', 'key must be P-256');
  assert.ok(Array.isArray(res.certificate_chain) && res.certificate_chain.length >= 2,
    'certificate_chain must hold leaf and app CA');
  const chain = res.certificate_chain.map((p) => {
    const c = pemCerts(p);
    assert.equal(c.length, 1, 'each certificate_chain entry is one PEM certificate');
    return c[0];
  });
  const leaf = chain[0], ca = chain[chain.length - 1];
  const pubFromKey = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
  assert.deepEqual(leaf.publicKey.export({ type: 'spki', format: 'der' }), pubFromKey,
    'leaf certificate must carry the returned key');
  for (let i = 0; i + 1 < chain.length; i++) {
    assert.ok(chain[i].checkIssued(chain[i + 1]), `chain[${i}] not issued by chain[${i + 1}] (issuer/subject or key ids)`);
    assert.ok(chain[i].verify(chain[i + 1].publicKey), `chain[${i}] signature does not verify with chain[${i + 1}]`);
  }
  assert.ok(ca.ca, 'last certificate (app CA) must be a CA');
  assert.equal(leaf.ca, false, 'leaf must not be a CA');
  if (subject !== undefined) assert.equal(commonName(leaf), subject, 'leaf CN');
  const sans = (leaf.subjectAltName || '').split(', ').filter(Boolean);
  for (const n of altNames) assert.ok(sans.includes(`DNS:${n}`), `SAN ${n} missing in ${leaf.subjectAltName}`);
  const now = Date.now();
  assert.ok(Date.parse(leaf.validFrom) <= now && now <= Date.parse(leaf.validTo), 'leaf valid now');
  certExtensions(leaf); // must parse
  return { key, chain, leaf, ca };
}

// A quote reply: quote hex parses and verifies, report_data equals `expected`, the SDK's
// replayRtmrs() and our replay of event_log equal the quote's RTMRs. Returns the parsed quote.
export function checkQuoteReply(res, expected, { rootPem = null, sdkReplay = true } = {}) {
  const buf = hexToBuf(res.quote, 'quote');
  const q = parseQuote(buf);
  verifyQuote(buf, q, { rootPem });
  assert.equal(q.reportData.toString('hex'), expected.toString('hex'), 'report_data in the quote');
  assert.equal(typeof res.event_log, 'string', 'event_log must be a string (JSON array text)');
  const ev = checkEventLog(res.event_log);
  assert.deepEqual(replay(ev), q.rtmrs, 'event log replay (ours) != quote RTMRs');
  if (sdkReplay) assert.deepEqual(res.replayRtmrs(), q.rtmrs, 'SDK replayRtmrs() != quote RTMRs');
  return q;
}

// Silences the SDKs' console.debug/warn chatter ("Using simulator endpoint", "deprecated").
export function quietSdk() {
  console.debug = () => {};
  console.warn = () => {};
}

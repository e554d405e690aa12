// Encrypted app environment end to end with the published SDK (@phala/dstack-sdk 0.5.8):
// fetch an app's env public key from `kms --dev` the way the SDK README shows
// (POST /prpc/GetAppEnvEncryptPubKey?json {app_id}), check the KMS signatures over it with the
// SDK's verifyEnvEncryptPublicKey / verifyEnvEncryptPublicKeyLegacy, encrypt variables with the
// SDK's encryptEnvVars, get the env key as the CVM does (KMS.GetAppKey over mutual TLS with a
// simulated RA-TLS certificate) and decrypt with `tdxctl env decrypt`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { x25519 } from '@noble/curves/ed25519';
import { encryptEnvVars } from 'sdk058/encrypt-env-vars';
import { verifyEnvEncryptPublicKey, verifyEnvEncryptPublicKeyLegacy } from 'sdk058';
import { startKms, makeCvm, httpsJson, hexBytes, tdxctl } from './lib/kms.mjs';

const ENVS = [
  { key: 'DATABASE_URL', value: 'postgresql://user:p%40ss@db:5432/app?sslmode=require' },
  { key: 'API_KEY', value: 'sk-test-1234' },
  { key: 'MULTI_LINE', value: "line 1\nline 2 with 'quotes' and \"double\" and $HOME `x` \\" },
  { key: 'LOWER_case_9', value: '=starts with equals=' },
  { key: '_EMPTY', value: '' },
  { key: 'UTF8', value: 'grüße, 你好, 🙂' },
];

let kms, cvm, other;
const tmpFiles = [];
before(async () => {
  kms = await startKms();
  cvm = await makeCvm(kms, { compose: 'services:\n  web:\n    image: nginx\n' });
  other = await makeCvm(kms, { compose: 'services:\n  other:\n    image: redis\n' });
});
after(async () => {
  cvm?.cleanup();
  other?.cleanup();
  for (const f of tmpFiles) fs.rmSync(f, { force: true });
  await kms?.stop();
});

function what(r) {
  return `=> ${r.status} ${r.body.slice(0, 1500)}`;
}

// The pubkey reply, with its fields checked. The SDK README fetches it at
// /prpc/GetAppEnvEncryptPubKey?json (upstream's KMS service trims the "KMS." prefix); the
// first test checks that route, the others use the full method name.
async function getPubKey(appId, route = '/prpc/KMS.GetAppEnvEncryptPubKey?json') {
  const r = await httpsJson(kms.url, route, { app_id: appId });
  assert.equal(r.status, 200, `POST ${route} {app_id: ${appId}} ${what(r)}`);
  const j = r.json;
  assert.ok(j && typeof j === 'object', `not JSON: ${what(r)}`);
  const pub = hexBytes(j.public_key, 'public_key');
  assert.equal(pub.length, 32, `public_key: ${what(r)}`);
  assert.ok(typeof j.timestamp === 'number' || typeof j.timestamp === 'string', `timestamp: ${what(r)}`);
  return { j, pub, r };
}

async function getAppKey(c) {
  const r = await httpsJson(kms.url, '/prpc/KMS.GetAppKey?json', {}, { cert: c.cert, key: c.key });
  assert.equal(r.status, 200, `KMS.GetAppKey over mTLS ${what(r)}\nkms log:\n${kms.log().slice(-3000)}`);
  const key = hexBytes(r.json.env_crypt_key, 'env_crypt_key');
  assert.equal(key.length, 32, `env_crypt_key: ${what(r)}`);
  return { j: r.json, envKey: key };
}

function writeTmp(name, data, mode = 0o600) {
  const p = path.join(cvm.dir, name);
  fs.writeFileSync(p, data, { mode });
  tmpFiles.push(p);
  return p;
}

test('GetAppEnvEncryptPubKey at the route the SDK README uses (/prpc/GetAppEnvEncryptPubKey?json)', async () => {
  const a = await getPubKey(cvm.appId, '/prpc/GetAppEnvEncryptPubKey?json');
  const b = await getPubKey(cvm.appId);
  assert.deepEqual(a.pub, b.pub, 'the same app id gives the same key on both routes');
});

test('GetAppEnvEncryptPubKey: public, deterministic per app, signatures verify with the SDK', async () => {
  const a = await getPubKey(cvm.appId);
  const o = await getPubKey(other.appId);
  assert.notDeepEqual(a.pub, o.pub, 'different apps get different keys');
  const with0x = await getPubKey('0x' + cvm.appId);
  assert.deepEqual(with0x.pub, a.pub, 'app_id with a 0x prefix');

  const now = Math.floor(Date.now() / 1000);
  const ts = Number(a.j.timestamp);
  assert.ok(Math.abs(ts - now) <= 60, `timestamp ${ts} is not now (${now})`);

  const sigV1 = hexBytes(a.j.signature_v1, 'signature_v1');
  const sig = hexBytes(a.j.signature, 'signature');
  assert.equal(sigV1.length, 65, `signature_v1 is r||s||v: ${what(a.r)}`);
  assert.equal(sig.length, 65, `signature is r||s||v: ${what(a.r)}`);
  const signer = verifyEnvEncryptPublicKey(a.pub, sigV1, cvm.appId, BigInt(a.j.timestamp));
  assert.ok(signer, `verifyEnvEncryptPublicKey failed: ${what(a.r)}`);
  const legacy = verifyEnvEncryptPublicKeyLegacy(a.pub, sig, cvm.appId);
  assert.equal(legacy, signer, 'the legacy and v1 signatures come from one key');
  // a wrong app id or key recovers some other signer (or none)
  assert.notEqual(verifyEnvEncryptPublicKey(a.pub, sigV1, other.appId, BigInt(a.j.timestamp)), signer);
  assert.notEqual(verifyEnvEncryptPublicKey(o.pub, sigV1, cvm.appId, BigInt(a.j.timestamp)), signer);
  assert.equal(verifyEnvEncryptPublicKey(a.pub, sigV1, cvm.appId, BigInt(a.j.timestamp) - 1000n), null,
    'an old timestamp is refused');

  // the signer is the KMS's root k256 key, as GetMeta publishes it (compressed SEC1)
  const meta = await httpsJson(kms.url, '/prpc/KMS.GetMeta?json', {});
  assert.equal(meta.status, 200, `KMS.GetMeta ${what(meta)}`);
  assert.equal(signer, '0x' + hexBytes(meta.json.k256_pubkey, 'k256_pubkey').toString('hex'),
    `signer vs GetMeta k256_pubkey: ${what(meta)}`);
});

test('SDK encryptEnvVars → KMS.GetAppKey (mTLS, RA-TLS cert) env_crypt_key → tdxctl env decrypt', async () => {
  const { j, pub } = await getPubKey(cvm.appId);
  const blob = await encryptEnvVars(ENVS, j.public_key);
  assert.match(blob, /^[0-9a-f]+$/);

  const { envKey } = await getAppKey(cvm);
  assert.deepEqual(Buffer.from(x25519.getPublicKey(envKey)), pub,
    'the published public key is the X25519 key of the env_crypt_key the CVM gets');
  const { envKey: again } = await getAppKey(cvm);
  assert.deepEqual(again, envKey, 'env_crypt_key is deterministic');

  const keyHex = writeTmp('env.key', envKey.toString('hex') + '\n');
  const keyRaw = writeTmp('env.key.raw', envKey);
  const blobPath = writeTmp('env.hex', blob + '\n', 0o644);
  let r = await tdxctl(['env', 'decrypt', '--key-file', keyHex, '-i', blobPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.toString()), { env: ENVS });

  // the raw blob on stdin (the guest's shared-dir file), a raw key file, output file 0600
  const outPath = path.join(cvm.dir, 'env.out');
  tmpFiles.push(outPath);
  r = await tdxctl(['env', 'decrypt', '--key-file', keyRaw, '-o', outPath], { input: Buffer.from(blob, 'hex') });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(fs.readFileSync(outPath, 'utf8')), { env: ENVS });
  assert.equal(fs.statSync(outPath).mode & 0o777, 0o600);

  // --shell: sourced by sh, each variable comes back byte for byte
  r = await tdxctl(['env', 'decrypt', '--key-file', keyHex, '--shell'], { input: blob });
  assert.equal(r.code, 0, r.stderr);
  const shPath = writeTmp('env.sh', r.stdout);
  for (const { key, value } of ENVS) {
    const got = execFileSync('sh', ['-c', `. "$1"; printf '%s' "$${key}"`, 'sh', shPath]).toString();
    assert.equal(got, value, key);
  }
});

test('another app\'s env key, a tampered blob: tdxctl env decrypt refuses', async () => {
  const { j } = await getPubKey(cvm.appId);
  const blob = await encryptEnvVars(ENVS, j.public_key);
  const { envKey: otherKey } = await getAppKey(other);
  const { envKey } = await getAppKey(cvm);
  assert.notDeepEqual(otherKey, envKey);
  const otherPath = writeTmp('other.key', otherKey.toString('hex'));
  let r = await tdxctl(['env', 'decrypt', '--key-file', otherPath], { input: blob });
  assert.equal(r.code, 1, `decrypting with another app's key: ${r.stdout} ${r.stderr}`);
  assert.equal(r.stdout.length, 0);
  assert.match(r.stderr, /decryption failed/);

  const keyPath = writeTmp('env2.key', envKey.toString('hex'));
  const raw = Buffer.from(blob, 'hex');
  for (const i of [0, 31, 32, 43, 44, raw.length - 17, raw.length - 1]) {
    const t = Buffer.from(raw);
    t[i] ^= 0x01;
    r = await tdxctl(['env', 'decrypt', '--key-file', keyPath], { input: t.toString('hex') });
    assert.equal(r.code, 1, `byte ${i} flipped: ${r.stdout} ${r.stderr}`);
  }
  r = await tdxctl(['env', 'decrypt', '--key-file', keyPath], { input: blob.slice(0, blob.length - 2) });
  assert.equal(r.code, 1, 'truncated');
});

test('tdxctl env encrypt output decrypts with WebCrypto the way the SDK encrypts (same format)', async () => {
  const { j } = await getPubKey(cvm.appId);
  const lines = 'A=1\n# comment\n\nB=two words=with equals\r\n';
  const r = await tdxctl(['env', 'encrypt', '--pubkey', j.public_key], { input: lines });
  assert.equal(r.code, 0, r.stderr);
  const raw = hexBytes(r.stdout.toString().trim());
  const { envKey } = await getAppKey(cvm);
  const shared = x25519.getSharedSecret(envKey, raw.subarray(0, 32));
  const aes = await crypto.webcrypto.subtle.importKey('raw', shared, { name: 'AES-GCM' }, false, ['decrypt']);
  const plain = await crypto.webcrypto.subtle.decrypt({ name: 'AES-GCM', iv: raw.subarray(32, 44) }, aes, raw.subarray(44));
  const text = Buffer.from(plain).toString();
  assert.deepEqual(JSON.parse(text), { env: [{ key: 'A', value: '1' }, { key: 'B', value: 'two words=with equals' }] });
  assert.equal(text, JSON.stringify(JSON.parse(text)), 'compact JSON, as JSON.stringify writes it');
});

test('KMS.GetAppKey without a client certificate is refused', async () => {
  const r = await httpsJson(kms.url, '/prpc/KMS.GetAppKey?json', {});
  assert.notEqual(r.status, 200, `no attestation, yet: ${what(r)}`);
  assert.ok(!r.json?.env_crypt_key, `no attestation, yet a key: ${what(r)}`);
});

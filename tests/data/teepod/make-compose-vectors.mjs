// Writes compose-vectors.json: compose hashes computed by the published JS SDK
// (@phala/dstack-sdk 0.5.8, installed as `sdk058` in tests/sdk), for test_app_compose.
//
//   (cd tests/sdk && npm ci) && node tests/data/teepod/make-compose-vectors.mjs
//
// Each {name, compose, hash} entry: hash = getComposeHash(obj) where obj is the document the
// SDK and upstream's console make for a bare compose file (lib/attest/app_compose.h). The
// {name, document, hash} entry is a full app-compose.json as getComposeHash serialises it
// (keys sorted); hash is its SHA-256.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.join(here, '..', '..', 'sdk', 'node_modules', 'sdk058');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
if (pkg.name !== '@phala/dstack-sdk' || pkg.version !== '0.5.8')
  throw new Error(`expected @phala/dstack-sdk 0.5.8, found ${pkg.name} ${pkg.version}`);
const { getComposeHash } = await import(pathToFileURL(path.join(pkgDir, 'dist', 'index.mjs')));

const wrapped = (compose, name) => ({
  allowed_envs: [],
  docker_compose_file: compose,
  gateway_enabled: true,
  kms_enabled: true,
  local_key_provider_enabled: false,
  manifest_version: 2,
  name,
  no_instance_id: false,
  public_logs: true,
  public_sysinfo: true,
  public_tcbinfo: true,
  runner: 'docker-compose',
  secure_time: false,
});

const composes = [
  ['web', 'services:\n  web:\n    image: nginx:1.27\n    ports:\n      - "80:80"\n'],
  ['quotes', 'services:\n  a:\n    command: ["sh", "-c", "echo \\"hi\\" \'there\' C:\\\\path"]\n'],
  ['crlf-tabs', 'services:\r\n\tweb:\r\n\t\timage: busybox\r\n'],
  ['unicode', 'services:\n  caf\u00e9:\n    image: x\n    labels: {k: "\u4e2d\u6587 \u{1F600} \u00a0\u2028\u2029\ufeff"}\n'],
  ['controls', 'a: "\u0001\u0002\u0007\b\f\u000b\u000e\u001a\u001b[0m\u001f\u007f\u0080"\n'],
  ['empty-text', ''],
  ['json', '{"services":{"web":{"image":"nginx","environment":["A=1","B=\\"x\\""]}}}'],
  ['no-newline', 'services: {}'],
];
const names = ['web', 'my app', 'a"b\\c', 'tab\tname\n', '\u540d\u524d-\u{1F680}', 'x'];

const vectors = [];
composes.forEach(([label, compose], i) => {
  const name = names[i % names.length];
  vectors.push({ name, compose, hash: getComposeHash(wrapped(compose, name)), label });
});
// one compose text under every name
for (const name of names.slice(1))
  vectors.push({ name, compose: composes[0][1], hash: getComposeHash(wrapped(composes[0][1], name)),
                 label: 'web-names' });

// A full app-compose.json: keys in any order go in, getComposeHash sorts them at every level.
const full = {
  runner: 'docker-compose',
  name: 'full',
  manifest_version: 2,
  docker_compose_file: 'services:\n  app:\n    image: "ghcr.io/x/app@sha256:00"\n',
  pre_launch_script: '#!/bin/sh\necho "pre \\ launch"\n',
  kms_enabled: true,
  gateway_enabled: false,
  local_key_provider_enabled: false,
  key_provider: 'kms',
  key_provider_id: '00ff',
  public_logs: false,
  public_sysinfo: true,
  public_tcbinfo: true,
  no_instance_id: true,
  secure_time: true,
  allowed_envs: ['API_KEY', 'DB_URL'],
  init_script: ['echo 1', 'echo 2'],
  features: ['kms', 'tproxy-net'],
  storage_fs: 'ext4',
  'x-extra': { zeta: [3, 1.5, null, 'z'], alpha: { b: false, a: '\u00e9' } },
};
const sortDeep = (v) => Array.isArray(v) ? v.map(sortDeep)
  : v && typeof v === 'object'
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortDeep(v[k])]))
    : v;
const document = JSON.stringify(sortDeep(full));
vectors.push({ name: 'full', document, hash: getComposeHash(full), label: 'full-document' });

const out = path.join(here, 'compose-vectors.json');
fs.writeFileSync(out, JSON.stringify(vectors, null, 1) + '\n');
console.log(`${out}: ${vectors.length} vectors`);

// Builds a collateral file in the dcap-qvl JSON format from Intel PCS responses,
// so the three verifiers of bench/verify read the very same collateral.
// usage: node make_collateral.mjs OUT TCB_INFO_BODY TCB_CHAIN_PEM QE_IDENTITY_BODY QE_CHAIN_PEM
//                                 ROOT_CRL_DER PCK_CRL_DER PCK_CRL_CHAIN_PEM
import fs from 'node:fs';

// The signed text is the exact bytes of the inner object, so cut it out of the
// body instead of re-serialising it.
function signedPart(path, key) {
  const text = fs.readFileSync(path, 'utf8');
  const parsed = JSON.parse(text);
  if (typeof parsed[key] !== 'object' || typeof parsed.signature !== 'string')
    throw new Error(`${path}: not a PCS ${key} response`);
  const head = `{"${key}":`;
  const tail = `,"signature":"${parsed.signature}"}`;
  const t = text.trimEnd();
  if (!t.startsWith(head) || !t.endsWith(tail))
    throw new Error(`${path}: unexpected layout`);
  const inner = t.slice(head.length, t.length - tail.length);
  JSON.parse(inner);
  return { inner, signature: parsed.signature.toLowerCase() };
}

const [out, tcbBody, tcbChain, qeBody, qeChain, rootCrl, pckCrl, pckCrlChain] = process.argv.slice(2);
if (!pckCrlChain) {
  console.error('usage: make_collateral.mjs OUT TCB_INFO TCB_CHAIN QE_ID QE_CHAIN ROOT_CRL PCK_CRL PCK_CRL_CHAIN');
  process.exit(2);
}
const tcb = signedPart(tcbBody, 'tcbInfo');
const qe = signedPart(qeBody, 'enclaveIdentity');
const col = {
  pck_crl_issuer_chain: fs.readFileSync(pckCrlChain, 'utf8'),
  root_ca_crl: fs.readFileSync(rootCrl).toString('hex'),
  pck_crl: fs.readFileSync(pckCrl).toString('hex'),
  tcb_info_issuer_chain: fs.readFileSync(tcbChain, 'utf8'),
  tcb_info: tcb.inner,
  tcb_info_signature: tcb.signature,
  qe_identity_issuer_chain: fs.readFileSync(qeChain, 'utf8'),
  qe_identity: qe.inner,
  qe_identity_signature: qe.signature,
};
fs.writeFileSync(out, JSON.stringify(col, null, 2) + '\n');

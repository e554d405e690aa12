// Peer driver: the pure-JavaScript verifier @phala/dcap-qvl (Intel production root).
import { createRequire } from 'node:module';
import { run } from './common.mjs';

const require = createRequire(import.meta.url);
const { QuoteVerifier } = require('@phala/dcap-qvl');

const verifier = QuoteVerifier.newProd();
run('dcap-qvl-js', (c) => verifier.verify(c.quote, c.collateral, c.time));

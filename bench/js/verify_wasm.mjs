// Peer driver: the upstream Rust verifier compiled to WebAssembly, @phala/dcap-qvl-web.
import fs from 'node:fs';
import { initSync, js_verify } from '@phala/dcap-qvl-web';
import { run } from './common.mjs';

// In node the module cannot fetch its .wasm, so hand it the bytes.
initSync({ module: fs.readFileSync(new URL(import.meta.resolve('@phala/dcap-qvl-web/dcap-qvl-web_bg.wasm'))) });
run('dcap-qvl-wasm', (c) => js_verify(c.quote, c.collateral, BigInt(c.time)));

// A tiny app using the published dstack SDK (@phala/dstack-sdk, pinned in package-lock.json)
// against the guest agent: tappd --dev DIR serves the API on DIR/dstack.sock.
//   (cd examples/sdk && npm ci)
//   DSTACK_SIMULATOR_ENDPOINT=DIR/dstack.sock node examples/sdk/app.mjs
// Prints one line per call; exits 1 with the error on the first failure.
import { DstackClient } from '@phala/dstack-sdk';

const hex = (u8) => Buffer.from(u8).toString('hex');

try {
  const client = new DstackClient(); // DSTACK_SIMULATOR_ENDPOINT, else /var/run/dstack.sock
  const info = await client.info();
  console.log(`app_id ${info.app_id} (instance ${info.instance_id})`);
  const key = await client.getKey('/app', 'signing');
  console.log(`key for /app: ${key.key.length} bytes, signature chain of ${key.signature_chain.length}`);
  const q = await client.getQuote('hello from examples/sdk');
  console.log(`quote: ${(q.quote.length - (q.quote.startsWith('0x') ? 2 : 0)) / 2} bytes, ` +
              `report_data ${q.report_data ?? '(not returned)'}`);
  // RTMR3 of the TD report in a v4 quote: 48-byte header, then the body's RTMR3 at 472.
  const body = q.quote.replace(/^0x/, '');
  const quoted = body.slice((48 + 472) * 2, (48 + 472 + 48) * 2);
  const replayed = q.replayRtmrs()[3];
  if (replayed !== quoted)
    throw new Error(`the event log replays to RTMR3 ${replayed}, the quote says ${quoted}`);
  console.log(`event log replays to the quote's RTMR3 ${quoted}`);
} catch (e) {
  console.error(`examples/sdk: ${e.message ?? e}`);
  process.exit(1);
}

// A frame peer in its own process for bench/net.ts: connects to a Unix socket, sends a JSON hello
// record (when given), then either floods N frames of SIZE bytes to DST (role "send") or counts
// frames until N arrived (role "receive"), and prints one JSON line with its timing.
// Records are a 4-byte big-endian length and the bytes (root-partition/vswitch/frame-stream.ts),
// batched many per write as the switch link batches them.
import * as net from 'node:net';

const [path, role, nArg, sizeArg, hello, dstMac, srcMac] = process.argv.slice(2);
const n = Number(nArg);
const size = Number(sizeArg);
const sock = net.createConnection(path);
const rec = (b) => {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32BE(b.length);
  return Buffer.concat([h, b]);
};

function frame() {
  const f = Buffer.alloc(size);
  if (dstMac) Buffer.from(dstMac.replaceAll(':', ''), 'hex').copy(f, 0);
  if (srcMac) Buffer.from(srcMac.replaceAll(':', ''), 'hex').copy(f, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

function send() {
  const one = rec(frame());
  const perBatch = Math.max(1, Math.floor((256 * 1024) / one.length));
  const batch = Buffer.concat(Array.from({ length: perBatch }, () => one));
  let sent = 0;
  const t0 = process.hrtime.bigint();
  const pump = () => {
    while (sent < n) {
      const k = Math.min(perBatch, n - sent);
      sent += k;
      if (!sock.write(k === perBatch ? batch : batch.subarray(0, k * one.length))) {
        sock.once('drain', pump);
        return;
      }
    }
    console.log(JSON.stringify({ role, sent, ns: Number(process.hrtime.bigint() - t0) }));
    sock.end(() => process.exit(0));
  };
  pump();
}

function receive() {
  let got = 0;
  let pending = Buffer.alloc(0);
  let t0 = 0n;
  let last = 0n;
  const report = () => {
    console.log(JSON.stringify({ role, got, ns: Number(last - t0) }));
    process.exit(0);
  };
  // The switch may drop frames for a slow receiver: report what arrived once the stream is quiet.
  let quiet = setTimeout(report, 10000);
  sock.on('data', (chunk) => {
    last = process.hrtime.bigint();
    if (t0 === 0n) t0 = last;
    clearTimeout(quiet);
    // Quiet for 2 s after frames came (the switch dropped the rest); before the first, up to 10 s.
    quiet = setTimeout(report, got > 0 ? 2000 : 10000);
    const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (buf.length - at - 4 < len) break;
      at += 4 + len;
      if (len >= 14 || !hello) got++;
    }
    pending = Buffer.from(buf.subarray(at));
    if (got >= n) report();
  });
}

sock.on('connect', () => {
  if (hello && hello !== '-') sock.write(rec(Buffer.from(hello)));
  if (role === 'send') {
    if (hello && hello !== '-')
      sock.once('data', () => send()); // wait for the port number
    else send();
  } else receive();
});
sock.on('error', (e) => {
  console.error(e.message);
  process.exit(1);
});

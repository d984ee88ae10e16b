// A minimal DHCP client (RFC 2131, options RFC 2132): DISCOVER, OFFER, REQUEST, ACK, for the
// address a DHCP server on the link (passt behind an internal switch) hands out. Messages go out
// as broadcasts from 0.0.0.0:68 with the broadcast flag set; what comes back on port 68 is read
// from a private copy and checked (op, transaction id, our hardware address, the magic cookie,
// every option inside the message) before use. No lease renewal: the address is kept until the
// next `ip`.
import { puts, putDec } from "../kernel/console";
import { be16, be32, putBe16, putBe32 } from "./inet";
import { netConfigure, netDevice, netDhcpListen, netDhcpMessage, netDhcpTake, netSendUdpBroadcast, netWaitStep, putIp } from "./ipv4-stack";

const OP_REQUEST: u32 = 1;
const OP_REPLY: u32 = 2;
const MAGIC: u32 = 0x63825363;
const OPTIONS_AT: u32 = 240;
const DISCOVER: u32 = 1;
const OFFER: u32 = 2;
const REQUEST: u32 = 3;
const ACK: u32 = 5;
const NAK: u32 = 6;
const OPT_MASK: u32 = 1;
const OPT_ROUTER: u32 = 3;
const OPT_REQUESTED_IP: u32 = 50;
const OPT_LEASE: u32 = 51;
const OPT_TYPE: u32 = 53;
const OPT_SERVER: u32 = 54;
const OPT_PARAMS: u32 = 55;
const OPT_END: u32 = 255;
const OPT_PAD: u32 = 0;
/** Wait steps for each answer (as ping's budget), and tries of each exchange. */
const WAIT_STEPS: u32 = 20000;
const TRIES: u32 = 3;

const OUT: usize = memory.data(300, 16);
let xid: u32 = 0x74730000;

// What the last accepted answer said.
let gotType: u32 = 0;
let gotAddress: u32 = 0;
let gotServer: u32 = 0;
let gotMask: u32 = 0;
let gotRouter: u32 = 0;
let gotLease: u32 = 0;

function message(type: u32, requested: u32, server: u32): u32 {
  memory.fill(OUT, 0, 300);
  const d = netDevice()!;
  store<u8>(OUT, <u8>OP_REQUEST);
  store<u8>(OUT + 1, 1); // Ethernet
  store<u8>(OUT + 2, 6);
  putBe32(OUT + 4, xid);
  putBe16(OUT + 10, 0x8000); // broadcast: we cannot take unicast before we have the address
  for (let i: u32 = 0; i < 6; i++) store<u8>(OUT + 28 + i, d.macByte(i));
  putBe32(OUT + 236, MAGIC);
  let o = OUT + OPTIONS_AT;
  store<u8>(o++, <u8>OPT_TYPE); store<u8>(o++, 1); store<u8>(o++, <u8>type);
  if (requested != 0) { store<u8>(o++, <u8>OPT_REQUESTED_IP); store<u8>(o++, 4); putBe32(o, requested); o += 4; }
  if (server != 0) { store<u8>(o++, <u8>OPT_SERVER); store<u8>(o++, 4); putBe32(o, server); o += 4; }
  store<u8>(o++, <u8>OPT_PARAMS); store<u8>(o++, 2); store<u8>(o++, <u8>OPT_MASK); store<u8>(o++, <u8>OPT_ROUTER);
  store<u8>(o++, <u8>OPT_END);
  return 300; // BOOTP's minimum size (RFC 1542)
}

/** Checks the datagram at `m` (`n` bytes) as our transaction's answer and reads its options; false when it is not one. */
function accept(m: usize, n: u32): bool {
  if (n < OPTIONS_AT + 1 || <u32>load<u8>(m) != OP_REPLY || be32(m + 4) != xid || be32(m + 236) != MAGIC) return false;
  const d = netDevice()!;
  for (let i: u32 = 0; i < 6; i++) if (load<u8>(m + 28 + i) != d.macByte(i)) return false;
  gotType = 0; gotServer = 0; gotMask = 0; gotRouter = 0; gotLease = 0;
  gotAddress = be32(m + 16);
  let at = OPTIONS_AT;
  while (at < n) {
    const code = <u32>load<u8>(m + at);
    if (code == OPT_END) break;
    if (code == OPT_PAD) { at++; continue; }
    if (at + 2 > n) return false;
    const len = <u32>load<u8>(m + at + 1);
    const v = m + at + 2;
    if (at + 2 + len > n) return false;
    if (code == OPT_TYPE && len == 1) gotType = <u32>load<u8>(v);
    else if (code == OPT_SERVER && len == 4) gotServer = be32(v);
    else if (code == OPT_MASK && len == 4) gotMask = be32(v);
    else if (code == OPT_ROUTER && len >= 4) gotRouter = be32(v);
    else if (code == OPT_LEASE && len == 4) gotLease = be32(v);
    at += 2 + len;
  }
  return gotType != 0;
}

/** Sends one message and waits for an answer of our transaction; its type (0: none). */
function exchange(type: u32, requested: u32, server: u32): u32 {
  for (let t: u32 = 0; t < TRIES; t++) {
    xid++;
    netDhcpTake();
    netSendUdpBroadcast(0xffffffff, 68, 67, OUT, message(type, requested, server));
    for (let i: u32 = 0; i < WAIT_STEPS; i++) {
      netWaitStep();
      const n = netDhcpTake();
      if (n > 0 && accept(netDhcpMessage(), n)) return gotType;
    }
  }
  return 0;
}

function prefixOf(mask: u32): u32 {
  let p: u32 = 0;
  while (p < 32 && (mask & (<u32>0x80000000 >> p)) != 0) p++;
  return p;
}

/** Takes an address by DHCP and configures it; prints what it got. False when no server answered (or it refused). */
export function dhcpConfigure(): bool {
  netConfigure(0, 0);
  netDhcpListen(true);
  let ok = false;
  if (exchange(DISCOVER, 0, 0) == OFFER && gotAddress != 0 && gotServer != 0) {
    const offered = gotAddress, server = gotServer;
    const answer = exchange(REQUEST, offered, server);
    if (answer == ACK && gotAddress == offered) ok = true;
    else if (answer == NAK) puts("dhcp: the server refused the address (NAK)\n");
  }
  netDhcpListen(false);
  if (!ok) { puts("dhcp: no address (no OFFER and ACK)\n"); return false; }
  const prefix = gotMask != 0 ? prefixOf(gotMask) : 24;
  netConfigure(gotAddress, prefix, gotRouter);
  puts("dhcp: ");
  putIp(gotAddress); puts("/"); putDec(prefix);
  puts(" from "); putIp(gotServer);
  if (gotRouter != 0) { puts(", router "); putIp(gotRouter); }
  if (gotLease != 0) { puts(", lease "); putDec(gotLease); puts(" s"); }
  puts("\n");
  return true;
}

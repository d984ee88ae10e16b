// A small IPv4 stack over one NIC (NetDevice): Ethernet II, ARP (RFC 826) with a 16-entry table,
// IPv4 (RFC 791; no options sent, no fragments), ICMP echo (RFC 792) both ways, a UDP echo
// service on port 7 (RFC 862) and a UDP discard service on port 9 (RFC 863) that counts what it
// drops, the receiving end of `blast`, and one UDP request/answer exchange (`udp`). A default router
// (set by `ip a.b.c.d/n gw` or DHCP) takes what is not on the link. Single-threaded: the
// NIC's interrupt only wakes the VP; frames are handled here, from the main loop.
import { putBytes, puts, putDec } from "../kernel/console";
import { NET_MAX_FRAME, NET_MAX_JUMBO_FRAME, NetDevice } from "./net-device";
import { be16, be32, inetChecksum, putBe16, putBe32 } from "./inet";

const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_ARP: u32 = 0x0806;
const IP_ICMP: u32 = 1;
const IP_UDP: u32 = 17;
const ICMP_ECHO_REPLY: u32 = 0;
const ICMP_ECHO_REQUEST: u32 = 8;
export const UDP_ECHO_PORT: u32 = 7;
export const UDP_DISCARD_PORT: u32 = 9;
/** Source port of `blast`'s datagrams. */
const BLAST_PORT: u32 = 40009;
/** Source port of `udp`'s request; its answer comes back to it. */
const UDP_CLIENT_PORT: u32 = 40007;
/** Tries of `udp` (each waits POLL_BUDGET steps): the first datagram may meet a NAT still setting up. */
const UDP_TRIES: u32 = 3;
const UDP_IN_BYTES: u32 = 1472;
const UDP_IN: usize = memory.data(1472, 16);
/** The id this guest's pings carry ("ts"). */
const PING_ID: u32 = 0x7473;
const PING_DATA: u32 = 56;
const ARP_ENTRIES: u32 = 16;
/** Wait steps (one exit each) a ping waits for an answer before giving up (not every image has a clock). */
const POLL_BUDGET: u32 = 20000;
/** blast's fence ping: wait steps per try and tries (a receiver with a long backlog takes seconds). */
const FENCE_BUDGET: u32 = 200;
const FENCE_TRIES: u32 = 3000;

// Room for a jumbo frame (and the 4 bytes a driver may copy past it).
const RX: usize = memory.data(NET_MAX_JUMBO_FRAME + 16, 16);
const TX: usize = memory.data(NET_MAX_JUMBO_FRAME + 16, 16);
// ARP table: 16 × {ip u32 (host order), mac 6 bytes, valid u8, pad} = 16 bytes each
const ARP: usize = memory.data(16 * 16, 16);

let dev: NetDevice | null = null;
let myIp: u32 = 0;
let prefix: u32 = 0;
let router: u32 = 0;
/** `udp` waits for an answer from this address and port; udpGot is its length + 1 once it came. */
let udpFromIp: u32 = 0;
let udpFromPort: u32 = 0;
let udpGot: u32 = 0;
let arpNext: u32 = 0;
let nextIpId: u32 = 1;
let expectSeq: u32 = 0xffffffff;
/** Replies with a sequence number from here up to expectSeq count too (blast's fence: a late answer to an earlier try ends it). */
let acceptFromSeq: u32 = 0xffffffff;
let gotReply: bool = false;
// counters
let framesIn: u32 = 0;
let framesOut: u32 = 0;
let arpReplies: u32 = 0;
let echoReplies: u32 = 0;
let udpEchoes: u32 = 0;
let udpDiscarded: u32 = 0;
// DHCP (dhcp-client.ts): while it listens, a datagram to port 68 is kept here whatever its address.
const DHCP_CLIENT_PORT: u32 = 68;
const DHCP_IN_BYTES: u32 = 1500;
const DHCP_IN: usize = memory.data(1500, 16);
let dhcpListening = false;
let dhcpLength: u32 = 0;
let blastBusy: u32 = 0;
let dropped: u32 = 0;

export function netAttach(d: NetDevice): void { dev = d; }
export function netAttached(): bool { return dev !== null; }
export function netAddress(): u32 { return myIp; }
export function netPrefix(): u32 { return prefix; }
export function netRouter(): u32 { return router; }
export function netConfigure(ip: u32, prefixLength: u32, gateway: u32 = 0): void {
  myIp = ip;
  prefix = prefixLength;
  router = gateway;
  memory.fill(ARP, 0, 16 * 16);
}

/** Where a frame for `ip` goes on the link: `ip` itself when on-link (or no router), else the router. */
function nextHop(ip: u32): u32 {
  if (router == 0 || prefix == 0) return ip;
  const mask = prefix >= 32 ? 0xffffffff : ~(<u32>0xffffffff >>> prefix);
  return ((ip ^ myIp) & mask) == 0 ? ip : router;
}

function mac(i: u32): u8 { return dev!.macByte(i); }

function arpLookup(ip: u32): usize {
  for (let i: u32 = 0; i < ARP_ENTRIES; i++) {
    const e = ARP + i * 16;
    if (load<u8>(e + 10) != 0 && load<u32>(e) == ip) return e + 4;
  }
  return 0;
}

function arpLearn(ip: u32, macGpa: usize): void {
  let e = arpLookup(ip);
  if (e == 0) {
    const slot = ARP + (arpNext % ARP_ENTRIES) * 16;
    arpNext++;
    store<u32>(slot, ip);
    store<u8>(slot + 10, 1);
    e = slot + 4;
  }
  memory.copy(e, macGpa, 6);
}

function ethHeader(dstMac: usize, type: u32): void {
  if (dstMac == 0) memory.fill(TX, 0xff, 6);
  else memory.copy(TX, dstMac, 6);
  for (let i: u32 = 0; i < 6; i++) store<u8>(TX + 6 + i, mac(i));
  putBe16(TX + 12, type);
}

function transmit(length: u32): void {
  if (dev!.send(TX, length)) framesOut++;
}

function arpSend(op: u32, targetMac: usize, targetIp: u32): void {
  ethHeader(op == 1 ? 0 : targetMac, ETHERTYPE_ARP);
  const a = TX + 14;
  putBe16(a, 1);
  putBe16(a + 2, ETHERTYPE_IPV4);
  store<u8>(a + 4, 6);
  store<u8>(a + 5, 4);
  putBe16(a + 6, op);
  for (let i: u32 = 0; i < 6; i++) store<u8>(a + 8 + i, mac(i));
  putBe32(a + 14, myIp);
  if (op == 1) memory.fill(a + 18, 0, 6);
  else memory.copy(a + 18, targetMac, 6);
  putBe32(a + 24, targetIp);
  transmit(42);
}

/** IPv4 header at TX+14 for `payload` bytes to `dst`; returns the frame length. */
function ipHeader(dst: u32, protocol: u32, payload: u32): u32 {
  const h = TX + 14;
  store<u8>(h, 0x45);
  store<u8>(h + 1, 0);
  putBe16(h + 2, 20 + payload);
  putBe16(h + 4, nextIpId++ & 0xffff);
  putBe16(h + 6, 0x4000); // don't fragment
  store<u8>(h + 8, 64);
  store<u8>(h + 9, <u8>protocol);
  putBe16(h + 10, 0);
  putBe32(h + 12, myIp);
  putBe32(h + 16, dst);
  putBe16(h + 10, inetChecksum(h, 20));
  return 14 + 20 + payload;
}

function handleArp(length: u32): void {
  if (length < 42 || be16(RX + 14) != 1 || be16(RX + 16) != ETHERTYPE_IPV4) return;
  const op = be16(RX + 20);
  const spa = be32(RX + 28);
  const tpa = be32(RX + 38);
  if (tpa != myIp || myIp == 0) {
    if (arpLookup(spa) != 0) arpLearn(spa, RX + 22);
    return;
  }
  arpLearn(spa, RX + 22);
  if (op == 1) {
    arpSend(2, RX + 22, spa);
    arpReplies++;
  }
}

function handleIpv4(length: u32): void {
  const h = RX + 14;
  if (length < 34 || (load<u8>(h) >> 4) != 4) { dropped++; return; }
  const ihl = (<u32>load<u8>(h) & 0xf) * 4;
  const total = be16(h + 2);
  if (ihl < 20 || total < ihl || <u32>14 + total > length || inetChecksum(h, ihl) != 0) { dropped++; return; }
  if (dhcpListening && <u32>load<u8>(h + 9) == IP_UDP && total - ihl >= 8 && be16(h + ihl + 2) == DHCP_CLIENT_PORT) {
    const n = total - ihl - 8;
    dhcpLength = n < DHCP_IN_BYTES ? n : DHCP_IN_BYTES;
    memory.copy(DHCP_IN, h + ihl + 8, dhcpLength);
    return;
  }
  if (be32(h + 16) != myIp || (be16(h + 6) & 0x3fff) != 0) return; // not ours, or a fragment
  const src = be32(h + 12);
  const p = h + ihl;
  const n = total - ihl;
  const proto = <u32>load<u8>(h + 9);
  if (proto == IP_ICMP && n >= 8) {
    if (inetChecksum(p, n) != 0) { dropped++; return; }
    const type = <u32>load<u8>(p);
    if (type == ICMP_ECHO_REQUEST) {
      // Reply to the sender's MAC as it arrived (learned for the reply path too).
      arpLearn(src, RX + 6);
      ethHeader(RX + 6, ETHERTYPE_IPV4);
      const frame = ipHeader(src, IP_ICMP, n);
      const q = TX + 34;
      memory.copy(q, p, n);
      store<u8>(q, <u8>ICMP_ECHO_REPLY);
      putBe16(q + 2, 0);
      putBe16(q + 2, inetChecksum(q, n));
      transmit(frame);
    } else if (type == ICMP_ECHO_REPLY && be16(p + 4) == PING_ID && (be16(p + 6) == expectSeq || (be16(p + 6) >= acceptFromSeq && be16(p + 6) <= expectSeq))) {
      gotReply = true;
      echoReplies++;
    }
  } else if (proto == IP_UDP && n >= 8 && be16(p + 2) == UDP_ECHO_PORT && be16(p + 4) <= n) {
    const udpLength = be16(p + 4);
    if (udpLength < 8 || <u32>34 + udpLength > dev!.maxFrame()) { dropped++; return; }
    ethHeader(RX + 6, ETHERTYPE_IPV4);
    const frame = ipHeader(src, IP_UDP, udpLength);
    const q = TX + 34;
    memory.copy(q, p, udpLength);
    putBe16(q, UDP_ECHO_PORT);
    putBe16(q + 2, be16(p));
    putBe16(q + 6, 0); // checksum optional over IPv4 (RFC 768)
    transmit(frame);
    udpEchoes++;
  } else if (proto == IP_UDP && n >= 8 && be16(p + 2) == UDP_DISCARD_PORT) {
    udpDiscarded++;
  } else if (proto == IP_UDP && n >= 8 && be16(p + 2) == UDP_CLIENT_PORT && src == udpFromIp && be16(p) == udpFromPort && udpGot == 0) {
    const udpLength = be16(p + 4);
    if (udpLength < 8 || udpLength > n) { dropped++; return; }
    const m = udpLength - 8 < UDP_IN_BYTES ? udpLength - 8 : UDP_IN_BYTES;
    memory.copy(UDP_IN, p + 8, m);
    udpGot = m + 1;
  }
}

/** Handles every frame waiting in the NIC (at most 64 per call). Returns how many. */
export function netPoll(): u32 {
  if (dev === null) return 0;
  let n: u32 = 0;
  for (; n < 64; n++) {
    const length = dev!.receive(RX);
    if (length == 0) break;
    framesIn++;
    if (length < 14) continue;
    const type = be16(RX + 12);
    if (type == ETHERTYPE_ARP) handleArp(length);
    else if (type == ETHERTYPE_IPV4 && (myIp != 0 || dhcpListening)) handleIpv4(length);
  }
  return n;
}

/** Finds `ip`'s MAC by ARP (two requests); 0 when nobody answers. */
function resolve(ip: u32): usize {
  const key = ip;
  for (let attempt: u32 = 0; attempt < 2; attempt++) {
    const e = arpLookup(key);
    if (e != 0) return e;
    arpSend(1, 0, ip);
    for (let i: u32 = 0; i < POLL_BUDGET && arpLookup(key) == 0; i++) if (dev!.waitStep()) netPoll();
  }
  return arpLookup(key);
}

/** Ethernet header, UDP header and a fixed pattern for blast's datagrams (the IPv4 header is per frame). */
function blastFrame(target: usize, udpLength: u32): void {
  ethHeader(target, ETHERTYPE_IPV4);
  const q = TX + 34;
  putBe16(q, BLAST_PORT);
  putBe16(q + 2, UDP_DISCARD_PORT);
  putBe16(q + 4, udpLength);
  putBe16(q + 6, 0); // checksum optional over IPv4 (RFC 768)
  for (let i: u32 = 8; i < udpLength; i++) store<u8>(q + i, <u8>i);
}

/**
 * Sends `count` UDP datagrams in frames of `frameBytes` (60..1514) to `ip`'s discard port from
 * `flows` source ports in turn (40009, 40010, …), as fast
 * as the NIC takes them: a NIC that refuses (netvsc with every send section in flight) is given
 * wait steps until it takes the frame, up to the ping budget. Returns the frames sent.
 */
export function netBlast(ip: u32, count: u32, frameBytes: u32, flows: u32 = 1): u32 {
  const target = resolve(nextHop(ip));
  if (target == 0) {
    puts("blast: no ARP reply from ");
    putIp(ip);
    puts("\n");
    return 0;
  }
  const udpLength = frameBytes - 34;
  let sent: u32 = 0;
  // Answering ARP or a ping while the NIC is busy reuses TX: the frame is rebuilt after any poll.
  let dirty = true;
  for (; sent < count; sent++) {
    if (dirty) { blastFrame(target, udpLength); dirty = false; }
    const frame = ipHeader(ip, IP_UDP, udpLength);
    putBe32(TX + 42, sent);
    // Several flows (source ports) let a multi-queue receiver's RSS spread the datagrams.
    if (flows > 1) putBe16(TX + 34, BLAST_PORT + sent % flows);
    let tries: u32 = 0;
    while (!dev!.send(TX, frame)) {
      blastBusy++;
      if (++tries > POLL_BUDGET) break;
      if (dev!.waitStep() && netPoll() > 0) {
        blastFrame(target, udpLength);
        ipHeader(ip, IP_UDP, udpLength);
        putBe32(TX + 42, sent);
        if (flows > 1) putBe16(TX + 34, BLAST_PORT + sent % flows);
      }
    }
    if (tries > POLL_BUDGET) break;
    framesOut++;
  }
  // The fence: an echo request queued behind the datagrams is answered once the receiver has
  // taken all of them, so its reply marks the end of the transfer (for a timer on the wire). A
  // receiver still full drops it like a datagram: it is sent again after a short wait (200 steps,
  // 10 ms of netvsc's spin), so the mark comes at most that late.
  // Any try's answer ends it: on a slow host the answer to one try comes while the next waits.
  let fenced = false;
  acceptFromSeq = 0x8000;
  for (let k: u32 = 0; k < FENCE_TRIES && !fenced; k++) fenced = pingOnce(target, ip, 0x8000 + k, FENCE_BUDGET);
  acceptFromSeq = 0xffffffff;
  puts("blast: ");
  putDec(sent);
  puts(" frames of ");
  putDec(frameBytes);
  puts(" bytes sent to ");
  putIp(ip);
  puts(fenced ? ", fence answered\n" : ", fence not answered\n");
  return sent;
}

/** One echo request to `ip` (at MAC `target`), waiting up to `budget` wait steps for its reply; sets gotReply. */
function pingOnce(target: usize, ip: u32, seq: u32, budget: u32 = POLL_BUDGET): bool {
  ethHeader(target, ETHERTYPE_IPV4);
  const frame = ipHeader(ip, IP_ICMP, 8 + PING_DATA);
  const q = TX + 34;
  store<u8>(q, <u8>ICMP_ECHO_REQUEST);
  store<u8>(q + 1, 0);
  putBe16(q + 2, 0);
  putBe16(q + 4, PING_ID);
  putBe16(q + 6, seq);
  for (let i: u32 = 0; i < PING_DATA; i++) store<u8>(q + 8 + i, <u8>(i + seq));
  putBe16(q + 2, inetChecksum(q, 8 + PING_DATA));
  expectSeq = seq;
  gotReply = false;
  transmit(frame);
  for (let i: u32 = 0; i < budget && !gotReply; i++) if (dev!.waitStep()) netPoll();
  expectSeq = 0xffffffff;
  return gotReply;
}

/**
 * Sends `count` echo requests to `ip`, each waiting for its reply; prints one line each (none
 * when `quiet`: each character is an exit the benchmark would count) and a summary. Returns replies.
 */
export function netPing(ip: u32, count: u32, quiet: bool = false): u32 {
  const target = resolve(nextHop(ip));
  if (target == 0) {
    puts("ping: no ARP reply from ");
    putIp(ip);
    puts("\n");
    return 0;
  }
  let received: u32 = 0;
  for (let seq: u32 = 1; seq <= count; seq++) {
    pingOnce(target, ip, seq);
    if (gotReply) received++;
    if (quiet) continue;
    puts(gotReply ? "64 bytes from " : "no reply from ");
    putIp(ip);
    puts(": icmp_seq=");
    putDec(seq);
    puts("\n");
  }
  expectSeq = 0xffffffff;
  putDec(count);
  puts(" packets transmitted, ");
  putDec(received);
  puts(" received\n");
  return received;
}

/**
 * Sends `length` bytes at `data` (at most 1472) to `ip`:`port` from port 40007 and waits for the
 * answer from that address and port (up to three tries); prints it. Returns its length, or -1.
 */
export function netUdp(ip: u32, port: u32, data: usize, length: u32): i32 {
  const hop = nextHop(ip);
  const target = resolve(hop);
  if (target == 0) {
    puts("udp: no ARP reply from ");
    putIp(hop);
    puts("\n");
    return -1;
  }
  if (length > UDP_IN_BYTES) length = UDP_IN_BYTES;
  udpFromIp = ip;
  udpFromPort = port;
  udpGot = 0;
  for (let attempt: u32 = 0; attempt < UDP_TRIES && udpGot == 0; attempt++) {
    ethHeader(target, ETHERTYPE_IPV4);
    const frame = ipHeader(ip, IP_UDP, 8 + length);
    const q = TX + 34;
    putBe16(q, UDP_CLIENT_PORT);
    putBe16(q + 2, port);
    putBe16(q + 4, 8 + length);
    putBe16(q + 6, 0); // checksum optional over IPv4 (RFC 768)
    memory.copy(q + 8, data, length);
    transmit(frame);
    for (let i: u32 = 0; i < POLL_BUDGET && udpGot == 0; i++) if (dev!.waitStep()) netPoll();
  }
  const got = udpGot;
  udpFromIp = 0;
  udpGot = 0;
  if (got == 0) {
    puts("udp: no answer from ");
    putIp(ip); puts(":"); putDec(port);
    puts("\n");
    return -1;
  }
  puts("udp: ");
  putDec(got - 1);
  puts(" bytes from ");
  putIp(ip); puts(":"); putDec(port);
  puts(": ");
  // Printable ASCII as it came, anything else as '.'.
  for (let i: u32 = 0; i < got - 1; i++) {
    const c = load<u8>(UDP_IN + i);
    if (c < 0x20 || c >= 0x7f) store<u8>(UDP_IN + i, 0x2e);
  }
  putBytes(UDP_IN, got - 1);
  puts("\n");
  return <i32>(got - 1);
}

export function putIp(ip: u32): void {
  putDec(ip >> 24); puts(".");
  putDec((ip >> 16) & 0xff); puts(".");
  putDec((ip >> 8) & 0xff); puts(".");
  putDec(ip & 0xff);
}

export function netPrintCounters(): void {
  puts("net: frames_in="); putDec(framesIn);
  puts(" frames_out="); putDec(framesOut);
  puts(" arp_replies="); putDec(arpReplies);
  puts(" echo_replies_received="); putDec(echoReplies);
  puts(" udp_echoes="); putDec(udpEchoes);
  puts(" udp_discarded="); putDec(udpDiscarded);
  puts(" blast_busy="); putDec(blastBusy);
  puts(" dropped="); putDec(dropped);
  puts("\n");
  if (dev !== null) dev!.printCounters();
}

export function netDevice(): NetDevice | null { return dev; }

/** DHCP: keep datagrams to port 68 (`on`), forgetting any kept one. */
export function netDhcpListen(on: bool): void { dhcpListening = on; dhcpLength = 0; }
/** The kept DHCP datagram's length (0: none yet); its bytes are at netDhcpMessage(). Taking it clears it. */
export function netDhcpTake(): u32 { const n = dhcpLength; dhcpLength = 0; return n; }
export function netDhcpMessage(): usize { return DHCP_IN; }

/** Sends a UDP datagram of `length` bytes at `data` (at most 1472) from this address to `dstIp`, as an Ethernet broadcast. */
export function netSendUdpBroadcast(dstIp: u32, srcPort: u32, dstPort: u32, data: usize, length: u32): void {
  if (dev === null || length > NET_MAX_FRAME - 42) return;
  ethHeader(0, ETHERTYPE_IPV4);
  const frame = ipHeader(dstIp, IP_UDP, 8 + length);
  const q = TX + 34;
  putBe16(q, srcPort);
  putBe16(q + 2, dstPort);
  putBe16(q + 4, 8 + length);
  putBe16(q + 6, 0); // checksum optional over IPv4 (RFC 768)
  memory.copy(q + 8, data, length);
  transmit(frame);
}

/** One wait step of the NIC, handling what arrived. */
export function netWaitStep(): void { if (dev!.waitStep()) netPoll(); }

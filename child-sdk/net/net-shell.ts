// The network commands of the reference shells:
//   ip                       the NIC, its MAC and the address
//   ip <a.b.c.d>/<prefix> [gw]  sets the address and the default router (the UDP echo service on port 7 answers from then on)
//   ip dhcp                  takes the address a DHCP server on the link hands out
//   ping <a.b.c.d> [count] [q]  ICMP echo, count 1..10000 (default 3); q prints the summary only
//   blast <a.b.c.d> <count> <bytes> [flows]  UDP datagrams to the discard port in frames of 60 bytes up to the NIC's largest (1514, 9014 with jumbo frames), from 1..256 source ports in turn
//   udp <a.b.c.d> <port> <text>  one datagram, and the answer from that address and port printed
import { puts, putDec, putHex } from "../kernel/console";
import { tokenGpa, tokenIs, tokenLength, tokenNext, tokenNumber, numberBad } from "../kernel/shell-line";
import { dhcpConfigure } from "./dhcp-client";
import { netAddress, netBlast, netConfigure, netDevice, netPing, netPrefix, netRouter, netUdp, putIp } from "./ipv4-stack";

/** Parses the current token as a.b.c.d[/n]; returns false when it is not one. Sets IP_OUT/PREFIX_OUT. */
const PARSED: usize = memory.data(8, 8);

function parseAddress(allowPrefix: bool): bool {
  const p = tokenGpa();
  const n = tokenLength();
  let ip: u32 = 0;
  let part: u32 = 0;
  let digits: u32 = 0;
  let dots: u32 = 0;
  let prefixLength: u32 = 32;
  let i: u32 = 0;
  for (; i < n; i++) {
    const c = <u32>load<u8>(p + i);
    if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return false;
    } else if (c == 0x2e && digits > 0 && dots < 3) {
      ip = (ip << 8) | part;
      part = 0; digits = 0; dots++;
    } else if (c == 0x2f && allowPrefix) break;
    else return false;
  }
  if (dots != 3 || digits == 0) return false;
  ip = (ip << 8) | part;
  if (i < n) {
    prefixLength = 0;
    if (i + 1 == n) return false;
    for (let k = i + 1; k < n; k++) {
      const c = <u32>load<u8>(p + k);
      if (c < 0x30 || c > 0x39) return false;
      prefixLength = prefixLength * 10 + (c - 0x30);
      if (prefixLength > 32) return false;
    }
  }
  store<u32>(PARSED, ip);
  store<u32>(PARSED + 4, prefixLength);
  return true;
}

/** Handles `ip` and `ping`; false when the current token is neither. */
export function netCommand(): bool {
  if (tokenIs("ip")) {
    const d = netDevice();
    if (d === null) { puts("error: no network adapter\n"); return true; }
    if (tokenNext()) {
      if (tokenIs("dhcp")) dhcpConfigure();
      else if (!parseAddress(true)) { puts("error: usage: ip <a.b.c.d>/<prefix> [gateway] | ip dhcp\n"); return true; }
      else {
        const ip = load<u32>(PARSED), prefixLength = load<u32>(PARSED + 4);
        let gateway: u32 = 0;
        if (tokenNext()) {
          if (!parseAddress(false)) { puts("error: usage: ip <a.b.c.d>/<prefix> [gateway] | ip dhcp\n"); return true; }
          gateway = load<u32>(PARSED);
        }
        netConfigure(ip, prefixLength, gateway);
      }
    }
    puts("ip: ");
    d.describe();
    puts(", mac ");
    for (let i: u32 = 0; i < 6; i++) { if (i) puts(":"); putHex(d.macByte(i), 2); }
    puts(", address ");
    if (netAddress() == 0) puts("none");
    else { putIp(netAddress()); puts("/"); putDec(netPrefix()); }
    if (netRouter() != 0) { puts(", router "); putIp(netRouter()); }
    puts(", mtu ");
    putDec(d.maxFrame() - 14);
    puts("\n");
    return true;
  }
  if (tokenIs("ping")) {
    if (netDevice() === null) { puts("error: no network adapter\n"); return true; }
    if (netAddress() == 0) { puts("error: no address: set one with ip <a.b.c.d>/<prefix>\n"); return true; }
    if (!tokenNext() || !parseAddress(false)) { puts("error: usage: ping <a.b.c.d> [count]\n"); return true; }
    const ip = load<u32>(PARSED);
    let count: u32 = 3;
    let quiet = false;
    if (tokenNext()) {
      const c = tokenNumber();
      if (numberBad() || c < 1 || c > 10000) { puts("error: count must be 1..10000\n"); return true; }
      count = <u32>c;
      if (tokenNext()) {
        if (!tokenIs("q")) { puts("error: usage: ping <a.b.c.d> [count] [q]\n"); return true; }
        quiet = true;
      }
    }
    netPing(ip, count, quiet);
    return true;
  }
  if (tokenIs("blast")) {
    if (netDevice() === null) { puts("error: no network adapter\n"); return true; }
    if (netAddress() == 0) { puts("error: no address: set one with ip <a.b.c.d>/<prefix>\n"); return true; }
    const usage = "error: usage: blast <a.b.c.d> <count 1..10000000> <frame bytes 60..the NIC's largest frame> [flows 1..256]\n";
    if (!tokenNext() || !parseAddress(false)) { puts(usage); return true; }
    const ip = load<u32>(PARSED);
    if (!tokenNext()) { puts(usage); return true; }
    const count = tokenNumber();
    if (numberBad() || count < 1 || count > 10000000 || !tokenNext()) { puts(usage); return true; }
    const bytes = tokenNumber();
    if (numberBad() || bytes < 60 || bytes > <u64>netDevice()!.maxFrame()) { puts(usage); return true; }
    let flows: u64 = 1;
    if (tokenNext()) {
      flows = tokenNumber();
      if (numberBad() || flows < 1 || flows > 256) { puts(usage); return true; }
    }
    netBlast(ip, <u32>count, <u32>bytes, <u32>flows);
    return true;
  }
  if (tokenIs("udp")) {
    const usage = "error: usage: udp <a.b.c.d> <port 1..65535> <text>\n";
    if (netDevice() === null) { puts("error: no network adapter\n"); return true; }
    if (netAddress() == 0) { puts("error: no address: set one with ip <a.b.c.d>/<prefix>\n"); return true; }
    if (!tokenNext() || !parseAddress(false)) { puts(usage); return true; }
    const ip = load<u32>(PARSED);
    if (!tokenNext()) { puts(usage); return true; }
    const port = tokenNumber();
    if (numberBad() || port < 1 || port > 65535 || !tokenNext()) { puts(usage); return true; }
    netUdp(ip, <u32>port, tokenGpa(), tokenLength());
    return true;
  }
  return false;
}

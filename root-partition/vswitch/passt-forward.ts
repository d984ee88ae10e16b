/**
 * Port forwarding of an internal switch's host stack, as a switch definition spells it:
 * `udp:HOSTPORT:GUESTPORT` or `tcp:HOSTPORT:GUESTPORT` (passt's `-u`/`-t` with one port each).
 */
export interface PortForward {
  protocol: 'udp' | 'tcp';
  hostPort: number;
  guestPort: number;
}

const SPEC = /^(udp|tcp):(\d{1,5}):(\d{1,5})$/;

/** The forward `spec` means, or a sentence saying why it is not one. */
export function parsePortForward(spec: string): PortForward | string {
  const m = SPEC.exec(spec);
  if (!m) return `"${spec}" is not udp|tcp:HOSTPORT:GUESTPORT`;
  const hostPort = Number(m[2]),
    guestPort = Number(m[3]);
  if (hostPort < 1 || hostPort > 65535 || guestPort < 1 || guestPort > 65535) return `"${spec}": ports are 1..65535`;
  return { protocol: m[1] as 'udp' | 'tcp', hostPort, guestPort };
}

/** passt's arguments for the forwards. */
export function passtForwardArgs(forwards: readonly PortForward[]): string[] {
  return forwards.flatMap((f) => [f.protocol === 'udp' ? '-u' : '-t', `${f.hostPort}:${f.guestPort}`]);
}

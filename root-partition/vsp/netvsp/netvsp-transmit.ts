/**
 * The bytes of one SEND_RNDIS_PKT gathered into one private copy (Linux netvsc.c
 * netvsc_send_pkt): a send-buffer section, GPA ranges, or a section followed by ranges, every
 * length checked first. The guest may change its pages while the host parses: only the copy is read.
 */
import { MAX_RNDIS_TRANSFER_BYTES, type NetVspIncoming, type SendBufferState } from './netvsp-channel-types.ts';
import { NO_SEND_SECTION, SEND_SECTION_SIZE } from './nvsp-protocol.ts';

/** The RNDIS bytes of the transmission, or why it is refused. */
export function gatherRndisBytes(p: NetVspIncoming, send: SendBufferState | undefined, sectionIndex: number, sectionSize: number): Uint8Array | string {
  let total = 0;
  let head: Uint8Array | undefined;
  if (sectionIndex !== NO_SEND_SECTION) {
    if (!send || sectionIndex >= send.sections) return `send section ${sectionIndex} does not exist`;
    if (sectionSize === 0 || sectionSize > SEND_SECTION_SIZE) return `send section size ${sectionSize} is outside 1..${SEND_SECTION_SIZE}`;
    head = send.buffer.read(sectionIndex * SEND_SECTION_SIZE, sectionSize);
    total += sectionSize;
  }
  let segments: readonly Uint8Array[] = [];
  if (p.kind === 'gpa-direct') {
    if (!p.gpaSegments) return 'GPA ranges refused';
    segments = p.gpaSegments;
    for (const s of segments) total += s.length;
  }
  if (total === 0) return 'SEND_RNDIS_PKT with no RNDIS bytes';
  if (total > MAX_RNDIS_TRANSFER_BYTES) return `${total} RNDIS bytes exceed ${MAX_RNDIS_TRANSFER_BYTES}`;
  const buf = new Uint8Array(total);
  let at = 0;
  if (head) buf.set(head, 0), (at = head.length);
  for (const s of segments) buf.set(s, at), (at += s.length);
  return buf;
}

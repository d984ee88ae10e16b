/** Decodes the transfer-page extended header the channel produced (bytes after the descriptor). */
export function decodeTransferPageHeaderBytes(h: Uint8Array): { byteCount: number; byteOffset: number }[] {
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const n = dv.getUint32(4, true);
  return Array.from({ length: n }, (_, i) => ({ byteCount: dv.getUint32(8 + 8 * i, true), byteOffset: dv.getUint32(12 + 8 * i, true) }));
}

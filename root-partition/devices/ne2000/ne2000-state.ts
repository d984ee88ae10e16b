import { encodeState, openState, stateError, type DeviceStateRecord } from '../device-state.ts';
import { NE_RAM_END } from './dp8390-registers.ts';
import type { Ne2000 } from './ne2000.ts';

const STATE_VERSION = 1;

/** The card's registers and RAM (the PROM is rebuilt from the configured MAC, which must match). */
export function saveNe2000State(card: Ne2000): DeviceStateRecord {
  const { cr, isr, imr, dcr, rcr, tcr, rsr, tsr, pstart, pstop, bnry, tpsr, tbcr, rsar, rbcr, curr } = card;
  return {
    name: card.name,
    version: STATE_VERSION,
    state: encodeState({
      cr,
      isr,
      imr,
      dcr,
      rcr,
      tcr,
      rsr,
      tsr,
      pstart,
      pstop,
      bnry,
      tpsr,
      tbcr,
      rsar,
      rbcr,
      curr,
      par: card.par.slice(),
      mar: card.mar.slice(),
      tally: Uint8Array.from(card.tally),
      mac: card.mac.slice(),
      memory: card.memory.slice(),
    }),
  };
}

/** All fields are checked before any is applied: a bad record leaves the card unchanged. */
export function restoreNe2000State(card: Ne2000, record: DeviceStateRecord): void {
  const r = openState(record, card.name, STATE_VERSION);
  const byte = (k: string) => r.int(k, 0, 0xff);
  const word = (k: string) => r.int(k, 0, 0xffff);
  const v = {
    cr: byte('cr'),
    isr: byte('isr'),
    imr: byte('imr'),
    dcr: byte('dcr'),
    rcr: byte('rcr'),
    tcr: byte('tcr'),
    rsr: byte('rsr'),
    tsr: byte('tsr'),
    pstart: byte('pstart'),
    pstop: byte('pstop'),
    bnry: byte('bnry'),
    tpsr: byte('tpsr'),
    curr: byte('curr'),
    tbcr: word('tbcr'),
    rsar: word('rsar'),
    rbcr: word('rbcr'),
  };
  const par = r.bytes('par', 6, 6);
  const mar = r.bytes('mar', 8, 8);
  const tally = r.bytes('tally', 3, 3);
  const mac = r.bytes('mac', 6, 6);
  const memory = r.bytes('memory', NE_RAM_END, NE_RAM_END);
  if (!mac.every((b, i) => b === card.mac[i])) throw stateError(`${card.name}: saved state belongs to another MAC address`);
  Object.assign(card, v);
  card.par.set(par);
  card.mar.set(mar);
  for (let i = 0; i < 3; i++) card.tally[i] = tally[i]!;
  card.memory.set(memory);
  card.refreshInterrupt();
}

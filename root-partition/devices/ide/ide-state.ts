import { checkPciIdentity, encodeState, openState, stateError, type DeviceStateRecord, type StateReader } from '../device-state.ts';
import type { AtaChannel, PioTransfer } from './ata-channel.ts';
import type { AtaDrive, ChsGeometry, TransferMode } from './ata-drive.ts';
import { MAX_MULTIPLE_SECTORS, SECTOR_SIZE } from './ata-protocol.ts';
import type { DmaRequest } from './ata-dma.ts';
import type { Piix4Ide } from './piix4-ide.ts';

export const IDE_STATE_NAME = 'piix4-ide';
export const IDE_STATE_VERSION = 1;

/**
 * Saved state of the PIIX4 IDE controller: PCI configuration, bus-master registers, each channel's
 * task file, status, control, pending interrupt and any data phase in flight (with the DRQ block's
 * bytes), and each drive's settings. Disk contents are the backend's business, not this record's.
 */
export function saveIdeState(ide: Piix4Ide): DeviceStateRecord {
  const [bm0, bm1] = ide.busMaster.channels;
  return {
    name: IDE_STATE_NAME,
    version: IDE_STATE_VERSION,
    state: encodeState({
      config: ide.config.bytes.slice(),
      bm0: { command: bm0.command, status: bm0.status, prdTable: bm0.prdTable },
      bm1: { command: bm1.command, status: bm1.status, prdTable: bm1.prdTable },
      ch0: saveChannel(ide.channels[0]),
      ch1: saveChannel(ide.channels[1]),
    }),
  };
}

function saveDrive(d: AtaDrive | undefined): Record<string, unknown> | null {
  if (!d) return null;
  return {
    multipleSectors: d.multipleSectors,
    cylinders: d.geometry.cylinders,
    heads: d.geometry.heads,
    sectorsPerTrack: d.geometry.sectorsPerTrack,
    modeKind: d.transferMode.kind,
    mode: d.transferMode.mode,
    writeCache: d.writeCache,
    readLookAhead: d.readLookAhead,
  };
}

function saveChannel(ch: AtaChannel): Record<string, unknown> {
  const tf = ch.taskFile;
  const p = ch.pio;
  const d = ch.dma;
  return {
    taskFile: {
      features: tf.features,
      featuresPrev: tf.featuresPrev,
      count: tf.count,
      countPrev: tf.countPrev,
      lbaLow: tf.lbaLow,
      lbaLowPrev: tf.lbaLowPrev,
      lbaMid: tf.lbaMid,
      lbaMidPrev: tf.lbaMidPrev,
      lbaHigh: tf.lbaHigh,
      lbaHighPrev: tf.lbaHighPrev,
      device: tf.device,
    },
    status0: ch.status[0],
    status1: ch.status[1],
    error0: ch.error[0],
    error1: ch.error[1],
    control: ch.control,
    intrq: ch.intrq,
    drive0: saveDrive(ch.drives[0]),
    drive1: saveDrive(ch.drives[1]),
    pio: p
      ? {
          dir: p.dir,
          source: p.source,
          drive: ch.drives[0] === p.drive ? 0 : 1,
          lba: p.lba,
          remaining: p.remaining,
          blockSectors: p.blockSectors,
          blockBytes: p.blockBytes,
          pos: p.pos,
          loaded: p.loaded,
          fua: p.fua,
          // The DRQ block's bytes when they exist only here: loaded for data-in, partly written for data-out.
          buffer: p.loaded || p.dir === 'out' ? ch.buffer.slice(0, p.blockBytes) : new Uint8Array(0),
        }
      : null,
    dma: d ? { drive: d.index, lba: d.lba, count: d.count, toMemory: d.toMemory, fua: d.fua } : null,
  };
}

/** Restores a record from `saveIdeState` into a controller built with the same drives. A bad record changes nothing. */
export function restoreIdeState(ide: Piix4Ide, record: DeviceStateRecord): void {
  const r = openState(record, IDE_STATE_NAME, IDE_STATE_VERSION);
  const config = r.bytes('config', 256, 256);
  checkPciIdentity(IDE_STATE_NAME, ide.config.bytes, config);
  const bms = [readBm(r.child('bm0')), readBm(r.child('bm1'))];
  const channels = [readChannel(r.child('ch0'), ide.channels[0]), readChannel(r.child('ch1'), ide.channels[1])];
  // Everything checked: apply.
  ide.config.bytes.set(config);
  ide.busMaster.channels.forEach((bm, i) => Object.assign(bm, bms[i]));
  ide.channels.forEach((ch, i) => channels[i]!(ch));
  ide.refreshDecode();
}

function readBm(r: StateReader): { command: number; status: number; prdTable: number } {
  return { command: r.int('command', 0, 0x09), status: r.int('status', 0, 0x67), prdTable: (r.int('prdTable', 0, 0xffffffff) & ~3) >>> 0 };
}

const MODE_LIMIT: Record<TransferMode['kind'], number> = { pio: 4, mwdma: 2, udma: 5 };

type DriveSettings = Pick<AtaDrive, 'multipleSectors' | 'writeCache' | 'readLookAhead'> & { geometry: ChsGeometry; transferMode: TransferMode };

function readDrive(r: StateReader | undefined, d: AtaDrive | undefined): DriveSettings | undefined {
  if (!r && !d) return undefined;
  if (!r || !d) throw stateError('drive presence differs from the saved configuration');
  const multipleSectors = r.int('multipleSectors', 0, MAX_MULTIPLE_SECTORS);
  if (multipleSectors & (multipleSectors - 1)) throw stateError(`multiple count ${multipleSectors} is not a power of two`);
  const kind = r.str('modeKind', ['pio', 'mwdma', 'udma'] as const);
  return {
    multipleSectors,
    geometry: { cylinders: r.int('cylinders', 1, 65535), heads: r.int('heads', 1, 16), sectorsPerTrack: r.int('sectorsPerTrack', 1, 255) },
    transferMode: { kind, mode: r.int('mode', 0, MODE_LIMIT[kind]) },
    writeCache: r.bool('writeCache'),
    readLookAhead: r.bool('readLookAhead'),
  };
}

function readPio(r: StateReader, ch: AtaChannel): { transfer: PioTransfer; buffer: Uint8Array | undefined } {
  const index = r.int('drive', 0, 1);
  const drive = ch.drives[index];
  if (!drive) throw stateError(`${ch.name}: data phase on an absent drive`);
  const dir = r.str('dir', ['in', 'out'] as const);
  const source = r.str('source', ['disk', 'buffer'] as const);
  const blockSectors = r.int('blockSectors', 1, MAX_MULTIPLE_SECTORS);
  const remaining = r.int('remaining', 1, 65536);
  const lba = r.int('lba', 0, drive.sectorCount - 1);
  const blockBytes = r.int('blockBytes', SECTOR_SIZE, blockSectors * SECTOR_SIZE);
  const pos = r.int('pos', 0, blockBytes - 1);
  const loaded = r.bool('loaded');
  // Absent from records written before WRITE MULTIPLE FUA EXT forced unit access.
  const fua = r.has('fua') ? r.bool('fua') : false;
  if (blockBytes % SECTOR_SIZE || pos % 2 || blockBytes > remaining * SECTOR_SIZE) throw stateError(`${ch.name}: inconsistent data phase`);
  if (source === 'disk' && lba + remaining > drive.sectorCount) throw stateError(`${ch.name}: data phase past the end of the disk`);
  if (source === 'buffer' && (dir !== 'in' || !loaded || remaining !== 1)) throw stateError(`${ch.name}: inconsistent buffer data phase`);
  const needsBuffer = loaded || dir === 'out';
  const buffer = r.bytes('buffer', needsBuffer ? blockBytes : 0, needsBuffer ? blockBytes : 0);
  return { transfer: { dir, source, drive, lba, remaining, blockSectors, blockBytes, pos, loaded, fua }, buffer: needsBuffer ? buffer : undefined };
}

function readDma(r: StateReader, ch: AtaChannel): DmaRequest {
  const index = r.int('drive', 0, 1) as 0 | 1;
  const drive = ch.drives[index];
  if (!drive) throw stateError(`${ch.name}: DMA on an absent drive`);
  const count = r.int('count', 1, 65536);
  const lba = r.int('lba', 0, drive.sectorCount - count);
  return { index, drive, lba, count, toMemory: r.bool('toMemory'), fua: r.bool('fua') };
}

function readChannel(r: StateReader, ch: AtaChannel): (ch: AtaChannel) => void {
  const t = r.child('taskFile');
  const byte = (k: string) => t.int(k, 0, 0xff);
  const taskFile = {
    features: byte('features'),
    featuresPrev: byte('featuresPrev'),
    count: byte('count'),
    countPrev: byte('countPrev'),
    lbaLow: byte('lbaLow'),
    lbaLowPrev: byte('lbaLowPrev'),
    lbaMid: byte('lbaMid'),
    lbaMidPrev: byte('lbaMidPrev'),
    lbaHigh: byte('lbaHigh'),
    lbaHighPrev: byte('lbaHighPrev'),
    device: byte('device'),
  };
  const status: [number, number] = [r.int('status0', 0, 0xff), r.int('status1', 0, 0xff)];
  const error: [number, number] = [r.int('error0', 0, 0xff), r.int('error1', 0, 0xff)];
  const control = r.int('control', 0, 0x86);
  const intrq = r.bool('intrq');
  const drives = [readDrive(r.optional('drive0'), ch.drives[0]), readDrive(r.optional('drive1'), ch.drives[1])];
  const pioReader = r.optional('pio');
  const pio = pioReader ? readPio(pioReader, ch) : undefined;
  const dmaReader = r.optional('dma');
  const dma = dmaReader ? readDma(dmaReader, ch) : undefined;
  return (target) => {
    Object.assign(target.taskFile, taskFile);
    target.status[0] = status[0];
    target.status[1] = status[1];
    target.error[0] = error[0];
    target.error[1] = error[1];
    target.control = control;
    target.intrq = intrq;
    drives.forEach((s, i) => {
      if (s) Object.assign(target.drives[i]!, s);
    });
    if (pio?.buffer) target.buffer.set(pio.buffer);
    target.pio = pio?.transfer;
    target.dma = dma;
    target.syncIrq();
  };
}

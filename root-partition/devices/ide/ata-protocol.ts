/**
 * ATA register layout, bits and command codes (ATA/ATAPI-6 T13/1410D;
 * Linux include/linux/ata.h; OpenVMM vm/devices/storage/ide/src/protocol.rs).
 */

/** Command block registers: offsets from 0x1F0 / 0x170. */
export const AtaReg = { Data: 0, ErrorFeatures: 1, SectorCount: 2, LbaLow: 3, LbaMid: 4, LbaHigh: 5, Device: 6, StatusCommand: 7 } as const;

export const AtaStatus = { Bsy: 0x80, Drdy: 0x40, Df: 0x20, Dsc: 0x10, Drq: 0x08, Corr: 0x04, Idx: 0x02, Err: 0x01 } as const;
export const AtaError = { Bbk: 0x80, Unc: 0x40, Mc: 0x20, Idnf: 0x10, Mcr: 0x08, Abrt: 0x04, Tk0nf: 0x02, Amnf: 0x01 } as const;
/** Device control register (0x3F6 / 0x376 write). */
export const AtaControl = { Nien: 0x02, Srst: 0x04, Hob: 0x80 } as const;
/** Device register bits. */
export const AtaDevice = { Lba: 0x40, Dev: 0x10, Obsolete: 0xa0 } as const;

/** Idle, ready drive: DRDY | DSC. */
export const STATUS_READY = AtaStatus.Drdy | AtaStatus.Dsc;

export const AtaCommand = {
  DeviceReset: 0x08,
  ReadSectors: 0x20,
  ReadSectorsNoRetry: 0x21,
  ReadSectorsExt: 0x24,
  ReadDmaExt: 0x25,
  ReadMultipleExt: 0x29,
  WriteSectors: 0x30,
  WriteSectorsNoRetry: 0x31,
  WriteSectorsExt: 0x34,
  WriteDmaExt: 0x35,
  WriteMultipleExt: 0x39,
  WriteDmaFuaExt: 0x3d,
  ReadVerifySectors: 0x40,
  ReadVerifySectorsNoRetry: 0x41,
  ReadVerifySectorsExt: 0x42,
  Seek: 0x70,
  ExecuteDeviceDiagnostic: 0x90,
  InitializeDeviceParameters: 0x91,
  Packet: 0xa0,
  IdentifyPacketDevice: 0xa1,
  ReadMultiple: 0xc4,
  WriteMultiple: 0xc5,
  SetMultipleMode: 0xc6,
  ReadDma: 0xc8,
  ReadDmaNoRetry: 0xc9,
  WriteDma: 0xca,
  WriteDmaNoRetry: 0xcb,
  WriteMultipleFuaExt: 0xce,
  StandbyImmediate: 0xe0,
  IdleImmediate: 0xe1,
  Standby: 0xe2,
  Idle: 0xe3,
  CheckPowerMode: 0xe5,
  Sleep: 0xe6,
  FlushCache: 0xe7,
  FlushCacheExt: 0xea,
  IdentifyDevice: 0xec,
  SetFeatures: 0xef,
} as const;

/** SET FEATURES subcommands (features register). */
export const SetFeature = {
  EnableWriteCache: 0x02,
  SetTransferMode: 0x03,
  DisableReadLookAhead: 0x55,
  DisableRevertToDefaults: 0x66,
  DisableWriteCache: 0x82,
  EnableReadLookAhead: 0xaa,
  EnableRevertToDefaults: 0xcc,
} as const;

export const SECTOR_SIZE = 512;
/** Largest DRQ block of READ/WRITE MULTIPLE (IDENTIFY word 47; OpenVMM's default too). */
export const MAX_MULTIPLE_SECTORS = 128;
/** Addressing limits (OpenVMM ide/src/protocol.rs constants). */
export const MAX_LBA28_SECTORS = 0x0fffffff;
export const MAX_LBA48_SECTORS = 0xffffffffffff;
export const MAX_CHS_SECTORS = 0xfc0000;

/** Bus Master IDE registers (SFF-8038i; PIIX4 datasheet BMIDE): offsets from BAR4, +8 for secondary. */
export const BmReg = { Command: 0, Status: 2, PrdTable: 4 } as const;
export const BmCommand = { Start: 0x01, ReadFromDevice: 0x08 } as const;
export const BmStatus = { Active: 0x01, Error: 0x02, Interrupt: 0x04, Drive0DmaCapable: 0x20, Drive1DmaCapable: 0x40, Simplex: 0x80 } as const;
/** PRD entry: 8 bytes {u32 physical base (bit 0 zero), u16 byte count (0 = 64 KiB), u8 reserved, u8 bit 7 EOT}. */
export const PRD_ENTRY_SIZE = 8;
export const PRD_EOT = 0x80;
/** A PRD table may not cross a 64 KiB boundary (SFF-8038i, Physical Region Descriptor table), which bounds it to 8192 entries. */
export const PRD_TABLE_ALIGN = 0x10000;

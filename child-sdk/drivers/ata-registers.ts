// ATA register layout, bits and command codes as a host driver sees them (ATA/ATAPI-6, T13/1410D:
// command block and control block registers, command codes) and the SFF-8038i bus-master
// registers the PIIX4 implements at BAR4 (PIIX4 datasheet, BMICX/BMISX/BMIDTPX).

/** Legacy (compatibility-mode) channel resources (PIIX4 datasheet, IDE I/O space). */
export const ATA_PRIMARY_COMMAND: u32 = 0x1f0;
export const ATA_PRIMARY_CONTROL: u32 = 0x3f6;
export const ATA_PRIMARY_IRQ: u32 = 14;
export const ATA_SECONDARY_COMMAND: u32 = 0x170;
export const ATA_SECONDARY_CONTROL: u32 = 0x376;
export const ATA_SECONDARY_IRQ: u32 = 15;

/** Command block register offsets. */
export const REG_DATA: u32 = 0;
export const REG_ERROR_FEATURES: u32 = 1;
export const REG_SECTOR_COUNT: u32 = 2;
export const REG_LBA_LOW: u32 = 3;
export const REG_LBA_MID: u32 = 4;
export const REG_LBA_HIGH: u32 = 5;
export const REG_DEVICE: u32 = 6;
export const REG_STATUS_COMMAND: u32 = 7;

/** Status register. */
export const STATUS_BSY: u32 = 0x80;
export const STATUS_DRDY: u32 = 0x40;
export const STATUS_DF: u32 = 0x20;
export const STATUS_DRQ: u32 = 0x08;
export const STATUS_ERR: u32 = 0x01;

/** Error register. */
export const ERROR_UNC: u32 = 0x40;
export const ERROR_IDNF: u32 = 0x10;
export const ERROR_ABRT: u32 = 0x04;

/** Device register: LBA addressing, DEV (drive 1); bits 7 and 5 are obsolete and set by convention. */
export const DEVICE_LBA: u32 = 0x40;
export const DEVICE_DEV: u32 = 0x10;
export const DEVICE_OBSOLETE: u32 = 0xa0;

/** Device control register: nIEN masks INTRQ, SRST resets, HOB reads the previous contents. */
export const CONTROL_NIEN: u32 = 0x02;

/** Command register opcodes the driver issues (ATA/ATAPI-6: PIO, MULTIPLE, DMA, their 48-bit EXT forms, and housekeeping). */
export const CMD_READ_SECTORS: u32 = 0x20;
export const CMD_READ_SECTORS_EXT: u32 = 0x24;
export const CMD_READ_DMA_EXT: u32 = 0x25;
export const CMD_READ_MULTIPLE_EXT: u32 = 0x29;
export const CMD_WRITE_SECTORS: u32 = 0x30;
export const CMD_WRITE_SECTORS_EXT: u32 = 0x34;
export const CMD_WRITE_DMA_EXT: u32 = 0x35;
export const CMD_WRITE_MULTIPLE_EXT: u32 = 0x39;
export const CMD_READ_MULTIPLE: u32 = 0xc4;
export const CMD_WRITE_MULTIPLE: u32 = 0xc5;
export const CMD_SET_MULTIPLE_MODE: u32 = 0xc6;
export const CMD_READ_DMA: u32 = 0xc8;
export const CMD_WRITE_DMA: u32 = 0xca;
export const CMD_FLUSH_CACHE: u32 = 0xe7;
export const CMD_FLUSH_CACHE_EXT: u32 = 0xea;
export const CMD_IDENTIFY_DEVICE: u32 = 0xec;
export const CMD_SET_FEATURES: u32 = 0xef;
/** SET FEATURES 03h: set transfer mode; count 20h+n selects multiword DMA mode n. */
export const FEATURE_SET_TRANSFER_MODE: u32 = 0x03;
export const TRANSFER_MODE_MWDMA2: u32 = 0x22;

/** IDENTIFY DEVICE words (ATA/ATAPI-6, IDENTIFY DEVICE data table). */
export const ID_MAX_MULTIPLE: u32 = 47; // bits 7:0: largest DRQ block of READ/WRITE MULTIPLE
export const ID_CAPABILITIES: u32 = 49; // bit 8 DMA, bit 9 LBA
export const ID_LBA28_CAPACITY: u32 = 60; // words 60–61
export const ID_COMMAND_SET_2: u32 = 83; // bit 10 48-bit address, bit 13 FLUSH CACHE EXT
export const ID_LBA48_CAPACITY: u32 = 100; // words 100–103

/** The highest sector count a 28-bit command can address (LBA 0FFFFFFFh is the last). */
export const LBA28_LIMIT: u64 = 0x0fff_ffff;

/** Bus-master IDE registers, offsets from BAR4 (+8 for the secondary channel). */
export const BM_COMMAND: u32 = 0;
export const BM_STATUS: u32 = 2;
export const BM_PRD_TABLE: u32 = 4;
/** BM command: Start/Stop (bit 0), Read/Write control (bit 3: 1 = the bus master writes memory). */
export const BM_CMD_START: u32 = 0x01;
export const BM_CMD_TO_MEMORY: u32 = 0x08;
/** BM status: Active, Error and Interrupt (both write-1-to-clear), drive 0/1 DMA capable. */
export const BM_ST_ACTIVE: u32 = 0x01;
export const BM_ST_ERROR: u32 = 0x02;
export const BM_ST_INTERRUPT: u32 = 0x04;
export const BM_ST_DRIVE0_CAPABLE: u32 = 0x20;
export const BM_ST_DRIVE1_CAPABLE: u32 = 0x40;

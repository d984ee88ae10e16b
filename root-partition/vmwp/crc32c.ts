/** CRC-32C lives with the disk formats, its other user (VHDX); saved-state files use the same one. */
export { crc32c } from '../storage/crc32c.ts';

/**
 * CIM data types and values (DSP0004 "Datatypes"). Integers up to 32 bits are JS numbers;
 * uint64/sint64 are bigint because number is exact only to 2^53 (DSP0004 integer ranges). Datetimes stay
 * in their 25-character DMTF text form. References are object paths; a string that carries an
 * EmbeddedInstance qualifier holds a parsed CimInstance.
 */
import type { CimInstance } from './instance.ts';
import type { CimObjectPath } from './object-path.ts';

export type CimType =
  | 'boolean'
  | 'string'
  | 'char16'
  | 'uint8'
  | 'sint8'
  | 'uint16'
  | 'sint16'
  | 'uint32'
  | 'sint32'
  | 'uint64'
  | 'sint64'
  | 'real32'
  | 'real64'
  | 'datetime'
  | 'reference';

export type CimScalar = string | number | bigint | boolean | CimObjectPath | CimInstance;
export type CimValue = CimScalar | CimScalar[] | null;

/** Integer ranges (DSP0004 "Datatypes"). */
export const IntegerRange: Record<string, readonly [bigint, bigint]> = {
  uint8: [0n, 255n],
  sint8: [-128n, 127n],
  uint16: [0n, 65535n],
  sint16: [-32768n, 32767n],
  uint32: [0n, 4294967295n],
  sint32: [-2147483648n, 2147483647n],
  uint64: [0n, 18446744073709551615n],
  sint64: [-9223372036854775808n, 9223372036854775807n],
};

export function isIntegerType(type: CimType): boolean {
  return type in IntegerRange;
}

export const CIM_TYPES: readonly CimType[] = [
  'boolean',
  'string',
  'char16',
  'uint8',
  'sint8',
  'uint16',
  'sint16',
  'uint32',
  'sint32',
  'uint64',
  'sint64',
  'real32',
  'real64',
  'datetime',
  'reference',
];

export function isCimType(text: string): text is CimType {
  return (CIM_TYPES as readonly string[]).includes(text);
}

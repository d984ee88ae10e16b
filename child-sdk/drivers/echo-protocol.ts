// The echo device's wire format, guest copy (host: root-partition/vsp/echo/echo-protocol.ts,
// where the layouts are described). A tsvisor example device, not a Hyper-V one.

export const ECHO_OP_ECHO: u32 = 1;
export const ECHO_OP_REVERSE: u32 = 2;
export const ECHO_OP_CHECKSUM: u32 = 3;
export const ECHO_REQUEST_HEADER: u32 = 8;
export const ECHO_GPA_COMPLETION_SIZE: u32 = 12;
export const ECHO_MAX_MESSAGE: u32 = 1024;
export const ECHO_STATUS_SUCCESS: u32 = 0;
export const ECHO_STATUS_INVALID_PARAMETER: u32 = 0xc000000d;

/** Interface GUID a7b3d43e-9b0c-4c62-8f3a-5e6d2c1b0e11 in wire layout (Data1/2/3 little-endian). */
export const ECHO_INTERFACE_TYPE: usize = memory.data<u8>([
  0x3e, 0xd4, 0xb3, 0xa7, 0x0c, 0x9b, 0x62, 0x4c, 0x8f, 0x3a, 0x5e, 0x6d, 0x2c, 0x1b, 0x0e, 0x11,
]);

// The echo device's wire format, guest copy (host: root-partition/vsp/echo/echo-protocol.ts,
// where the layouts are described). A tsvisor example device, not a Hyper-V one.
import { EchoInterface } from "../../abi/vmbus-channel";

export const ECHO_OP_ECHO: u32 = 1;
export const ECHO_OP_REVERSE: u32 = 2;
export const ECHO_OP_CHECKSUM: u32 = 3;
export const ECHO_REQUEST_HEADER: u32 = 8;
export const ECHO_GPA_COMPLETION_SIZE: u32 = 12;
export const ECHO_MAX_MESSAGE: u32 = 1024;
export const ECHO_STATUS_SUCCESS: u32 = 0;
export const ECHO_STATUS_INVALID_PARAMETER: u32 = 0xc000000d;

/** The echo device's interface GUID in wire layout (abi/vmbus-channel.ts). */
export const ECHO_INTERFACE_TYPE: usize = memory.data<u32>([EchoInterface.W0, EchoInterface.W1, EchoInterface.W2, EchoInterface.W3]);

/**
 * The echo device's wire format: a tsvisor example device, not a Hyper-V one. The guest's side is
 * child-sdk/drivers/echo-protocol.ts; the interface GUID both use is in abi/vmbus-channel.ts.
 *
 * In-band request (VM_PKT_DATA_INBAND): op u32 @0 = ECHO_OP_ECHO, length u32 @4, data @8.
 *   Completion requested → VM_PKT_COMP with the same transaction id and the request's bytes.
 *   Otherwise → VM_PKT_DATA_INBAND with the same transaction id and the request's bytes.
 * GPA-direct request (VM_PKT_DATA_USING_GPA_DIRECT, completion requested): op u32 @0 =
 *   ECHO_OP_REVERSE (reverse the described guest buffer in place) or ECHO_OP_CHECKSUM (leave it);
 *   VM_PKT_COMP: status u32 @0 (NTSTATUS), byte_count u32 @4, checksum u32 @8 (the sum of the
 *   buffer's bytes mod 2^32, before any change).
 */
import { EchoInterface } from '../../../abi/vmbus-channel.ts';
import { guidFromWords } from '../../../vmbus/protocol/guid.ts';

export const ECHO_INTERFACE_TYPE = guidFromWords(EchoInterface);
export const ECHO_INTERFACE_INSTANCE = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

export const ECHO_OP_ECHO = 1;
export const ECHO_OP_REVERSE = 2;
export const ECHO_OP_CHECKSUM = 3;

export const ECHO_REQUEST_HEADER = 8;
export const ECHO_GPA_COMPLETION_SIZE = 12;
/** Largest in-band echo request (and so reply) the device accepts. */
export const ECHO_MAX_MESSAGE = 1024;

export const ECHO_STATUS_SUCCESS = 0;
export const ECHO_STATUS_INVALID_PARAMETER = 0xc000000d;

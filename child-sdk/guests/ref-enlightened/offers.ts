// The `devices` listing of VMBus: every offer the client holds (relid, what it is, interface and
// instance GUIDs, sub-channel index, channel state), read from the client's channel table.
import { puts, putDec, putHex } from "../../kernel/console";
import { CHANNEL_ENTRY_SIZE, CHANNEL_SLOTS, CH_IF_INSTANCE, CH_IF_TYPE, CH_RELID, CH_STATE, CH_SUB_INDEX, ST_CHANNELS, ClientChannelState } from "../../vmbus/client-state";
import { clientOfferCount, clientVersion } from "../../vmbus/client";
import { vmbusState } from "../../vmbus/vmbus-driver";
import { STORVSC_SCSI_INTERFACE_TYPE } from "../../drivers/storvsc-protocol";
import { ECHO_INTERFACE_TYPE } from "../../drivers/echo-protocol";
import { NETVSC_INTERFACE_TYPE } from "../../drivers/netvsc-protocol";
import { IC_HEARTBEAT_GUID, IC_KVP_GUID, IC_SHUTDOWN_GUID, IC_TIMESYNC_GUID } from "../../drivers/ic-services";

function sameGuid(a: usize, b: usize): bool {
  return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8);
}

function offerName(ifType: usize): string {
  if (sameGuid(ifType, STORVSC_SCSI_INTERFACE_TYPE)) return "scsi (storvsc)";
  if (sameGuid(ifType, IC_HEARTBEAT_GUID)) return "heartbeat";
  if (sameGuid(ifType, IC_SHUTDOWN_GUID)) return "shutdown";
  if (sameGuid(ifType, IC_TIMESYNC_GUID)) return "time sync";
  if (sameGuid(ifType, IC_KVP_GUID)) return "kvp";
  if (sameGuid(ifType, ECHO_INTERFACE_TYPE)) return "echo";
  if (sameGuid(ifType, NETVSC_INTERFACE_TYPE)) return "network (netvsc)";
  return "unknown device";
}

function stateName(state: u32): string {
  if (state == ClientChannelState.Offered) return "offered";
  if (state == ClientChannelState.Opening) return "opening";
  if (state == ClientChannelState.Open) return "open";
  if (state == ClientChannelState.OpenFailed) return "open failed";
  if (state == ClientChannelState.Rescinded) return "rescinded";
  return "none";
}

/** A GUID in wire layout (Data1/2/3 little-endian, Data4 as stored) in its usual text form. */
function putGuid(g: usize): void {
  putHex(load<u32>(g), 8);
  puts("-");
  putHex(load<u16>(g, 4), 4);
  puts("-");
  putHex(load<u16>(g, 6), 4);
  puts("-");
  for (let i: usize = 8; i < 16; i++) {
    if (i == 10) puts("-");
    putHex(load<u8>(g + i), 2);
  }
}

/** "vmbus: version 5.3, 6 offers" then one line per offer. */
export function printOffers(): void {
  const st = vmbusState();
  const v = clientVersion(st);
  puts("vmbus: version ");
  putDec(v >> 16);
  puts(".");
  putDec(v & 0xffff);
  puts(", ");
  putDec(clientOfferCount(st));
  puts(" offers\n");
  for (let i: u32 = 0; i < CHANNEL_SLOTS; i++) {
    const e = st + ST_CHANNELS + i * CHANNEL_ENTRY_SIZE;
    const relid = load<u32>(e + CH_RELID);
    if (relid == 0) continue;
    puts("  relid ");
    putDec(relid);
    puts(": ");
    puts(offerName(e + CH_IF_TYPE));
    puts(", type {");
    putGuid(e + CH_IF_TYPE);
    puts("} instance {");
    putGuid(e + CH_IF_INSTANCE);
    puts("}");
    const sub = <u32>load<u16>(e + CH_SUB_INDEX);
    if (sub != 0) {
      puts(" sub-channel ");
      putDec(sub);
    }
    puts(", ");
    puts(stateName(load<u32>(e + CH_STATE)));
    puts("\n");
  }
}

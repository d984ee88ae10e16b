// The guest IC codecs as one AssemblyScript module for test/ic/ic-vectors.test.ts.
export {
  icNegotiate, icHeartbeatAnswer, icShutdownAnswer, icTimeSyncApply, icTimeSyncNow, icMessageLength,
} from "../../child-sdk/drivers/ic-protocol";
export { icKvpAnswer, kvpPut, kvpFind, KVP_STORE_SIZE } from "../../child-sdk/drivers/ic-kvp-protocol";

// Exports the guest channel codec and client to host tests (test/vmbus/channel-as-*.test.ts),
// which compile this file in-process. Not part of any guest image.
export * from "./channel-messages";
export * from "./client";
export { CLIENT_STATE_SIZE } from "./client-state";

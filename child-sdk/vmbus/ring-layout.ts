// The ring layout is one wire format shared with the host: see abi/vmbus-ring.ts.
export * from "../../abi/vmbus-ring";

// Layout of the VMBus client's state, in memory the caller provides (CLIENT_STATE_SIZE bytes,
// zeroed by clientInit). Plain memory rather than module globals because every VP instance has
// its own globals (a Wasm global is per instance): the state must outlive the instance
// that happens to receive a message.

export const CLIENT_STATE_SIZE: u32 = 8192;

// Connection fields.
export const ST_PHASE: u32 = 0;
export const ST_VERSION_INDEX: u32 = 4;
export const ST_VERSION: u32 = 8;
export const ST_MSG_CONN_ID: u32 = 12;
export const ST_TARGET_VCPU: u32 = 16;
export const ST_POST_CONN_ID: u32 = 20; // connection id for the message the client produced last
export const ST_LAST_ERROR: u32 = 24;
export const ST_MONITOR_PAGE1: u32 = 28;
export const ST_MONITOR_PAGE2: u32 = 32;
export const ST_INTERRUPT_PAGE: u32 = 36;
// The GPADL being sent in several messages.
export const ST_TX_GPADL: u32 = 40;
export const ST_TX_PFNS: u32 = 44;
export const ST_TX_PAGES: u32 = 48;
export const ST_TX_SENT: u32 = 52;
// Private copy of the message being handled (copied out of the SynIC slot before any check).
export const ST_RX_COPY: u32 = 64; // 240 bytes
// Channel table: CHANNEL_SLOTS entries of CHANNEL_ENTRY_SIZE bytes.
export const ST_CHANNELS: u32 = 320;
export const CHANNEL_SLOTS: u32 = 64;
export const CHANNEL_ENTRY_SIZE: u32 = 64;
export const CH_RELID: u32 = 0; // 0 = free slot
export const CH_CONNECTION_ID: u32 = 4;
export const CH_SUB_INDEX: u32 = 8; // u16
export const CH_FLAGS: u32 = 10; // u16
export const CH_STATE: u32 = 12;
export const CH_OPEN_STATUS: u32 = 16;
export const CH_IF_TYPE: u32 = 24; // 16 bytes, wire layout
export const CH_IF_INSTANCE: u32 = 40; // 16 bytes
// GPADL table: GPADL_SLOTS entries of GPADL_ENTRY_SIZE bytes.
export const ST_GPADLS: u32 = ST_CHANNELS + CHANNEL_SLOTS * CHANNEL_ENTRY_SIZE; // 4416
export const GPADL_SLOTS: u32 = 64;
export const GPADL_ENTRY_SIZE: u32 = 16;
export const GP_HANDLE: u32 = 0; // 0 = free slot
export const GP_RELID: u32 = 4;
export const GP_STATE: u32 = 8;
export const GP_STATUS: u32 = 12;

/** Connection phases. */
export enum ClientPhase {
  Idle = 0,
  Contacting = 1, // INITIATE_CONTACT sent, waiting for VERSION_RESPONSE
  Connected = 2, // version agreed, REQUESTOFFERS sent, offers arriving
  Ready = 3, // ALLOFFERS_DELIVERED received
  Unloading = 4,
  Unloaded = 5,
  NoVersion = 6, // the host refused every version
}

/** Channel states. */
export enum ClientChannelState {
  None = 0,
  Offered = 1,
  Opening = 2,
  Open = 3,
  OpenFailed = 4,
  Rescinded = 5,
}

/** GPADL states. */
export enum ClientGpadlState {
  None = 0,
  Creating = 1,
  Created = 2,
  Failed = 3,
  TearingDown = 4,
}

/** Client errors (clientLastError and negative results). */
export enum ClientError {
  None = 0,
  BadMessage = -10, // a host message failed checkChannelMessage
  UnexpectedMessage = -11, // valid message, wrong phase or unknown relid/handle
  WrongPhase = -12, // a call the connection phase does not allow
  UnknownChannel = -13,
  ChannelBusy = -14,
  TableFull = -15,
  GpadlInProgress = -16,
  BadArgument = -17,
}

/**
 * CIM status codes (DSP0200 "Status codes"; the same numbers pywbem's _cim_constants.py uses).
 * Every failure the management core reports carries one of these, whatever the adapter.
 */
export const CimStatus = {
  CIM_ERR_FAILED: 1,
  CIM_ERR_ACCESS_DENIED: 2,
  CIM_ERR_INVALID_NAMESPACE: 3,
  CIM_ERR_INVALID_PARAMETER: 4,
  CIM_ERR_INVALID_CLASS: 5,
  CIM_ERR_NOT_FOUND: 6,
  CIM_ERR_NOT_SUPPORTED: 7,
  CIM_ERR_ALREADY_EXISTS: 11,
  CIM_ERR_NO_SUCH_PROPERTY: 12,
  CIM_ERR_TYPE_MISMATCH: 13,
  CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED: 14,
  CIM_ERR_INVALID_QUERY: 15,
  CIM_ERR_METHOD_NOT_AVAILABLE: 16,
  CIM_ERR_METHOD_NOT_FOUND: 17,
  CIM_ERR_SERVER_LIMITS_EXCEEDED: 27,
} as const;

export type CimStatusName = keyof typeof CimStatus;
export type CimStatusCode = (typeof CimStatus)[CimStatusName];

/**
 * A CIM-level failure. `description` starts with the symbolic name so that wbemcli prints it
 * as-is (sblim wbemcli prefixes its own name otherwise).
 */
export class CimError extends Error {
  readonly code: CimStatusCode;
  readonly statusName: CimStatusName;
  constructor(statusName: CimStatusName, detail: string) {
    super(`${statusName}: ${detail}`);
    this.name = 'CimError';
    this.statusName = statusName;
    this.code = CimStatus[statusName];
  }
}

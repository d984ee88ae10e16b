/** A WQL syntax error with the 0-based character position where it was found. */
export class WqlSyntaxError extends Error {
  readonly code = 'WQL_SYNTAX';
  readonly position: number;
  constructor(message: string, position: number) {
    super(`WQL syntax error at position ${position}: ${message}`);
    this.name = 'WqlSyntaxError';
    this.position = position;
  }
}

/**
 * WQL tokens (WMI "WQL (SQL for WMI)"; DSP0202 CQL for the shared operators). Keywords are
 * case-insensitive; strings take ' or " (libvirt writes "…", CQL '…', DSP0202) with a
 * doubled quote or a backslash escaping the quote; the `{…}` object path of ASSOCIATORS OF /
 * REFERENCES OF is one token.
 */
import { WqlSyntaxError } from './syntax-error.ts';

export type WqlTokenKind = 'identifier' | 'string' | 'number' | 'operator' | 'path' | 'end';

export interface WqlToken {
  readonly kind: WqlTokenKind;
  /** Identifier as written, string/path contents unescaped, operator text, number text. */
  readonly text: string;
  readonly position: number;
}

const OPERATORS = ['<=', '>=', '<>', '!=', '=', '<', '>', '(', ')', ',', '*', '.'] as const;

export function tokenize(input: string): WqlToken[] {
  const tokens: WqlToken[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (/[A-Za-z_]/.test(c)) {
      while (i < input.length && /[A-Za-z0-9_]/.test(input[i]!)) i++;
      tokens.push({ kind: 'identifier', text: input.slice(start, i), position: start });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(input[i + 1] ?? ''))) {
      i++;
      while (i < input.length && /[0-9]/.test(input[i]!)) i++;
      if (input[i] === '.' && /[0-9]/.test(input[i + 1] ?? '')) {
        i++;
        while (i < input.length && /[0-9]/.test(input[i]!)) i++;
      }
      if (/[eE]/.test(input[i] ?? '') && /[-+0-9]/.test(input[i + 1] ?? '')) {
        i += 2;
        while (i < input.length && /[0-9]/.test(input[i]!)) i++;
      }
      tokens.push({ kind: 'number', text: input.slice(start, i), position: start });
    } else if (c === "'" || c === '"') {
      let text = '';
      i++;
      for (;;) {
        if (i >= input.length) throw new WqlSyntaxError('unterminated string', start);
        const d = input[i]!;
        if (d === '\\' && i + 1 < input.length) {
          text += input[i + 1];
          i += 2;
        } else if (d === c && input[i + 1] === c) {
          text += c;
          i += 2;
        } else if (d === c) {
          i++;
          break;
        } else {
          text += d;
          i++;
        }
      }
      tokens.push({ kind: 'string', text, position: start });
    } else if (c === '{') {
      let quote = '';
      i++;
      while (i < input.length && (quote || input[i] !== '}')) {
        const d = input[i]!;
        if (quote) {
          if (d === '\\') i++;
          else if (d === quote) quote = '';
        } else if (d === '"' || d === "'") {
          quote = d;
        }
        i++;
      }
      if (i >= input.length) throw new WqlSyntaxError('unterminated {object path}', start);
      tokens.push({ kind: 'path', text: input.slice(start + 1, i).trim(), position: start });
      i++;
    } else {
      const op = OPERATORS.find((o) => input.startsWith(o, i));
      if (!op) throw new WqlSyntaxError(`unexpected character ${JSON.stringify(c)}`, start);
      tokens.push({ kind: 'operator', text: op, position: start });
      i += op.length;
    }
  }
  tokens.push({ kind: 'end', text: '', position: input.length });
  return tokens;
}

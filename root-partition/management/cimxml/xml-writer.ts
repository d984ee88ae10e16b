/**
 * Writing CIM-XML the way both wbemcli and pywbem accept it: every element has
 * an end tag (wbemcli finds ends by searching for the literal end tag), only the five named
 * entities are used, and characters XML 1.0 forbids are dropped.
 */

// C0 controls other than TAB, LF, CR cannot appear in XML 1.0, not even as &#N; (XML 1.0 "Char").
const ILLEGAL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

export function escapeText(text: string): string {
  return text.replace(ILLEGAL, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeAttribute(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;');
}

export type XmlAttributes = ReadonlyArray<readonly [string, string | undefined]>;

/** `<name a="v">content</name>`; content is already-encoded XML. Attributes with undefined are left out. */
export function element(name: string, attributes: XmlAttributes, content = ''): string {
  let open = `<${name}`;
  for (const [k, v] of attributes) if (v !== undefined) open += ` ${k}="${escapeAttribute(v)}"`;
  return `${open}>${content}</${name}>`;
}

export const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8" ?>';

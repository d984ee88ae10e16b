/**
 * A linear pre-scan of every XML document before it reaches the parser. It counts elements and
 * attributes against limits, because parsing costs time and memory per element (a 1 MiB body of
 * 250 000 empty elements took seconds on the service's thread) and the parser's duplicate-attribute
 * check grows with the attributes of one element. It also refuses entity references XML does not
 * define: only `&lt; &gt; &amp; &quot; &apos;` (XML 1.0 §4.6 "Predefined Entities") and character
 * references to legal characters (§4.1 "Legal Character", production [2] Char) are well-formed
 * without a DTD, and CIM-XML has none (DOCTYPE is refused).
 *
 * The scan skips comments, CDATA sections and processing instructions (their text is not markup);
 * anything else malformed is left to the parser's validator.
 */
import { XmlLimitError, XmlSyntaxError } from './xml-errors.ts';

export interface XmlLimits {
  /** Start tags in one document. */
  readonly maxElements: number;
  /** Attributes in one document. */
  readonly maxAttributes: number;
  /** Attributes on one element (CIM-XML elements carry at most five). */
  readonly maxAttributesPerElement: number;
}

/**
 * A DefineSystem or AddResourceSettings with every device a VM can have (a few hundred embedded
 * instances of some 30 properties, sent as raw INSTANCE markup) stays well under these.
 */
export const DEFAULT_XML_LIMITS: XmlLimits = { maxElements: 20_000, maxAttributes: 50_000, maxAttributesPerElement: 32 };

const PREDEFINED = new Set(['lt', 'gt', 'amp', 'quot', 'apos']);
const LT = 0x3c;
const AMP = 0x26;

export interface XmlCounts {
  readonly elements: number;
  readonly attributes: number;
}

/** Throws XmlLimitError past a limit, XmlSyntaxError for a reference XML does not define. */
export function scanXml(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlCounts {
  let elements = 0;
  let attributes = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === AMP) {
      i = reference(text, i);
      continue;
    }
    if (c !== LT) {
      i++;
      continue;
    }
    if (text.startsWith('<!--', i)) i = skipPast(text, i + 4, '-->', 'comment');
    else if (text.startsWith('<![CDATA[', i)) i = skipPast(text, i + 9, ']]>', 'CDATA section');
    else if (text.startsWith('<?', i)) i = skipPast(text, i + 2, '?>', 'processing instruction');
    else if (text.startsWith('<!', i)) throw new XmlSyntaxError('markup declarations (DOCTYPE, ENTITY) are not allowed');
    else if (text.charCodeAt(i + 1) === 0x2f) {
      const end = text.indexOf('>', i);
      i = end < 0 ? n : end + 1;
    } else {
      if (++elements > limits.maxElements) throw new XmlLimitError(`more than ${limits.maxElements} elements`);
      let own = 0;
      let quote = 0;
      let k = i + 1;
      for (; k < n; k++) {
        const d = text.charCodeAt(k);
        if (quote !== 0) {
          if (d === quote) quote = 0;
          else if (d === AMP) k = reference(text, k) - 1;
        } else if (d === 0x22 || d === 0x27) quote = d;
        else if (d === 0x3d) own++;
        else if (d === 0x3e) break;
      }
      if (own > limits.maxAttributesPerElement) throw new XmlLimitError(`more than ${limits.maxAttributesPerElement} attributes on one element`);
      attributes += own;
      if (attributes > limits.maxAttributes) throw new XmlLimitError(`more than ${limits.maxAttributes} attributes`);
      i = k + 1;
    }
  }
  return { elements, attributes };
}

function skipPast(text: string, from: number, end: string, what: string): number {
  const at = text.indexOf(end, from);
  if (at < 0) throw new XmlSyntaxError(`unterminated ${what}`);
  return at + end.length;
}

/** Checks the reference starting at `at` (an '&') and returns the index after its ';'. */
function reference(text: string, at: number): number {
  // The longest legal form is a character reference with leading zeros; 40 is plenty.
  const semicolon = text.indexOf(';', at + 1);
  const body = semicolon < 0 || semicolon - at > 40 ? null : text.slice(at + 1, semicolon);
  if (body === null || body === '') throw new XmlSyntaxError(`'&' at offset ${at} does not start a reference (write &amp;)`);
  if (PREDEFINED.has(body)) return semicolon + 1;
  const numeric = /^#(?:([0-9]+)|x([0-9a-fA-F]+))$/.exec(body);
  if (!numeric) {
    throw new XmlSyntaxError(`&${body}; is not an XML entity: only &lt; &gt; &amp; &quot; &apos; and character references are defined (XML 1.0 §4.6)`);
  }
  const code = numeric[1] !== undefined ? Number(numeric[1]) : parseInt(numeric[2]!, 16);
  if (!isXmlChar(code)) throw new XmlSyntaxError(`&${body}; refers to a character XML does not allow (XML 1.0 §2.2)`);
  return semicolon + 1;
}

function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

import { describe, expect, it } from 'vitest';
import { handleCimXml } from '../../root-partition/management/cimxml/request-handler.ts';
import { parseXml, XmlLimitError, XmlSyntaxError } from '../../root-partition/management/cimxml/xml-dom.ts';
import { DEFAULT_XML_LIMITS, scanXml } from '../../root-partition/management/cimxml/xml-limits.ts';
import { createFixture } from './fixtures.ts';
import { NS, S, wbemcliBody, wbemcliHeaders } from './cimxml-reference.ts';

const SHORT_NS = '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="virtualization"/><NAMESPACE NAME="v2"/></LOCALNAMESPACEPATH>';
const SVC_OBJECT =
  'root%2Fvirtualization%2Fv2%3AMsvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms",SystemCreationClassName="Msvm_ComputerSystem",SystemName="HOST1"';

const enumerate = (extra = '') =>
  wbemcliBody(
    `<IMETHODCALL NAME="EnumerateInstanceNames">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE>${extra}</IMETHODCALL>`,
  );
const send = (body: string, method = 'EnumerateInstanceNames', object?: string, limits = DEFAULT_XML_LIMITS) =>
  handleCimXml(createFixture().manager, wbemcliHeaders(method, object), body, '127.0.0.1', 'full', { xmlLimits: limits });

describe('XML entity references', () => {
  it.each(['&nbsp;', '&copy;', '&eacute;', '&foo;', '&#0;', '&#x1;', '&#xD800;', '&#1114112;', '& ', '&;', '&#;', '&#x;'])(
    'refuses %s as not well-formed: 400 request-not-well-formed',
    async (ref) => {
      for (const body of [
        wbemcliBody(
          `<IMETHODCALL NAME="EnumerateInstanceNames">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_ComputerSystem"/></IPARAMVALUE><IPARAMVALUE NAME="X"><VALUE>a${ref}b</VALUE></IPARAMVALUE></IMETHODCALL>`,
        ),
        wbemcliBody(
          `<IMETHODCALL NAME="EnumerateInstanceNames">${NS}<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="Msvm_${ref}ComputerSystem"/></IPARAMVALUE></IMETHODCALL>`,
        ),
      ]) {
        const r = await send(body);
        expect([r.status, r.headers.CIMError]).toEqual([400, 'request-not-well-formed']);
      }
      expect(() => parseXml(`<a>${ref}</a>`)).toThrow(XmlSyntaxError);
    },
  );

  it('decodes the five XML entities and character references, and leaves CDATA, comments and PIs alone', () => {
    expect(parseXml('<a b="&quot;&apos;&#x41;">&lt;&gt;&amp;&#65;&#x42;&#0000067;&#x1F600;</a>')).toEqual({
      name: 'a',
      attributes: { b: `"'A` },
      children: [],
      text: '<>&ABC😀',
    });
    expect(parseXml('<a><![CDATA[&nbsp; <b> & ]]><!-- &copy; <c> --><?pi &x; <d>?></a>').text).toBe('&nbsp; <b> & ');
    expect(() => parseXml('<a><![CDATA[x</a>')).toThrow(/unterminated CDATA section/);
  });

  it('answers an embedded instance with an HTML entity as CIM_ERR_INVALID_PARAMETER', async () => {
    // In the outer document &amp;nbsp; is legal; inside the embedded instance it becomes &nbsp;.
    const settings =
      '&lt;INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData"&gt;&lt;PROPERTY NAME="ElementName" TYPE="string"&gt;&lt;VALUE&gt;a&amp;nbsp;b&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;';
    const body = wbemcliBody(
      `<METHODCALL NAME="DefineSystem"><LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH><PARAMVALUE NAME="SystemSettings"><VALUE>${settings}</VALUE></PARAMVALUE></METHODCALL>`,
    );
    const r = await send(body, 'DefineSystem', SVC_OBJECT);
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/<ERROR CODE="4" DESCRIPTION="CIM_ERR_INVALID_PARAMETER: embedded instance is not well-formed XML: &amp;nbsp; is not an XML entity/);
  });
});

describe('XML element and attribute limits', () => {
  const limits = { maxElements: 100, maxAttributes: 50, maxAttributesPerElement: 4 };

  it('counts start tags and attributes, not end tags, comments, CDATA or quoted text', () => {
    expect(scanXml('<a x="1" y=\'=\'><b/><c></c><!-- <d e="1"> --><![CDATA[<f g="1">]]><?p <h i="1">?></a>')).toEqual({ elements: 3, attributes: 2 });
    expect(scanXml(enumerate())).toEqual({ elements: 10, attributes: 10 });
  });

  it('answers 413 past each limit and serves the request at the limit', async () => {
    const base = scanXml(enumerate());
    const atLimit = enumerate('<X></X>'.repeat(limits.maxElements - base.elements));
    expect((await send(atLimit, undefined, undefined, limits)).status).toBe(200);
    const over = enumerate('<X></X>'.repeat(limits.maxElements - base.elements + 1));
    const r = await send(over, undefined, undefined, limits);
    expect([r.status, r.headers.CIMError, r.body]).toEqual([413, undefined, '']);
    expect(() => parseXml(over, limits)).toThrow(new XmlLimitError('more than 100 elements'));
    const attrs = enumerate('<X a="" b="" c="" d=""></X>'.repeat(11));
    expect((await send(attrs, undefined, undefined, limits)).status).toBe(413);
    expect(() => parseXml(attrs, limits)).toThrow('more than 50 attributes');
    const wide = enumerate('<X a="" b="" c="" d="" e=""></X>');
    expect(() => parseXml(wide, limits)).toThrow('more than 4 attributes on one element');
    expect((await send(wide, undefined, undefined, limits)).status).toBe(413);
  });

  it('refuses the 1 MiB body of 250 000 elements by counting, before parsing it', async () => {
    const flood = enumerate('<X/>'.repeat(250_000));
    const started = performance.now();
    const r = await send(flood);
    expect(r.status).toBe(413);
    expect(() => scanXml(flood)).toThrow(`more than ${DEFAULT_XML_LIMITS.maxElements} elements`);
    // The scan stops at the limit: far below the seconds the parse took.
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('bounds embedded instances too: CIM_ERR_SERVER_LIMITS_EXCEEDED', async () => {
    const props = '&lt;P/&gt;'.repeat(DEFAULT_XML_LIMITS.maxElements);
    const settings = `&lt;INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData"&gt;${props}&lt;/INSTANCE&gt;`;
    const body = wbemcliBody(
      `<METHODCALL NAME="DefineSystem"><LOCALINSTANCEPATH>${SHORT_NS}${S}</LOCALINSTANCEPATH><PARAMVALUE NAME="SystemSettings"><VALUE>${settings}</VALUE></PARAMVALUE></METHODCALL>`,
    );
    const r = await send(body, 'DefineSystem', SVC_OBJECT);
    expect(r.status).toBe(200);
    expect(r.body).toContain(
      `<ERROR CODE="27" DESCRIPTION="CIM_ERR_SERVER_LIMITS_EXCEEDED: embedded instance too large: more than ${DEFAULT_XML_LIMITS.maxElements} elements"`,
    );
  });
});

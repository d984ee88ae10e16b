import { describe, expect, it } from 'vitest';
import { CimInstance } from '../../root-partition/management/cim/instance.ts';
import { createVirtualizationSchema } from '../../root-partition/management/cim/schema.ts';
import { decodeInstance, decodeReference, decodeWireValue } from '../../root-partition/management/cimxml/value-decoder.ts';
import { encodeInstance, encodeProperty, encodeValue } from '../../root-partition/management/cimxml/value-encoder.ts';
import { parseXml } from '../../root-partition/management/cimxml/xml-dom.ts';
import { escapeAttribute, escapeText } from '../../root-partition/management/cimxml/xml-writer.ts';
import { NSP } from './cimxml-reference.ts';

const context = { host: '127.0.0.1', namespace: 'root/virtualization/v2' };
const schema = createVirtualizationSchema();

describe('value encoding (DSP0201 VALUE, DSP0004 datatypes)', () => {
  it('writes scalars in their DMTF text forms', () => {
    expect(encodeValue(true, 'boolean', false, context)).toBe('<VALUE>TRUE</VALUE>');
    expect(encodeValue(18446744073709551615n, 'uint64', false, context)).toBe('<VALUE>18446744073709551615</VALUE>');
    expect(encodeValue(-5, 'sint32', false, context)).toBe('<VALUE>-5</VALUE>');
    expect([NaN, Infinity, -Infinity, 1.5e10].map((v) => encodeValue(v, 'real64', false, context))).toEqual([
      '<VALUE>NaN</VALUE>',
      '<VALUE>INF</VALUE>',
      '<VALUE>-INF</VALUE>',
      '<VALUE>15000000000</VALUE>',
    ]);
    expect(encodeValue('00000000000100.000000:000', 'datetime', false, context)).toBe('<VALUE>00000000000100.000000:000</VALUE>');
    expect(encodeValue('', 'string', false, context)).toBe('<VALUE></VALUE>');
    expect(encodeValue(null, 'string', false, context)).toBe('');
    expect(encodeValue([], 'uint16', true, context)).toBe('<VALUE.ARRAY></VALUE.ARRAY>');
  });

  it('escapes markup, keeps UTF-8 and drops characters XML 1.0 forbids', () => {
    expect(escapeText('a<b>&"c" Grüße ✓\u0001\u0009')).toBe('a&lt;b&gt;&amp;"c" Grüße ✓\u0009');
    expect(escapeAttribute('say "hi" & <bye>')).toBe('say &quot;hi&quot; &amp; &lt;bye&gt;');
  });

  it('marks scalar embedded instances with EmbeddedObject, never PROPERTY.ARRAY', () => {
    const item = new CimInstance('Msvm_KvpExchangeDataItem', [{ name: 'Name', type: 'string', isArray: false, value: 'a&b' }]);
    const inner =
      '&lt;INSTANCE CLASSNAME=&quot;Msvm_KvpExchangeDataItem&quot;&gt;&lt;PROPERTY NAME=&quot;Name&quot; TYPE=&quot;string&quot;&gt;&lt;VALUE&gt;a&amp;amp;b&lt;/VALUE&gt;&lt;/PROPERTY&gt;&lt;/INSTANCE&gt;';
    expect(encodeProperty({ name: 'Item', type: 'string', isArray: false, value: item, embeddedInstance: 'Msvm_KvpExchangeDataItem' }, context)).toBe(
      `<PROPERTY NAME="Item" TYPE="string" EmbeddedObject="instance"><VALUE>${inner}</VALUE></PROPERTY>`,
    );
    expect(
      encodeProperty({ name: 'GuestExchangeItems', type: 'string', isArray: true, value: [item], embeddedInstance: 'Msvm_KvpExchangeDataItem' }, context),
    ).toBe(`<PROPERTY.ARRAY NAME="GuestExchangeItems" TYPE="string"><VALUE.ARRAY><VALUE>${inner}</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>`);
  });

  it('writes reference properties with INSTANCEPATH, numeric and boolean keys with their VALUETYPE', () => {
    const ref = {
      className: 'X',
      keys: [
        { name: 'N', value: 7 },
        { name: 'B', value: false },
      ],
    };
    expect(encodeProperty({ name: 'R', type: 'reference', isArray: false, value: ref, referenceClass: 'CIM_X' }, context)).toBe(
      `<PROPERTY.REFERENCE NAME="R" REFERENCECLASS="CIM_X"><VALUE.REFERENCE><INSTANCEPATH>${NSP}<INSTANCENAME CLASSNAME="X"><KEYBINDING NAME="N"><KEYVALUE VALUETYPE="numeric">7</KEYVALUE></KEYBINDING><KEYBINDING NAME="B"><KEYVALUE VALUETYPE="boolean">FALSE</KEYVALUE></KEYBINDING></INSTANCENAME></INSTANCEPATH></VALUE.REFERENCE></PROPERTY.REFERENCE>`,
    );
  });
});

describe('value decoding', () => {
  it('reads every reference form clients send', () => {
    const name =
      '<INSTANCENAME CLASSNAME="Msvm_ConcreteJob"><KEYBINDING NAME="InstanceID"><KEYVALUE VALUETYPE="string" TYPE="string">J</KEYVALUE></KEYBINDING></INSTANCENAME>';
    const job = { className: 'Msvm_ConcreteJob', keys: [{ name: 'InstanceID', value: 'J' }] };
    expect(decodeReference(parseXml(`<VALUE.REFERENCE><INSTANCEPATH>${NSP}${name}</INSTANCEPATH></VALUE.REFERENCE>`))).toEqual({
      ...job,
      namespace: 'root/virtualization/v2',
      host: '127.0.0.1',
    });
    expect(
      decodeReference(
        parseXml(
          `<VALUE.REFERENCE><LOCALINSTANCEPATH><LOCALNAMESPACEPATH><NAMESPACE NAME="root"/></LOCALNAMESPACEPATH>${name}</LOCALINSTANCEPATH></VALUE.REFERENCE>`,
        ),
      ),
    ).toEqual({ ...job, namespace: 'root' });
    expect(decodeReference(parseXml(`<VALUE.REFERENCE>${name}</VALUE.REFERENCE>`))).toEqual(job);
    expect(() => decodeReference(parseXml('<VALUE.REFERENCE><CLASSPATH></CLASSPATH></VALUE.REFERENCE>'))).toThrow(/unsupported reference form CLASSPATH/);
  });

  it('reads NULL, arrays with VALUE.NULL and keeps whitespace in VALUE', () => {
    expect(decodeWireValue(parseXml('<PARAMVALUE NAME="X"></PARAMVALUE>'))).toBeNull();
    expect(decodeWireValue(parseXml('<PARAMVALUE NAME="X"><VALUE.ARRAY><VALUE> a </VALUE><VALUE.NULL></VALUE.NULL></VALUE.ARRAY></PARAMVALUE>'))).toEqual([
      ' a ',
      null,
    ]);
    expect(decodeWireValue(parseXml('<PARAMVALUE NAME="X"><VALUE>&#65;&amp;lt;</VALUE></PARAMVALUE>'))).toBe('A&lt;');
  });

  it('types an INSTANCE from the schema, ignoring QUALIFIERs and rejecting unknown properties', () => {
    const el = parseXml(
      '<INSTANCE CLASSNAME="Msvm_MemorySettingData"><QUALIFIER NAME="x" TYPE="string"><VALUE>q</VALUE></QUALIFIER><PROPERTY NAME="virtualquantity" TYPE="string"><VALUE>4096</VALUE></PROPERTY><PROPERTY.ARRAY NAME="HostResource"><VALUE.ARRAY><VALUE>a</VALUE></VALUE.ARRAY></PROPERTY.ARRAY></INSTANCE>',
    );
    const i = decodeInstance(el, schema);
    expect([i.className, i.get('VirtualQuantity'), i.get('HostResource'), i.get('Limit')]).toEqual(['Msvm_MemorySettingData', 4096n, ['a'], null]);
    expect(() => decodeInstance(parseXml('<INSTANCE CLASSNAME="Msvm_MemorySettingData"><PROPERTY NAME="Nope"></PROPERTY></INSTANCE>'), schema)).toThrow(
      /has no property Nope/,
    );
    expect(() =>
      decodeInstance(parseXml('<INSTANCE CLASSNAME="Msvm_MemorySettingData"><PROPERTY NAME="Limit"><VALUE>-1</VALUE></PROPERTY></INSTANCE>'), schema),
    ).toThrow(/CIM_ERR_INVALID_PARAMETER/);
  });

  it('round-trips an instance through encoding and decoding', () => {
    const original = schema.createInstance('Msvm_ProcessorSettingData', {
      InstanceID: 'p<1>',
      VirtualQuantity: 4n,
      Weight: 100,
      AutomaticAllocation: true,
      HostResource: ['x', 'y&z'],
    });
    expect(decodeInstance(parseXml(encodeInstance(original, context)), schema)).toEqual(original);
  });
});

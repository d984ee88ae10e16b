/**
 * Class declarations as data (DSP0004 "Classes", "Qualifiers"; DSP0201 CLASS/PROPERTY/METHOD).
 * A declaration lists what the class itself introduces or overrides; CimSchema resolves the
 * inherited view. Qualifier values are plain data so that adapters can encode them.
 */
import type { CimType } from './types.ts';

export type QualifierValue = string | number | boolean | readonly string[];

export interface CimQualifier {
  readonly name: string;
  readonly type: CimType;
  readonly value: QualifierValue;
  /** Flavor; DSP0201 QUALIFIER OVERRIDABLE defaults to true. Key is not overridable (DSP0004). */
  readonly overridable?: boolean;
}

/** ValueMap/Values qualifier pair (DSP0004): code → meaning. */
export type ValueMap = Readonly<Record<number, string>>;

export interface CimPropertyDecl {
  readonly name: string;
  readonly type: CimType;
  readonly isArray?: boolean;
  readonly key?: boolean;
  /** For type 'reference': the class the reference points to (PROPERTY.REFERENCE REFERENCECLASS). */
  readonly referenceClass?: string;
  /** DSP0004 EmbeddedInstance qualifier: a string that holds one instance of this class. */
  readonly embeddedInstance?: string;
  readonly valueMap?: ValueMap;
  readonly description?: string;
}

export interface CimParameterDecl {
  readonly name: string;
  readonly type: CimType;
  readonly isArray?: boolean;
  readonly in?: boolean;
  readonly out?: boolean;
  readonly referenceClass?: string;
  readonly embeddedInstance?: string;
  readonly valueMap?: ValueMap;
}

export interface CimMethodDecl {
  readonly name: string;
  /** DSP0201 METHOD TYPE: the return value's type; every Msvm method returns uint32. */
  readonly returnType: CimType;
  readonly parameters: readonly CimParameterDecl[];
  /** Return codes and their meaning, published as the method's ValueMap/Values. */
  readonly returnCodes: ValueMap;
  /** DSP0004 Static qualifier: invocable on a class path (LOCALCLASSPATH). */
  readonly isStatic?: boolean;
}

export interface CimClassDecl {
  readonly name: string;
  readonly superclass?: string;
  /** DSP0004 Association qualifier; its reference properties are the roles. */
  readonly association?: boolean;
  /** Abstract classes have no instances of their own (DSP0004 Abstract qualifier). */
  readonly abstract?: boolean;
  readonly description?: string;
  readonly properties: readonly CimPropertyDecl[];
  readonly methods?: readonly CimMethodDecl[];
}

/** Parse trees of the WQL subset Hyper-V clients send (WMI "WQL (SQL for WMI)"). */

export type WqlLiteralValue = string | number | boolean | null;

/** A property, possibly through embedded objects: `TargetInstance.EnabledState` is ['TargetInstance', 'EnabledState']. */
export interface WqlPropertyRef {
  readonly kind: 'property';
  readonly path: readonly string[];
}

export interface WqlLiteral {
  readonly kind: 'literal';
  readonly value: WqlLiteralValue;
}

export type WqlOperand = WqlPropertyRef | WqlLiteral;

export type WqlComparisonOperator = '=' | '<>' | '<' | '>' | '<=' | '>=';

export type WqlExpression =
  | { readonly kind: 'and' | 'or'; readonly left: WqlExpression; readonly right: WqlExpression }
  | { readonly kind: 'not'; readonly operand: WqlExpression }
  | { readonly kind: 'compare'; readonly operator: WqlComparisonOperator; readonly left: WqlOperand; readonly right: WqlOperand }
  | { readonly kind: 'like'; readonly operand: WqlOperand; readonly pattern: string; readonly negated: boolean }
  | { readonly kind: 'isNull'; readonly operand: WqlOperand; readonly negated: boolean }
  | { readonly kind: 'isa'; readonly operand: WqlPropertyRef; readonly className: string };

export interface WqlSelectQuery {
  readonly kind: 'select';
  /** null for `*`. */
  readonly properties: readonly string[] | null;
  readonly className: string;
  readonly where: WqlExpression | null;
}

/** The four intrinsic event classes (WMI intrinsic events). */
export const WqlEventClasses = ['__InstanceCreationEvent', '__InstanceModificationEvent', '__InstanceDeletionEvent', '__InstanceOperationEvent'] as const;
export type WqlEventClass = (typeof WqlEventClasses)[number];

export interface WqlEventQuery {
  readonly kind: 'event';
  readonly properties: readonly string[] | null;
  readonly eventClass: WqlEventClass;
  /** WITHIN n seconds (a polling bound in WMI; events here are pushed, so delivery is immediate). */
  readonly within: number | null;
  readonly where: WqlExpression | null;
}

export interface WqlAssociatorsQuery {
  readonly kind: 'associators';
  readonly objectPath: string;
  readonly assocClass: string | null;
  readonly resultClass: string | null;
  readonly role: string | null;
  readonly resultRole: string | null;
  readonly requiredQualifier: string | null;
  readonly requiredAssocQualifier: string | null;
  readonly classDefsOnly: boolean;
  readonly keysOnly: boolean;
}

export interface WqlReferencesQuery {
  readonly kind: 'references';
  readonly objectPath: string;
  readonly resultClass: string | null;
  readonly role: string | null;
  readonly requiredQualifier: string | null;
  readonly classDefsOnly: boolean;
  readonly keysOnly: boolean;
}

export type WqlQuery = WqlSelectQuery | WqlEventQuery | WqlAssociatorsQuery | WqlReferencesQuery;

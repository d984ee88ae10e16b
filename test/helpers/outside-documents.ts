/**
 * Pointers to documents outside the project, which its readers cannot open: protocol, management,
 * VHDX, CPU-control, performance and AssemblyScript notes, and design and style notes, by the
 * names and section styles they were cited with. Code comments and docs cite the public sources
 * instead (TLFS, Linux, OpenVMM, QEMU, DMTF, Microsoft's docs, …) or the project's own docs/.
 * This file states the patterns, so it is the one file allowed to contain them.
 */
const POINTERS: readonly RegExp[] = [
  /(?:hyperv|network)-protocol-facts/,
  /(?<!docs\/)\b(?:management-model|cim-xml|vhdx|cpu-control|assemblyscript-guests)\.md\b/,
  /performance-limits/,
  /\.\.\/shared\b|\bshared\/reference\b/,
  /\b(?:DESIGN|STYLE)\.md\b|\b(?:DESIGN|STYLE) §/,
  /\breference \(?§|\breference [A-Z]\d\b|\bPart [A-C] of the reference\b|\breference Part [A-C]\b/,
];

export interface NotePointer {
  /** 1-based line number. */
  line: number;
  text: string;
}

/** True when `text` points into the development notes. */
export function pointsIntoNotes(text: string): boolean {
  return POINTERS.some((p) => p.test(text));
}

/** Every line of `source` that points into the development notes. */
export function notePointers(source: string): NotePointer[] {
  const found: NotePointer[] = [];
  source.split('\n').forEach((text, i) => {
    if (pointsIntoNotes(text)) found.push({ line: i + 1, text: text.trim() });
  });
  return found;
}

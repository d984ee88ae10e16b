/**
 * VM definitions on disk: one JSON file per VM under `vms/`, written atomically. Loading reads
 * every file on its own: a file that does not parse or validate is reported with its name and
 * left untouched (the operator may repair it), and the other VMs load regardless.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TEMP_PREFIX, syncDirectory, writeFileAtomic } from '../host/atomic-file.ts';
import { validateDefinition, type VmDefinition } from './vm-definition.ts';

export interface DefinitionLoadError {
  file: string;
  message: string;
}

export class DefinitionStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  loadAll(): { definitions: VmDefinition[]; errors: DefinitionLoadError[] } {
    const definitions: VmDefinition[] = [];
    const errors: DefinitionLoadError[] = [];
    for (const name of readdirSync(this.dir).sort()) {
      if (name.startsWith(TEMP_PREFIX) || !name.endsWith('.json')) continue;
      const file = join(this.dir, name);
      try {
        let value: unknown;
        try {
          value = JSON.parse(readFileSync(file, 'utf8'));
        } catch (e) {
          throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
        }
        const def = validateDefinition(value, file);
        if (name !== `${def.id}.json`) throw new Error(`${file}: the file name does not match the VM id ${def.id}`);
        if (definitions.some((d) => d.name === def.name)) throw new Error(`${file}: another VM is already named "${def.name}"`);
        definitions.push(def);
      } catch (e) {
        errors.push({ file, message: (e as Error).message });
      }
    }
    return { definitions, errors };
  }

  save(def: VmDefinition): void {
    writeFileAtomic(this.path(def.id), JSON.stringify(def, null, 2) + '\n');
  }

  remove(id: string): void {
    rmSync(this.path(id), { force: true });
    syncDirectory(this.dir);
  }
}

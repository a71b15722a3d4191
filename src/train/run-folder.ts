// A run folder: config.json, metrics.jsonl (one JSON object per line), checkpoints.
import { appendFileSync, mkdirSync } from 'node:fs';
import { writeAtomic } from '../util/fs';
import { join } from 'node:path';

export class RunFolder {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  static timestamped(root: string, name: string): RunFolder {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    return new RunFolder(join(root, `${name}-${stamp}`));
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  /** Writes JSON atomically (temp file + rename), so a stopped run never leaves half a file. */
  writeJson(file: string, value: unknown): void {
    writeAtomic(this.path(file), JSON.stringify(value, null, 2) + '\n');
  }

  metric(record: Record<string, unknown>): void {
    appendFileSync(this.path('metrics.jsonl'), JSON.stringify({ time: new Date().toISOString(), ...record }) + '\n');
  }
}

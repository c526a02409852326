import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Regular files under `root`, depth first, in a stable (sorted) order, as paths relative to
 * root. Directories in `exclude` (absolute) are skipped: an output folder placed inside the
 * input is never read back as input. Symbolic links are not followed (no loops, no escapes).
 */
export async function* walkFiles(root: string, exclude: readonly string[] = []): AsyncGenerator<string> {
  const skip = new Set(exclude.map((p) => path.resolve(p)));
  const stack: string[] = [''];
  while (stack.length) {
    const rel = stack.pop()!;
    const abs = path.join(root, rel);
    if (skip.has(path.resolve(abs))) continue;
    const entries = (await fs.promises.readdir(abs, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? 1 : -1));
    for (const e of entries) {
      const child = path.join(rel, e.name);
      if (e.isDirectory()) stack.push(child);
      else if (e.isFile()) yield child;
    }
  }
}

/**
 * Static boundary check (`deno task check`):
 * - scripts/ reach the platform only through its globals: no imports of core/;
 * - core/ folders never import another folder's private `_*.ts` files.
 *
 * Exits 1 listing every violation.
 */
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const IMPORT =
  /(?:import|export)\s[^"']*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

async function* files(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* files(path);
    else if (/\.(ts|js|mts|mjs)$/.test(entry.name)) yield path;
  }
}

const problems: string[] = [];
for (const top of ["scripts", "core"]) {
  for await (const file of files(join(root, top))) {
    const text = await Deno.readTextFile(file);
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? "";
      if (!specifier.startsWith(".")) continue;
      const target = resolve(dirname(file), specifier);
      const where = relative(root, file);
      if (top === "scripts" && relative(root, target).startsWith("core")) {
        problems.push(`${where}: imports ${specifier}; scripts use the platform's globals only`);
      }
      if (top === "core") {
        const base = target.slice(target.lastIndexOf("/") + 1);
        if (base.startsWith("_") && dirname(target) !== dirname(file)) {
          problems.push(`${where}: imports ${specifier}, a private file of another folder`);
        }
      }
    }
  }
}
if (problems.length > 0) {
  for (const problem of problems) Deno.stderr.writeSync(new TextEncoder().encode(problem + "\n"));
  Deno.exit(1);
}

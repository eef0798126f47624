/**
 * The compiled-binary import path: strip a script's types with an embedded
 * transpiler and import it as a `data:` URL.
 *
 * @module
 */
import { transform } from "sucrase";

/**
 * Strips TypeScript syntax, keeping line numbers, and tags the code with a
 * `sourceURL` so stack traces name the original file.
 *
 * @param source the TypeScript (or JavaScript) source
 * @param fileUrl the file's URL, for stack traces
 * @throws SyntaxError naming the file when the source does not parse
 * @example
 * ```ts
 * import { stripTypes } from "./transpile.ts";
 * const js = stripTypes("const n: number = 1; export default n;", "file:///a.ts");
 * if (js.includes(": number")) throw new Error("types left in");
 * ```
 */
export function stripTypes(source: string, fileUrl: string): string {
  try {
    const { code } = transform(source, {
      transforms: ["typescript"],
      disableESTransforms: true,
      filePath: fileUrl,
    });
    return `${code}\n//# sourceURL=${fileUrl}\n`;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new SyntaxError(`Cannot transpile ${fileUrl}: ${message}`, { cause: error });
  }
}

/** data: URL → the file URL it was transpiled from (for stack traces). */
const transpiled = new Map<string, string>();

/**
 * Remembers that `dataUrl` holds the transpiled code of `fileUrl`, so
 * {@link originalUrl} can name the file in stack traces.
 */
export function registerTranspiled(dataUrl: string, fileUrl: string): void {
  transpiled.set(dataUrl, fileUrl);
}

/**
 * The file URL behind a `data:` URL as it appears in a stack trace (where the
 * runtime may shorten the middle to `......`), or `undefined`.
 *
 * @example
 * ```ts
 * import { originalUrl, registerTranspiled, toDataUrl } from "./transpile.ts";
 * const url = toDataUrl("export default 1;");
 * registerTranspiled(url, "file:///srv/scripts/one.ts");
 * if (originalUrl(url) !== "file:///srv/scripts/one.ts") throw new Error("not found");
 * ```
 */
export function originalUrl(frameUrl: string): string | undefined {
  const exact = transpiled.get(frameUrl);
  if (exact !== undefined) return exact;
  const cut = frameUrl.indexOf("......");
  if (cut < 0) return undefined;
  const head = frameUrl.slice(0, cut);
  const tail = frameUrl.slice(cut + 6);
  for (const [dataUrl, fileUrl] of transpiled) {
    if (dataUrl.startsWith(head) && dataUrl.endsWith(tail)) return fileUrl;
  }
  return undefined;
}

/** Encodes JavaScript source as an importable `data:` URL. */
export function toDataUrl(code: string): string {
  const bytes = new TextEncoder().encode(code);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `data:application/javascript;base64,${btoa(binary)}`;
}

/**
 * Whether this code runs inside a `deno compile` binary (its modules live under a
 * virtual `deno-compile-…` directory there).
 */
export function isCompiledBinary(moduleUrl: string = import.meta.url): boolean {
  return moduleUrl.includes("/deno-compile-");
}

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

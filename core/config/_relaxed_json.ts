/**
 * JSON with `//` and `/* *\/` comments and trailing commas, for config files.
 * Syntax errors are {@linkcode ConfigError}s carrying line, column and the key
 * path being read; a key repeated in one object is an error, not "last wins".
 *
 * @module
 */

import { ConfigError, formatKeyPath } from "./config_error.ts";

const MAX_DEPTH = 512;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD = /[\w$.+-]+/y;
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/**
 * Parses relaxed JSON text.
 *
 * @param text the file's content
 * @param file the file name used in error messages
 * @throws {ConfigError} on a syntax error, with `line` and `column` set
 */
export function parseRelaxedJson(text: string, file: string): unknown {
  return new Parser(text, file).parseDocument();
}

class Parser {
  #pos = 0;
  readonly #text: string;
  readonly #file: string;
  readonly #path: (string | number)[] = [];

  constructor(text: string, file: string) {
    // A byte-order mark is not content.
    this.#text = text.startsWith("\uFEFF") ? text.slice(1) : text;
    this.#file = file;
  }

  parseDocument(): unknown {
    this.#skip();
    const value = this.#value();
    this.#skip();
    if (this.#pos < this.#text.length) this.#fail("the end of the file");
    return value;
  }

  #value(): unknown {
    if (this.#path.length > MAX_DEPTH) {
      this.#fail(`nesting no deeper than ${MAX_DEPTH} levels`);
    }
    const char = this.#text[this.#pos];
    if (char === "{") return this.#object();
    if (char === "[") return this.#array();
    if (char === '"') return this.#string();
    if (char === "-" || (char !== undefined && char >= "0" && char <= "9")) return this.#number();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (
        this.#text.startsWith(word, this.#pos) && !isWordChar(this.#text[this.#pos + word.length])
      ) {
        this.#pos += word.length;
        return value;
      }
    }
    return this.#fail("a value");
  }

  #object(): Record<string, unknown> {
    const object: Record<string, unknown> = {};
    this.#pos++; // {
    this.#skip();
    while (this.#text[this.#pos] !== "}") {
      if (this.#text[this.#pos] !== '"') this.#fail('a key in double quotes or "}"');
      const keyStart = this.#pos;
      const key = this.#string();
      this.#path.push(key);
      if (Object.hasOwn(object, key)) {
        this.#pos = keyStart;
        this.#fail("each key once in an object", `a second ${JSON.stringify(key)}`);
      }
      this.#skip();
      if (this.#text[this.#pos] !== ":") this.#fail('":" after the key');
      this.#pos++;
      this.#skip();
      // defineProperty keeps "__proto__" an ordinary key.
      Object.defineProperty(object, key, {
        value: this.#value(),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.#skip();
      this.#path.pop();
      if (this.#text[this.#pos] === ",") {
        this.#pos++;
        this.#skip();
      } else if (this.#text[this.#pos] !== "}") {
        this.#path.push(key);
        this.#fail('"," or "}"');
      }
    }
    this.#pos++; // }
    return object;
  }

  #array(): unknown[] {
    const array: unknown[] = [];
    this.#pos++; // [
    this.#skip();
    while (this.#text[this.#pos] !== "]") {
      this.#path.push(array.length);
      array.push(this.#value());
      this.#skip();
      if (this.#text[this.#pos] === ",") {
        this.#pos++;
        this.#skip();
      } else if (this.#text[this.#pos] !== "]") {
        this.#fail('"," or "]"');
      }
      this.#path.pop();
    }
    this.#pos++; // ]
    return array;
  }

  #string(): string {
    const text = this.#text;
    let result = "";
    let start = ++this.#pos;
    for (;;) {
      const char = text[this.#pos];
      if (char === undefined) this.#fail("a closing double quote");
      if (char === '"') break;
      if (char! < " ") this.#fail("a closing double quote", describeChar(char!));
      if (char === "\\") {
        result += text.slice(start, this.#pos);
        const escape = text[this.#pos + 1];
        if (escape === "u" && /^[0-9A-Fa-f]{4}$/.test(text.slice(this.#pos + 2, this.#pos + 6))) {
          result += String.fromCharCode(parseInt(text.slice(this.#pos + 2, this.#pos + 6), 16));
          this.#pos += 6;
        } else if (escape !== undefined && Object.hasOwn(ESCAPES, escape)) {
          result += ESCAPES[escape];
          this.#pos += 2;
        } else {
          this.#pos++;
          this.#fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)');
        }
        start = this.#pos;
        continue;
      }
      this.#pos++;
    }
    result += text.slice(start, this.#pos);
    this.#pos++; // "
    return result;
  }

  #number(): number {
    NUMBER.lastIndex = this.#pos;
    const match = NUMBER.exec(this.#text);
    if (match === null) return this.#fail("a number");
    this.#pos += match[0].length;
    return Number(match[0]);
  }

  /** Skips whitespace and comments. */
  #skip(): void {
    const text = this.#text;
    for (;;) {
      const char = text[this.#pos];
      if (char === " " || char === "\t" || char === "\n" || char === "\r") {
        this.#pos++;
      } else if (char === "/" && text[this.#pos + 1] === "/") {
        const end = text.indexOf("\n", this.#pos);
        this.#pos = end < 0 ? text.length : end + 1;
      } else if (char === "/" && text[this.#pos + 1] === "*") {
        const end = text.indexOf("*/", this.#pos + 2);
        if (end < 0) {
          const { line, column } = this.#location(this.#pos);
          this.#pos = text.length;
          this.#fail(`"*/" closing the comment opened at line ${line}, column ${column}`);
        }
        this.#pos = end + 2;
      } else {
        return;
      }
    }
  }

  #location(offset: number): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    for (
      let i = this.#text.indexOf("\n");
      i >= 0 && i < offset;
      i = this.#text.indexOf("\n", i + 1)
    ) {
      line++;
      lineStart = i + 1;
    }
    return { line, column: offset - lineStart + 1 };
  }

  #fail(expected: string, found?: string): never {
    const { line, column } = this.#location(this.#pos);
    throw new ConfigError({
      file: this.#file,
      path: formatKeyPath(this.#path),
      expected,
      found: found ?? this.#describeHere(),
      line,
      column,
    });
  }

  #describeHere(): string {
    const char = this.#text[this.#pos];
    if (char === undefined) return "the end of the file";
    if (char === '"') {
      const end = this.#text.indexOf('"', this.#pos + 1);
      const body = this.#text.slice(this.#pos + 1, end < 0 ? undefined : end);
      return `the string ${JSON.stringify(body.length > 30 ? `${body.slice(0, 27)}...` : body)}`;
    }
    WORD.lastIndex = this.#pos;
    const word = WORD.exec(this.#text);
    return word === null ? describeChar(char) : JSON.stringify(word[0].slice(0, 20));
  }
}

function isWordChar(char: string | undefined): boolean {
  return char !== undefined && /[\w$]/.test(char);
}

function describeChar(char: string): string {
  if (char === "\n" || char === "\r") return "a line break";
  if (char < " ") return `control character U+${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
  return JSON.stringify(char);
}

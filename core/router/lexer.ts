import { RouteParseFault, ROUTE_SYNTAX } from "./errors.js";

export type TokenKind = "number" | "string" | "ident" | "sysprop" | "body" | "prop" | "op" | "path" | "eof";

export interface Token {
  kind: TokenKind;
  /** The source text of the token (for `ident`/`op`) or the decoded name/value. */
  text: string;
  /** 0-based offset of the token's first character. */
  pos: number;
  /** Parsed literal for `number`. */
  number?: number;
  /** `$body` path segments: property names and array indexes. */
  path?: (string | number)[];
}

const OPERATORS = ["<=", ">=", "<>", "!=", "||", "??", "(", ")", ",", "+", "-", "*", "/", "%", "=", "<", ">"];
const NUMBER = /(?:0[xX][0-9a-fA-F]+|(?:\d*\.\d+|\d+)(?:[eE][+-]?\d+)?)/y;
const IDENT = /[A-Za-z_][A-Za-z0-9_.]*/y;
/** `$name`: letters, digits, `_` and `-` (IoT Hub names such as `$iothub-connection-device-id`). */
const SYS_NAME = /[A-Za-z0-9_-]+/y;
/** A `$body.` segment: anything but whitespace, brackets, quotes and operator characters. */
const BODY_SEGMENT = /[^\s.[\]()<>=!,'"?|+*/%{}]+/y;
const DIGITS = /\d+/y;

function sticky(re: RegExp, text: string, at: number): string | undefined {
  re.lastIndex = at;
  const m = re.exec(text);
  return m ? m[0] : undefined;
}

/**
 * A hand-written lexer for the route statement and its condition (IoT Hub / edgeHub grammar). Lazy, so
 * the parser can ask for a raw source path after FROM, whose segments (module ids) may hold characters
 * that are operators elsewhere.
 */
export class Lexer {
  private pos = 0;
  private peeked: Token | undefined;

  constructor(private readonly text: string) {}

  peek(): Token {
    this.peeked ??= this.scan();
    return this.peeked;
  }

  next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  /** The next whitespace-delimited word, unlexed: the source path after FROM. */
  readPath(): Token {
    if (this.peeked) {
      this.pos = this.peeked.pos;
      this.peeked = undefined;
    }
    // Whitespace only: a source path such as /* must not be read as a comment.
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
    const start = this.pos;
    while (this.pos < this.text.length && !/\s/.test(this.text[this.pos]!)) this.pos++;
    return { kind: "path", text: this.text.slice(start, this.pos), pos: start };
  }

  private fail(at: number, what: string): never {
    throw new RouteParseFault(ROUTE_SYNTAX, at, what);
  }

  private skipSpace(): void {
    for (;;) {
      while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
      // edgeHub's grammar hides /* … */ comments.
      if (this.text.startsWith("/*", this.pos)) {
        const close = this.text.indexOf("*/", this.pos + 2);
        if (close < 0) this.fail(this.pos, "unterminated comment: expected '*/'");
        this.pos = close + 2;
        continue;
      }
      return;
    }
  }

  private scan(): Token {
    this.skipSpace();
    const text = this.text;
    const start = this.pos;
    if (start >= text.length) return { kind: "eof", text: "", pos: start };
    const c = text[start]!;

    const number = sticky(NUMBER, text, start);
    if (number !== undefined && (/\d/.test(c) || c === ".")) {
      this.pos = start + number.length;
      if (this.pos < text.length && /[A-Za-z0-9_.]/.test(text[this.pos]!)) {
        this.fail(this.pos, `unexpected character '${text[this.pos]}' after the number ${number}`);
      }
      const value = /^0[xX]/.test(number) ? parseInt(number.slice(2), 16) : Number(number);
      return { kind: "number", text: number, number: value, pos: start };
    }
    if (c === "'" || c === '"') {
      const value = this.readString();
      return { kind: "string", text: value, pos: start };
    }
    if (c === "$") return this.readDollar();
    if (c === "[") {
      this.pos++;
      let name: string;
      if (text[this.pos] === "'" || text[this.pos] === '"') {
        name = this.readString();
      } else {
        const close = text.indexOf("]", this.pos);
        const newline = text.indexOf("\n", this.pos);
        if (close < 0 || (newline >= 0 && newline < close)) this.fail(start, "unterminated property name: expected ']'");
        name = text.slice(this.pos, close).trim();
        this.pos = close;
      }
      if (text[this.pos] !== "]") this.fail(this.pos, "expected ']' to close the property name");
      this.pos++;
      if (name === "") this.fail(start, "empty property name in '[]'");
      return { kind: "prop", text: name, pos: start };
    }
    const ident = sticky(IDENT, text, start);
    if (ident !== undefined) {
      this.pos = start + ident.length;
      return { kind: "ident", text: ident, pos: start };
    }
    for (const op of OPERATORS) {
      if (text.startsWith(op, start)) {
        this.pos = start + op.length;
        return { kind: "op", text: op, pos: start };
      }
    }
    return this.fail(start, `unexpected character '${c}'`);
  }

  /** A quoted string with IoT Hub's escapes: \" \' \\ and \uXXXX. */
  private readString(): string {
    const text = this.text;
    const quote = text[this.pos]!;
    const start = this.pos;
    this.pos++;
    let out = "";
    for (;;) {
      if (this.pos >= text.length) this.fail(start, `unterminated string: expected a closing ${quote}`);
      const ch = text[this.pos]!;
      if (ch === quote) {
        this.pos++;
        return out;
      }
      if (ch === "\\") {
        const e = text[this.pos + 1];
        if (e === '"' || e === "'" || e === "\\") {
          out += e;
          this.pos += 2;
        } else if ((e === "u" || e === "U") && /^[0-9a-fA-F]{4}$/.test(text.slice(this.pos + 2, this.pos + 6))) {
          out += String.fromCharCode(parseInt(text.slice(this.pos + 2, this.pos + 6), 16));
          this.pos += 6;
        } else {
          this.fail(this.pos, `unknown escape '\\${e ?? ""}': expected \\" \\' \\\\ or \\uXXXX`);
        }
        continue;
      }
      out += ch;
      this.pos++;
    }
  }

  private readDollar(): Token {
    const text = this.text;
    const start = this.pos;
    const name = sticky(SYS_NAME, text, start + 1);
    if (name === undefined) this.fail(start + 1, "expected a system property name after '$'");
    this.pos = start + 1 + name.length;
    if (name.toLowerCase() !== "body") return { kind: "sysprop", text: name, pos: start };

    const path: (string | number)[] = [];
    for (;;) {
      const ch = text[this.pos];
      if (ch === ".") {
        const seg = sticky(BODY_SEGMENT, text, this.pos + 1);
        if (seg === undefined) this.fail(this.pos + 1, "expected a property name after '.' in the $body path");
        path.push(seg);
        this.pos += 1 + seg.length;
      } else if (ch === "[") {
        this.pos++;
        const q = text[this.pos];
        if (q === "'" || q === '"') {
          path.push(this.readString());
        } else {
          const digits = sticky(DIGITS, text, this.pos);
          if (digits === undefined) this.fail(this.pos, "expected an array index or a quoted name inside '[ ]' in the $body path");
          path.push(Number(digits));
          this.pos += digits.length;
        }
        if (text[this.pos] !== "]") this.fail(this.pos, "expected ']' in the $body path");
        this.pos++;
      } else {
        break;
      }
    }
    if (path.length === 0) this.fail(this.pos, "expected '.' or '[' after $body (for example $body.temperature)");
    return { kind: "body", text: text.slice(start, this.pos), path, pos: start };
  }
}

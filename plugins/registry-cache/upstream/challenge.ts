/** One `WWW-Authenticate` challenge: its scheme and its auth-params (names lower-cased). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header into challenges (RFC 7235 §4.1). Quoted values may contain commas
 * (`scope="repository:a:pull,push"`), so the header is tokenised, never split on commas.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(", ") : header;
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = (): void => {
    while (i < n && (text[i] === " " || text[i] === "\t")) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  while (i < n) {
    skipWs();
    if (text[i] === ",") { i++; continue; }
    const scheme = token();
    if (!scheme) { i++; continue; }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    // auth-params: name=value pairs separated by commas, until a token that is not followed by "=" (the next scheme).
    for (;;) {
      skipWs();
      const save = i;
      const name = token();
      skipWs();
      if (!name || text[i] !== "=") { i = save; break; }
      i++;
      skipWs();
      let value = "";
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === "\\" && i + 1 < n) i++;
          value += text[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && text[i] !== "," && text[i] !== " ") i++;
        value = text.slice(start, i);
      }
      challenge.params[name.toLowerCase()] = value;
      skipWs();
      if (text[i] === ",") i++;
      else break;
    }
  }
  return out;
}

/**
 * ETags as IoT Hub shows them (base64 of a counter, e.g. "MQ=="), and If-Match as azure-iothub sends it:
 * quoted (`"*"`, `"MQ=="`). Absent or `*` matches anything.
 */
export function etagOf(counter: number): string {
  return Buffer.from(String(counter), "utf8").toString("base64");
}

export function unquote(value: string): string {
  const v = value.trim().replace(/^W\//, "");
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/** The If-Match value without quotes, or undefined when absent or `*`. */
export function ifMatch(header: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(header) ? header[0] : header;
  if (raw === undefined || raw.trim() === "") return undefined;
  const v = unquote(raw);
  return v === "*" ? undefined : v;
}

/** Whether an If-Match header was sent at all (`*` included): PUT without it means "create only". */
export function hasIfMatch(header: string | string[] | undefined): boolean {
  const raw = Array.isArray(header) ? header[0] : header;
  return raw !== undefined && raw.trim() !== "";
}

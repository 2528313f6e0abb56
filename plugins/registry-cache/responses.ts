import type { ServerResponse } from "node:http";

/** Sent on every answer under /v2/ (clients check it on `GET /v2/`). */
export const API_VERSION_HEADER = { "docker-distribution-api-version": "registry/2.0" } as const;

/** An OCI distribution error answer: `{"errors":[{code, message}]}`. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errors: [{ code, message }] });
  res.writeHead(status, {
    ...API_VERSION_HEADER,
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(res.req?.method === "HEAD" ? undefined : body);
}

/** The status a client sees for an upstream answer that is neither success nor "not found". */
export function upstreamFailureStatus(status: number): number {
  return status === 429 ? 429 : 502;
}

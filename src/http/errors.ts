/**
 * The API's error answers: always `{"message": ...}` as JSON, with the right status code,
 * and never a stack trace, a request body or a secret.
 */
import type { ErrorResponse } from "./schemas.ts";

const jsonHeaders = { "content-type": "application/json" };

/** An `ErrorResponse` body with `status`; `headers` adds e.g. `allow` for a 405. */
export function errorResponse(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  const body: ErrorResponse = { message };
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...jsonHeaders, ...headers },
  });
}

/** Makes text from a request safe to repeat in a message: printable and short. */
export function quoteRequestText(text: string, max = 64): string {
  const printable = text.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > max ? `${printable.slice(0, max)}...` : printable;
}

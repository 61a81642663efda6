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

/**
 * Makes text from a request safe to repeat in a message: printable, short, and without
 * what looks like key material. A client may send anything, the device's key among it,
 * and messages reach the log, which more people may read than may connect.
 */
export function quoteRequestText(text: string, max = 64): string {
  const printable = text
    .replace(/[^\x20-\x7e]/g, "?")
    .replace(/[A-Za-z0-9+/_%=-]{20,}/g, (run) => (looksLikeKey(run) ? "<key-like text>" : run));
  return printable.length > max ? `${printable.slice(0, max)}...` : printable;
}

/**
 * A key is random: a 44-character one mixes lower case, upper case and digits but for a
 * chance of about 1 in 1,700. Paths and versions a person types (even with a capital
 * letter) rarely mix all three.
 */
function looksLikeKey(run: string): boolean {
  return /[a-z]/.test(run) && /[A-Z]/.test(run) && /[0-9]/.test(run);
}

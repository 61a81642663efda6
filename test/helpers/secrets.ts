/** Checks that no secret, or a recognizable piece of one, appears in text. */
import { expect } from "bun:test";

/**
 * Fails if any secret appears whole, or any 16-character run of a key or PEM body line
 * does (a secret cut in a log line is still leaked). A connection string is looked for
 * whole: its hub and device names are not secret, its key is passed on its own. The
 * failure names only which secret leaked, never its value.
 */
export function expectNoSecrets(text: string, secrets: string[]): void {
  const leaked = secrets
    .filter((secret) => secret.length >= 8)
    .map((secret, index) => ({ index, length: secret.length, pieces: piecesOf(secret) }))
    .filter(({ pieces }) => pieces.some((piece) => text.includes(piece)))
    .map(({ index, length }) => `secret #${index} (${length} characters)`);

  expect(leaked).toEqual([]);
}

function piecesOf(secret: string): string[] {
  if (secret.includes(";")) return [secret];

  const lines = secret
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length >= 16 && !line.startsWith("-----"));

  const pieces = lines.length > 0 ? lines : [secret];
  return pieces.flatMap((piece) => windows(piece, 16));
}

function windows(text: string, size: number): string[] {
  if (text.length <= size) return [text];

  const result: string[] = [];
  for (let start = 0; start + size <= text.length; start += size / 2) {
    result.push(text.slice(start, start + size));
  }
  return result;
}

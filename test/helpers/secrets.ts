/** Checks that no secret, or a recognizable piece of one, appears in text. */
import { expect } from "bun:test";

/**
 * Fails if any secret appears whole, or any 16-character run of a key or PEM body line
 * does (a secret cut in a log line is still leaked). A connection string is looked for
 * whole: its hub and device names are not secret, its key is passed on its own. The
 * failure names only which secret leaked, never its value.
 */
export function expectNoSecrets(text: string, secrets: string[]): void {
  const leaked = new SecretScanner(secrets)
    .leaks(text)
    .map((index) => describeSecret(secrets, index));

  expect(leaked).toEqual([]);
}

/** "secret #3 (44 characters)": which secret, never its value. */
export function describeSecret(secrets: readonly string[], index: number): string {
  return `secret #${index} (${secrets[index]!.length} characters)`;
}

/**
 * Looks for many secrets in large texts at once, by the rule of expectNoSecrets: every
 * 16-character window of the text is looked up among the pieces of every secret.
 */
export class SecretScanner {
  readonly #windows = new Map<string, number[]>();
  readonly #whole: { piece: string; index: number }[] = [];

  constructor(secrets: readonly string[]) {
    secrets.forEach((secret, index) => {
      if (secret.length < 8) return;

      for (const piece of piecesOf(secret)) {
        if (piece.length !== windowSize) this.#whole.push({ piece, index });
        else this.#windows.set(piece, [...(this.#windows.get(piece) ?? []), index]);
      }
    });
  }

  /** Indexes of the secrets found in `text`, each once, in order. */
  leaks(text: string): number[] {
    const found = new Set<number>();

    for (let start = 0; start + windowSize <= text.length; start++) {
      for (const index of this.#windows.get(text.slice(start, start + windowSize)) ?? [])
        found.add(index);
    }

    for (const { piece, index } of this.#whole) {
      if (text.includes(piece)) found.add(index);
    }

    return [...found].sort((a, b) => a - b);
  }
}

const windowSize = 16;

function piecesOf(secret: string): string[] {
  if (secret.includes(";")) return [secret];

  const lines = secret
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length >= windowSize && !line.startsWith("-----"));

  const pieces = lines.length > 0 ? lines : [secret];
  return pieces.flatMap((piece) => windows(piece, windowSize));
}

function windows(text: string, size: number): string[] {
  if (text.length <= size) return [text];

  const result: string[] = [];
  for (let start = 0; start + size <= text.length; start += size / 2) {
    result.push(text.slice(start, start + size));
  }
  return result;
}

/**
 * What a hook writes, made fit for extprov's log: split into lines, bounded in length and
 * number, control characters replaced, and anything that may be a credential withheld.
 * A hook that rewrites the key file may well print the key; the log must not keep it.
 */

/** Characters kept of one line; the rest is cut and marked. */
export const maxLineLength = 200;
/** Lines logged per hook run, both streams together; more are counted, not logged. */
export const maxLoggedLines = 100;
/** A "line" without a newline is cut here, so a hook cannot make extprov buffer without end. */
const maxPendingCharacters = 4096;

/**
 * Reads `stream` to its end and calls `onLine` for every line. Returns a function that
 * stops reading early (for a hook that exited but left a child holding its output).
 */
export function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let pending = "";

  const flush = (final: boolean) => {
    // A CR at the end of a chunk may be the first half of a CRLF: wait for the next one.
    const held = !final && pending.endsWith("\r") ? "\r" : "";
    const parts = (held ? pending.slice(0, -1) : pending).split(/\r\n|\n|\r/);
    pending = final ? "" : parts.pop()! + held;
    for (const part of parts) onLine(part);

    if (pending.length > maxPendingCharacters) {
      onLine(pending);
      pending = "";
    }
  };

  const done = (async () => {
    try {
      for (;;) {
        const { done: ended, value } = await reader.read();
        if (ended) break;
        pending += decoder.decode(value, { stream: true });
        flush(false);
      }
    } catch {
      // Cancelled, or the pipe broke: what was read so far is still logged.
    }

    pending += decoder.decode();
    if (pending !== "") flush(true);
  })();

  return { done, stop: () => reader.cancel().catch(() => {}) };
}

/**
 * One line as it may be logged: printable, at most `maxLineLength` characters, with
 * every run that looks like base64 or hex key material replaced, and withheld entirely if
 * it holds a piece of a known secret.
 */
export function sanitizeLine(raw: string, secretPieces: readonly string[]): string {
  // Also with the white space taken out: a key printed in groups ("abcd efgh ...").
  const compact = raw.replace(/\s+/g, "");
  if (secretPieces.some((piece) => raw.includes(piece) || compact.includes(piece))) {
    return "<line withheld: it holds a credential>";
  }

  const printable = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/[\x00-\x1f\x7f]/g, " ");
  const redacted = printable.replace(/[A-Za-z0-9+/]{16,}={0,2}/g, (run) =>
    looksLikeKey(run) ? "<redacted>" : run,
  );

  return redacted.length > maxLineLength ? `${redacted.slice(0, maxLineLength)}...` : redacted;
}

/**
 * Keys are random: a run of 16 or more base64 characters that mixes lower case, upper
 * case and digits, or that holds 16 such characters between two slashes with lower case
 * and upper case or digits. A path stays readable, even with a mkdtemp name in it
 * (/tmp/dep.eUkb/hooks/hook.sh: no digit, and no long part); the chance that a 44-character
 * key escapes both is below 1 in 1,700.
 */
function looksLikeKey(run: string): boolean {
  if (/[a-z]/.test(run) && /[A-Z]/.test(run) && /[0-9]/.test(run)) return true;
  return run
    .split("/")
    .some((part) => part.length >= 16 && /[a-z]/.test(part) && /[A-Z0-9]/.test(part));
}

/**
 * The pieces of `secrets` to look for: 16-character windows every 8 characters, so a
 * secret cut anywhere still leaves a whole window in a line that holds 24 characters of it.
 */
export function secretPieces(secrets: readonly string[]): string[] {
  const pieces: string[] = [];

  for (const secret of secrets) {
    if (secret.length < 16) {
      if (secret.length >= 8) pieces.push(secret);
      continue;
    }

    for (let start = 0; start + 16 <= secret.length; start += 8)
      pieces.push(secret.slice(start, start + 16));
    pieces.push(secret.slice(-16));
  }

  return pieces;
}

/** What a hook writes, made fit for the log: readable paths stay, key material does not. */
import { describe, expect, test } from "bun:test";
import { maxLineLength, readLines, sanitizeLine, secretPieces } from "../../src/hooks/output.ts";
import { newSymmetricKey } from "../helpers/fixtures.ts";

describe("sanitizeLine", () => {
  test("keeps paths, host names and prose readable", () => {
    const line = "moved /etc/extprov/secrets/device.key for second-hub.azure-devices.net";
    const temporary = "/tmp/newuser.Tq9z/dep.eUkb/hooks/hook.sh: 3: cannot create";

    expect(sanitizeLine(line, [])).toBe(line);
    expect(sanitizeLine(temporary, [])).toBe(temporary);
  });

  test("redacts base64 key material it was not told about", () => {
    // Fixed: one key in about 1,700 has no digit, and one in 10^15 nothing but lower case.
    const key = "q3Xr0fVb+Lk9/TmZ2yWnHc8sJd4aPe7uGi1oRx6tEwY=";

    expect(sanitizeLine(`new key: ${key} (primary)`, [])).toBe("new key: <redacted> (primary)");
  });

  test("withholds a line holding a piece of a known secret, even cut short", () => {
    const key = newSymmetricKey();
    const pieces = secretPieces([key]);

    expect(sanitizeLine(`tail ${key.slice(13, 37)}`, pieces)).toBe(
      "<line withheld: it holds a credential>",
    );
  });

  test("withholds a known secret printed in groups separated by spaces", () => {
    const key = newSymmetricKey();
    const grouped = key.match(/.{1,8}/g)!.join(" ");

    expect(sanitizeLine(`key: ${grouped}`, secretPieces([key]))).toBe(
      "<line withheld: it holds a credential>",
    );
  });

  test("replaces control characters and terminal colours, and cuts long lines", () => {
    const long = "word ".repeat(100);

    expect(sanitizeLine("\x1b[31mred\x1b[0m\tand\x07bell", [])).toBe("red and bell");
    expect(sanitizeLine(long, [])).toBe(`${long.slice(0, maxLineLength)}...`);
  });
});

describe("readLines", () => {
  test("splits on LF, CRLF and CR, across chunks, and keeps a last line without newline", async () => {
    const chunks = ["one\r", "\ntw", "o\nthree\rfo", "ur"];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    const lines: string[] = [];

    await readLines(stream, (line) => lines.push(line)).done;

    expect(lines).toEqual(["one", "two", "three", "four"]);
  });
});

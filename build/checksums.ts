/**
 * dist/SHA256SUMS in the format `sha256sum -c` reads: one `<hex>  <name>` line per file,
 * sorted by name.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

export const checksumFile = "SHA256SUMS";

/** Hashes every regular file in `dir` except SHA256SUMS itself and writes the list. */
export async function writeChecksums(dir: string): Promise<string[]> {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name !== checksumFile && !entry.name.startsWith("."))
    .map((entry) => entry.name)
    .sort();

  const lines: string[] = [];
  for (const name of names) {
    lines.push(`${await sha256(join(dir, name))}  ${name}`);
  }

  await Bun.write(join(dir, checksumFile), lines.join("\n") + "\n");
  return names;
}

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);

  return hasher.digest("hex");
}

/**
 * The Bun runtimes embedded in the executables, one per target, at the Bun version pinned
 * in package-lock.json. They come from the npm registry as `@oven/bun-linux-*` tarballs
 * (`npm pack`), are checked against build/runtimes.json, and are kept in a cache folder.
 *
 * Left to itself, `bun build --compile --target=...` downloads the same tarball but checks
 * no integrity, so every target gets `executablePath` set to a runtime verified here.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import pins from "./runtimes.json";
import { runCommand } from "./run-command.ts";
import type { Target } from "./targets.ts";

/** Where verified runtimes are kept between builds (git-ignored). */
export const defaultRuntimeCache = join(import.meta.dir, "..", ".cache", "bun-runtimes");

/** The Bun version the project pins: the one `npm ci` installed. */
export async function pinnedBunVersion(projectRoot: string): Promise<string> {
  const lock = await Bun.file(join(projectRoot, "package-lock.json")).json();
  const version: unknown = lock.packages?.["node_modules/bun"]?.version;
  if (typeof version !== "string") throw new Error("package-lock.json pins no bun version");

  return version;
}

/**
 * Checks that the bundler, the lockfile and build/runtimes.json name one Bun version, and
 * that the pins agree with the lockfile's integrity wherever both name a package.
 */
export async function checkPins(projectRoot: string): Promise<string> {
  const version = await pinnedBunVersion(projectRoot);
  const refresh = "run `bun build/pin-runtimes.ts` after changing the bun version";

  if (pins.bun !== version) {
    const pinned = `build/runtimes.json pins bun ${pins.bun}, package-lock.json ${version}`;
    throw new Error(`${pinned}; ${refresh}`);
  }

  // Bytecode is only valid for the JavaScriptCore that wrote it, so the bundler must be the
  // same Bun as the runtimes it is paired with.
  if (Bun.version !== version) {
    const hint = "use node_modules/.bin/bun";
    throw new Error(`building with bun ${Bun.version}, but ${version} is pinned; ${hint}`);
  }

  const lock = await Bun.file(join(projectRoot, "package-lock.json")).json();
  for (const [name, integrity] of Object.entries(pins.integrity)) {
    const locked = lock.packages?.[`node_modules/${name}`];
    if (locked && locked.version === version && locked.integrity !== integrity) {
      throw new Error(`build/runtimes.json and package-lock.json disagree on ${name}; ${refresh}`);
    }
  }

  return version;
}

/**
 * Returns the path of the target's verified Bun runtime, fetching it on first use.
 * `integrity` replaces the pin (tests use it to see a mismatch refused).
 */
export async function runtimeFor(
  target: Target,
  version: string,
  cacheDir: string,
  integrity?: string,
): Promise<string> {
  const expected = integrity ?? (pins.integrity as Record<string, string>)[target.runtimePackage];
  if (!expected) throw new Error(`build/runtimes.json has no pin for ${target.runtimePackage}`);

  const folder = join(cacheDir, `${target.runtimePackage.replace("@oven/", "")}-${version}`);
  const runtime = join(folder, "bun");
  const stamp = join(folder, "tarball-integrity");

  if (existsSync(runtime) && (await readText(stamp)) === expected) return runtime;

  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, ".fetch-"));
  try {
    await fetchRuntime(`${target.runtimePackage}@${version}`, expected, work);
    const fresh = join(work, "package", "bin");
    await Bun.write(join(fresh, "tarball-integrity"), expected);
    await publish(fresh, folder, expected);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  return runtime;
}

/**
 * Puts a complete runtime folder in place with one rename, so that another build running
 * at the same time (two benchmarks, the tests and a build) never sees half of one, and
 * never loses the one it is compiling with: if a good one appeared meanwhile it stays.
 */
async function publish(fresh: string, folder: string, expected: string): Promise<void> {
  try {
    renameSync(fresh, folder);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
  }

  if ((await readText(join(folder, "tarball-integrity"))) === expected) return;

  // An old or broken runtime is there: moved aside whole, then replaced.
  const aside = `${folder}.old-${process.pid}`;
  renameSync(folder, aside);
  renameSync(fresh, folder);
  rmSync(aside, { recursive: true, force: true });
}

async function fetchRuntime(spec: string, expected: string, work: string): Promise<void> {
  // npm pack brings the tarball through npm's own cache and registry settings; it checks the
  // registry's integrity, and we check ours, so a changed registry answer cannot slip in.
  const packed = JSON.parse(
    runCommand(["npm", "pack", spec, "--pack-destination", work, "--ignore-scripts", "--json"]),
  );
  const tarball = join(work, packed[0].filename);

  const hasher = new Bun.CryptoHasher("sha512").update(await Bun.file(tarball).bytes());
  const actual = "sha512-" + hasher.digest("base64");
  if (actual !== expected) {
    throw new Error(`${spec}: tarball integrity ${actual} does not match the pin ${expected}`);
  }

  runCommand(["tar", "-xzf", tarball, "-C", work, "package/bin/bun"]);
}

async function readText(path: string): Promise<string | undefined> {
  const file = Bun.file(path);
  return (await file.exists()) ? (await file.text()).trim() : undefined;
}

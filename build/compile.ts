/**
 * `bun run build`: compiles extprov for every device target into dist/, packs one release
 * archive per platform and writes dist/SHA256SUMS.
 *
 *   bun run build [-- --target linux-x64,linux-arm64] [--out DIR] [--no-archives] [--strict]
 *
 * Cross-compiling needs only the npm registry: each target's Bun runtime is an
 * `@oven/bun-linux-*` package at the pinned version, verified before use (runtimes.ts).
 */
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeChecksums } from "./checksums.ts";
import { compileExecutable } from "./compile-executable.ts";
import { missingFiles, packArchive } from "./package-release.ts";
import { checkPins, defaultRuntimeCache, runtimeFor } from "./runtimes.ts";
import { readSourceInfo, type SourceInfo } from "./source-info.ts";
import { executableName, selectTargets, type Target } from "./targets.ts";

const projectRoot = resolve(import.meta.dir, "..");

interface Options {
  targets: Target[];
  outDir: string;
  archives: boolean;
  strict: boolean;
  runtimeCache: string;
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  const source = await readSourceInfo(projectRoot);
  const bunVersion = await checkPins(projectRoot);
  say(`extprov ${source.version} (commit ${source.commit}), bun ${bunVersion}`);

  prepareOutDir(options.outDir);
  const built = await compileAll(options, source, bunVersion);

  if (options.archives) await packAll(options, source, built);

  const listed = await writeChecksums(options.outDir);
  say(`${shown(options.outDir)}/SHA256SUMS: ${listed.length} files`);

  reportMissing(options);
}

function parseOptions(argv: string[]): Options {
  // `bun run build -- --target x` hands the `--` on; parseArgs would take it as the end.
  const args = argv.filter((arg) => arg !== "--");

  const { values } = parseArgs({
    args,
    options: {
      target: { type: "string" },
      out: { type: "string", default: join(projectRoot, "dist") },
      "no-archives": { type: "boolean", default: false },
      strict: { type: "boolean", default: false },
    },
  });

  return {
    targets: selectTargets(values.target),
    outDir: resolve(values.out),
    archives: !values["no-archives"],
    strict: values.strict,
    runtimeCache: process.env.EXTPROV_RUNTIME_CACHE ?? defaultRuntimeCache,
  };
}

/** Removes what an earlier build left, so SHA256SUMS describes one build only. */
function prepareOutDir(outDir: string): void {
  mkdirSync(outDir, { recursive: true });

  for (const name of readdirSync(outDir)) {
    if (name.startsWith("extprov-") || name === "SHA256SUMS" || name.startsWith(".stage-")) {
      rmSync(join(outDir, name), { recursive: true, force: true });
    }
  }
}

async function compileAll(
  options: Options,
  source: SourceInfo,
  bunVersion: string,
): Promise<Map<Target, string>> {
  const built = new Map<Target, string>();

  for (const target of options.targets) {
    const runtime = await runtimeFor(target, bunVersion, options.runtimeCache);
    const outfile = join(options.outDir, executableName(target));

    const started = performance.now();
    await compileExecutable({ target, runtime, outfile, commit: source.commit });
    say(`${shown(outfile)}: ${mebibytes(outfile)} (${Math.round(performance.now() - started)} ms)`);

    built.set(target, outfile);
  }

  return built;
}

async function packAll(
  options: Options,
  source: SourceInfo,
  built: Map<Target, string>,
): Promise<void> {
  const groups = new Map<string, string[]>();
  for (const [target, file] of built) {
    if (target.archive === undefined) continue;
    groups.set(target.archive, [...(groups.get(target.archive) ?? []), file]);
  }

  // Each archive is one gzip process; running them together uses every core.
  const packed = await Promise.all(
    [...groups].map(([archive, executables]) =>
      packArchive({
        projectRoot,
        outDir: options.outDir,
        version: source.version,
        archive,
        executables,
        mtime: source.commitTime,
        strict: options.strict,
      }),
    ),
  );

  for (const { file } of packed) say(`${shown(file)}: ${mebibytes(file)}`);
}

function reportMissing(options: Options): void {
  if (!options.archives) return;

  const missing = missingFiles(projectRoot);
  if (missing.length === 0) return;

  console.warn(`warning: the archives lack ${missing.join(", ")}: not in this checkout yet`);
  console.warn("warning: such archives are for testing only; `--strict` refuses to make them");
}

function say(line: string): void {
  console.log(line);
}

function shown(path: string): string {
  const relativePath = relative(process.cwd(), path);
  return relativePath.startsWith("..") ? path : relativePath;
}

function mebibytes(path: string): string {
  return `${(statSync(path).size / 1024 / 1024).toFixed(1)} MiB`;
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  console.error(`build failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

/**
 * What a release is made of: SHA256SUMS, the archives and their layout (install.sh finds
 * the executables in bin/ beside it), and the pinned runtimes behind cross-compiling.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compileExecutable } from "../../build/compile-executable.ts";
import { packArchive } from "../../build/package-release.ts";
import { checkPins, defaultRuntimeCache, runtimeFor } from "../../build/runtimes.ts";
import { readSourceInfo } from "../../build/source-info.ts";
import { selectTargets, targets } from "../../build/targets.ts";
import {
  allTargets,
  buildInto,
  projectRoot,
  requireTool,
  runToEnd,
  temporaryFolder,
} from "./helpers.ts";

let dist: string;
let version: string;

beforeAll(async () => {
  dist = await buildInto(allTargets, { archives: true });
  version = (await Bun.file(join(projectRoot, "package.json")).json()).version;
}, 300_000);

afterAll(() => rmSync(dist, { recursive: true, force: true }));

/** `tar -tvzf` as [mode, size, path] rows. */
async function listArchive(file: string): Promise<{ mode: string; size: number; path: string }[]> {
  const { code, stdout } = await runToEnd(["tar", "-tvzf", file]);
  expect(code).toBe(0);

  return stdout
    .trim()
    .split("\n")
    .map((line) => {
      const fields = line.split(/\s+/);
      return { mode: fields[0]!, size: Number(fields[2]), path: fields.slice(5).join(" ") };
    });
}

/** The SHA-256 of one file inside a tar.gz, read without unpacking to disk. */
async function sha256OfMember(archive: string, member: string): Promise<string> {
  const tar = Bun.spawn(["tar", "-xzOf", archive, member], { stdout: "pipe", stderr: "inherit" });
  const hasher = new Bun.CryptoHasher("sha256");

  for await (const chunk of tar.stdout) hasher.update(chunk);

  expect(await tar.exited).toBe(0);
  return hasher.digest("hex");
}

function executablesIn(rows: { path: string }[]): string[] {
  return rows.filter((row) => row.path.includes("/bin/extprov")).map((row) => row.path);
}

describe("dist", () => {
  test("SHA256SUMS lists every file and sha256sum -c accepts it", async () => {
    const sha256sum = requireTool("sha256sum");
    const files = readdirSync(dist)
      .filter((name) => name !== "SHA256SUMS")
      .sort();

    const sums = await Bun.file(join(dist, "SHA256SUMS")).text();
    const check = await runToEnd([sha256sum, "--check", "--strict", "SHA256SUMS"], dist);

    expect(
      sums
        .trim()
        .split("\n")
        .map((line) => line.split("  ")[1]),
    ).toEqual(files);
    expect(check.code).toBe(0);
  });

  test("holds one archive per platform, each with its one executable", async () => {
    const archives = readdirSync(dist)
      .filter((name) => name.endsWith(".tar.gz"))
      .sort();

    const x64 = await listArchive(join(dist, `extprov-${version}-linux-x64.tar.gz`));
    const arm64 = await listArchive(join(dist, `extprov-${version}-linux-arm64.tar.gz`));

    expect(archives).toEqual(
      ["linux-arm64", "linux-arm64-musl", "linux-x64", "linux-x64-musl"]
        .map((platform) => `extprov-${version}-${platform}.tar.gz`)
        .sort(),
    );
    expect(executablesIn(x64)).toEqual([`extprov-${version}-linux-x64/bin/extprov-linux-x64`]);
    expect(executablesIn(arm64)).toEqual([
      `extprov-${version}-linux-arm64/bin/extprov-linux-arm64`,
    ]);
  });

  test("archives carry executables byte for byte, mode 0755, and the example config", async () => {
    const archive = join(dist, `extprov-${version}-linux-arm64.tar.gz`);
    const folder = `extprov-${version}-linux-arm64`;
    const sums = await Bun.file(join(dist, "SHA256SUMS")).text();

    const rows = await listArchive(archive);
    const packed = await sha256OfMember(archive, `${folder}/bin/extprov-linux-arm64`);
    const modeOf = (path: string) => rows.find((row) => row.path === `${folder}/${path}`)?.mode;

    expect(modeOf("bin/extprov-linux-arm64")).toBe("-rwxr-xr-x");
    expect(modeOf("examples/config.yaml")).toBe("-rw-r--r--");
    expect(sums).toContain(`${packed}  extprov-linux-arm64\n`);
  });
});

describe("packArchive", () => {
  /** A project folder with the given files, each holding its own name. */
  function fakeProject(root: string, files: string[]): void {
    for (const file of files) {
      mkdirSync(join(root, file, ".."), { recursive: true });
      writeFileSync(join(root, file), file);
    }
  }

  const allSources = [
    "install.sh",
    "examples/config.yaml",
    "build/init/extprov.service",
    "build/init/extprov.init",
    "build/init/extprov.openrc",
    "build/init/extprov.logrotate",
    "README.md",
  ];

  test("lays out install.sh, bin/, examples/, init/ and README.md with their modes", async () => {
    using project = temporaryFolder("extprov-pack-");
    fakeProject(project.path, [...allSources, "exe/extprov-linux-x64"]);
    const out = join(project.path, "out");
    mkdirSync(out);

    const result = await packArchive({
      projectRoot: project.path,
      outDir: out,
      version: "9.9.9",
      archive: "linux-x64",
      executables: [join(project.path, "exe/extprov-linux-x64")],
      mtime: 1_700_000_000,
      strict: true,
    });
    const files = (await listArchive(result.file)).filter((row) => !row.path.endsWith("/"));

    expect(result.missing).toEqual([]);
    expect(files.map((row) => `${row.mode} ${row.path}`)).toEqual([
      "-rw-r--r-- extprov-9.9.9-linux-x64/README.md",
      "-rwxr-xr-x extprov-9.9.9-linux-x64/bin/extprov-linux-x64",
      "-rw-r--r-- extprov-9.9.9-linux-x64/examples/config.yaml",
      "-rwxr-xr-x extprov-9.9.9-linux-x64/init/extprov.init",
      "-rw-r--r-- extprov-9.9.9-linux-x64/init/extprov.logrotate",
      "-rwxr-xr-x extprov-9.9.9-linux-x64/init/extprov.openrc",
      "-rw-r--r-- extprov-9.9.9-linux-x64/init/extprov.service",
      "-rwxr-xr-x extprov-9.9.9-linux-x64/install.sh",
    ]);
  });

  test("packs what exists and names what is missing, unless strict", async () => {
    using project = temporaryFolder("extprov-pack-");
    fakeProject(project.path, ["examples/config.yaml", "exe/extprov-linux-arm64"]);
    const request = {
      projectRoot: project.path,
      outDir: project.path,
      version: "9.9.9",
      archive: "linux-arm64",
      executables: [join(project.path, "exe/extprov-linux-arm64")],
      mtime: 1_700_000_000,
      strict: false,
    };

    const result = await packArchive(request);

    expect(result.missing).toEqual([
      "install.sh",
      "init/extprov.service",
      "init/extprov.init",
      "init/extprov.openrc",
      "init/extprov.logrotate",
      "README.md",
    ]);
    expect((await listArchive(result.file)).map((row) => row.path)).toContain(
      "extprov-9.9.9-linux-arm64/bin/extprov-linux-arm64",
    );
    await expect(packArchive({ ...request, strict: true })).rejects.toThrow(
      "missing install.sh, init/extprov.service",
    );
  });

  test("gives the same bytes when packed twice from the same files", async () => {
    using project = temporaryFolder("extprov-pack-");
    fakeProject(project.path, [...allSources, "exe/extprov-linux-x64"]);
    const request = (outDir: string) => ({
      projectRoot: project.path,
      outDir,
      version: "9.9.9",
      archive: "linux-x64",
      executables: [join(project.path, "exe/extprov-linux-x64")],
      mtime: 1_700_000_000,
      strict: true,
    });
    mkdirSync(join(project.path, "a"));
    mkdirSync(join(project.path, "b"));

    const first = await packArchive(request(join(project.path, "a")));
    const second = await packArchive(request(join(project.path, "b")));

    expect(await Bun.file(first.file).bytes()).toEqual(await Bun.file(second.file).bytes());
  });
});

describe("targets and runtimes", () => {
  test("refuses an unknown target and lists the known ones", () => {
    expect(() => selectTargets("linux-x64,linux-armv7")).toThrow(
      "unknown target linux-armv7; known: linux-x64, linux-x64-baseline, linux-arm64",
    );
    const chosen = selectTargets("linux-arm64,linux-x64").map((t) => t.name);
    expect(chosen).toEqual(["linux-x64", "linux-arm64"]);
  });

  test("pins the runtimes of the Bun that package-lock.json installs, as it does", async () => {
    const version = await checkPins(projectRoot);

    expect(version).toBe(Bun.version);
  });

  test("compiles the same commit into the same bytes again", async () => {
    using folder = temporaryFolder("extprov-rebuild-");
    const target = targets.find((t) => t.name === "linux-arm64")!;
    const { commit } = await readSourceInfo(projectRoot);
    const runtime = await runtimeFor(target, Bun.version, defaultRuntimeCache);
    const outfile = join(folder.path, "extprov-linux-arm64");

    await compileExecutable({ target, runtime, outfile, commit });

    expect(await Bun.file(outfile).bytes()).toEqual(
      await Bun.file(join(dist, "extprov-linux-arm64")).bytes(),
    );
  });

  test("builds linux-x64-baseline from the x64 runtime, differing only in the file name it embeds", async () => {
    using folder = temporaryFolder("extprov-baseline-");
    const [x64, baseline] = ["linux-x64", "linux-x64-baseline"].map((name) =>
      targets.find((t) => t.name === name)!,
    );
    const { commit } = await readSourceInfo(projectRoot);
    const runtimes = await Promise.all(
      [x64!, baseline!].map((t) => runtimeFor(t, Bun.version, defaultRuntimeCache)),
    );
    const built = (name: string) => Bun.file(join(dist, name)).bytes();
    // Bun names the bundled entry after the output file: /$bunfs/root/<file name>.
    const outfile = join(folder.path, "extprov-linux-x64");

    await compileExecutable({ target: baseline!, runtime: runtimes[1]!, outfile, commit });

    expect(await Bun.file(runtimes[1]!).bytes()).toEqual(await Bun.file(runtimes[0]!).bytes());
    expect(await built("extprov-linux-x64-baseline")).not.toEqual(await built("extprov-linux-x64"));
    expect(await Bun.file(outfile).bytes()).toEqual(await built("extprov-linux-x64"));
    const embedded = Buffer.from(await built("extprov-linux-x64-baseline"));
    expect(embedded.includes("/$bunfs/root/extprov-linux-x64-baseline")).toBe(true);
  });

  test("two builds fetching the same runtime at once both get a whole one, and leave no scraps", async () => {
    using cache = temporaryFolder("extprov-runtime-");
    const target = targets.find((t) => t.name === "linux-arm64")!;

    const fetches = [
      runtimeFor(target, Bun.version, cache.path),
      runtimeFor(target, Bun.version, cache.path),
    ];
    // The first one done may already be compiling with it: the other must not replace it.
    const inUse = statSync(await Promise.race(fetches)).ino;
    const runtimes = await Promise.all(fetches);

    expect(runtimes[0]).toBe(runtimes[1]!);
    expect(statSync(runtimes[0]!).ino).toBe(inUse);
    expect(await Bun.file(runtimes[0]!).bytes()).toEqual(
      await Bun.file(await runtimeFor(target, Bun.version, defaultRuntimeCache)).bytes(),
    );
    expect(readdirSync(cache.path)).toEqual([`bun-linux-aarch64-${Bun.version}`]);
  });

  test("refuses a runtime tarball whose integrity differs from the pin", async () => {
    using cache = temporaryFolder("extprov-runtime-");
    const target = targets.find((t) => t.name === "linux-arm64")!;
    const wrong = "sha512-" + Buffer.alloc(64).toString("base64");

    const fetching = runtimeFor(target, Bun.version, cache.path, wrong);

    await expect(fetching).rejects.toThrow("does not match the pin");
  });
});

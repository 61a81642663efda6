/**
 * Release archives: `extprov-<version>-<archive>.tar.gz`, one folder inside with install.sh,
 * bin/, examples/, init/ and README.md. Files other people write may not exist yet; the
 * archive is then made without them and the caller is told what is missing.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** A file every archive carries, from the first source path (in the project) that exists. */
interface ArchiveFile {
  path: string;
  sources: string[];
  mode: number;
}

// install.sh looks for the executables in `$(dirname "$0")/bin/`, so the layout is a contract.
export const archiveFiles: readonly ArchiveFile[] = [
  { path: "install.sh", sources: ["install.sh", "build/install.sh"], mode: 0o755 },
  { path: "examples/config.yaml", sources: ["examples/config.yaml"], mode: 0o644 },
  { path: "init/extprov.service", sources: ["build/init/extprov.service"], mode: 0o644 },
  { path: "init/extprov.init", sources: ["build/init/extprov.init"], mode: 0o755 },
  { path: "init/extprov.openrc", sources: ["build/init/extprov.openrc"], mode: 0o755 },
  { path: "init/extprov.logrotate", sources: ["build/init/extprov.logrotate"], mode: 0o644 },
  { path: "README.md", sources: ["README.md"], mode: 0o644 },
];

export interface ArchiveRequest {
  projectRoot: string;
  outDir: string;
  version: string;
  /** The archive's platform part: `linux-x64`. */
  archive: string;
  executables: string[];
  /** Seconds since 1970 stamped on every entry, so rebuilding a commit gives the same tar. */
  mtime: number;
  /** Refuse to make an archive with files missing (for a release). */
  strict: boolean;
}

export interface ArchiveResult {
  file: string;
  /** Paths inside the archive folder that no source existed for. */
  missing: string[];
}

/** Stages the folder in a temporary place, then writes the tar.gz into outDir. */
export async function packArchive(request: ArchiveRequest): Promise<ArchiveResult> {
  const folder = `extprov-${request.version}-${request.archive}`;
  const file = join(request.outDir, `${folder}.tar.gz`);
  const missing = missingFiles(request.projectRoot);

  if (request.strict && missing.length > 0) {
    throw new Error(`${basename(file)}: missing ${missing.join(", ")} (--strict)`);
  }

  const stage = mkdtempSync(join(request.outDir, ".stage-"));
  try {
    stageFolder(request, join(stage, folder));
    await writeTarball(stage, folder, file, request.mtime);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }

  return { file, missing };
}

/** The archive paths for which none of the source files exist in the project. */
export function missingFiles(projectRoot: string): string[] {
  return archiveFiles
    .filter((entry) => findSource(projectRoot, entry) === undefined)
    .map((entry) => entry.path);
}

function findSource(projectRoot: string, entry: ArchiveFile): string | undefined {
  return entry.sources.map((source) => join(projectRoot, source)).find((path) => existsSync(path));
}

function stageFolder(request: ArchiveRequest, folder: string): void {
  for (const entry of archiveFiles) {
    const source = findSource(request.projectRoot, entry);
    if (source) place(source, join(folder, entry.path), entry.mode);
  }

  for (const executable of request.executables) {
    place(executable, join(folder, "bin", basename(executable)), 0o755);
  }
}

function place(source: string, destination: string, mode: number): void {
  mkdirSync(dirname(destination), { recursive: true, mode: 0o755 });
  copyFileSync(source, destination);
  chmodSync(destination, mode);
}

async function writeTarball(
  stage: string,
  folder: string,
  file: string,
  mtime: number,
): Promise<void> {
  // GNU tar with fixed order, owner and time, and gzip without a name or time stamp.
  const tar = Bun.spawn(
    [
      "tar",
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      `--mtime=@${mtime}`,
      "--use-compress-program=gzip -n",
      "-cf",
      file,
      folder,
    ],
    { cwd: stage, stdout: "ignore", stderr: "pipe" },
  );

  if ((await tar.exited) !== 0) {
    const said = (await new Response(tar.stderr).text()).trim();
    throw new Error(`writing ${basename(file)} failed: ${said}`);
  }
}

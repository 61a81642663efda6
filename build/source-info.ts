/**
 * What the build stamps into its output: the package version, and the git commit with its
 * time (archive entries carry the commit time, not the build time).
 */
import { join } from "node:path";
import { runCommand } from "./run-command.ts";

export interface SourceInfo {
  version: string;
  /** `git rev-parse --short HEAD`, as `extprov --version` prints it. */
  commit: string;
  /** The commit's time in seconds since 1970. */
  commitTime: number;
}

/** Reads package.json and asks git; a tree that is not a git checkout cannot be built. */
export async function readSourceInfo(projectRoot: string): Promise<SourceInfo> {
  const manifest = await Bun.file(join(projectRoot, "package.json")).json();

  let commit: string;
  let commitTime: number;
  try {
    commit = runCommand(["git", "rev-parse", "--short", "HEAD"], { cwd: projectRoot }).trim();
    commitTime = Number(runCommand(["git", "log", "-1", "--format=%ct"], { cwd: projectRoot }));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`the build embeds the git commit, but git could not tell it: ${reason}`);
  }

  return { version: manifest.version, commit, commitTime };
}

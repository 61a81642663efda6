/**
 * Runs a helper program (git, npm, tar) for the build and returns its stdout; a failure
 * names the command and keeps the program's own last words.
 */
export function runCommand(command: string[], options: { cwd?: string } = {}): string {
  const result = Bun.spawnSync(command, {
    cwd: options.cwd,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });

  if (result.exitCode !== 0) {
    const said = result.stderr.toString().trim().split("\n").slice(-5).join("\n");
    throw new Error(`\`${command.join(" ")}\` failed (exit ${result.exitCode}): ${said}`);
  }

  return result.stdout.toString();
}

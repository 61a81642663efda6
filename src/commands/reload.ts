/**
 * `extprov reload`: sends SIGHUP to the extprov named by the pid file, after /proc has
 * confirmed it is extprov. The reload itself happens there, and its log says how it went;
 * under systemd, `systemctl reload extprov` does the same through ExecReload.
 */
import { ExitCode, ReloadError } from "../errors.ts";
import { findRunningExtprov } from "../system/pid-file.ts";

export function reloadCommand(pidFile: string, print: (text: string) => void): number {
  const pid = findRunningExtprov(pidFile);

  try {
    process.kill(pid, "SIGHUP");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ESRCH") {
      throw new ReloadError(`extprov (pid ${pid}) exited before it could be signalled`);
    }
    throw new ReloadError(
      `not allowed to signal extprov (pid ${pid}) (${code})`,
      "run as root or as the user extprov runs as",
    );
  }

  print(`sent SIGHUP to extprov (pid ${pid}); its log says whether the reload succeeded`);
  return ExitCode.ok;
}

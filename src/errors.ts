/**
 * Error types that carry what a person on a device needs: what is wrong, where, how to fix
 * it, and the exit code the process ends with. Messages never contain secret values.
 */

/** Exit codes; documented in README and `extprov --help`. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  listen: 4,
  probe: 5,
  reload: 6,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure that is the user's to fix; `hint` says how. */
export class ExtprovError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** One line: message, then the hint after a semicolon. */
  describe(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}

/** Something in the configuration or a credential file is wrong. */
export class ConfigError extends ExtprovError {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly problem: string,
    hint?: string,
  ) {
    super(field ? `${file}: ${field}: ${problem}` : `${file}: ${problem}`, ExitCode.config, hint);
  }
}

/** Several configuration problems found in one pass, reported together. */
/** Past this many problems a file is more likely the wrong file than a list to work through. */
const shownProblems = 20;

export class ConfigErrors extends ExtprovError {
  constructor(readonly errors: ConfigError[]) {
    const lines = errors.slice(0, shownProblems).map((error) => error.describe());
    if (errors.length > shownProblems) {
      const more = errors.length - shownProblems;
      lines.push(
        `${errors[0]!.file}: and ${more} more problems; fix these first, or check that this is the right file`,
      );
    }
    super(lines.join("\n"), ExitCode.config);
  }

  override describe(): string {
    return this.message;
  }
}

/** The endpoint cannot be opened as configured (socket path, ownership, address). */
export class ListenError extends ExtprovError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.listen, hint);
  }
}

/** `extprov probe` found the endpoint unreachable or its answer unusable for iotedged. */
export class ProbeError extends ExtprovError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.probe, hint);
  }
}

/** `extprov reload` could not find or signal the running service. */
export class ReloadError extends ExtprovError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.reload, hint);
  }
}

/** Wrong command-line arguments: what was wrong, how to fix it, and where usage is shown. */
export class UsageError extends ExtprovError {
  constructor(message: string, hint?: string) {
    const help = "see extprov --help";
    super(message, ExitCode.usage, hint ? `${hint}; ${help}` : help);
  }
}

/** Describes any thrown value without a stack trace, for logs and the terminal. */
export function describeError(error: unknown): string {
  if (error instanceof ExtprovError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}

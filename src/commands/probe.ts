/**
 * `extprov probe`: asks an endpoint what iotedged would ask, applies iotedged's checks to
 * the answer, and prints the verdict with every secret masked. Any problem exits
 * `ExitCode.probe` with one precise line.
 */
import { ExitCode, ProbeError } from "../errors.ts";
import { defaultEndpoint } from "../config/load.ts";
import { sanitizeLine } from "../hooks/output.ts";
import {
  ask,
  describeTarget,
  parseEndpoint,
  targetOf,
  type Answer,
  type Target,
} from "../probe/ask.ts";
import { checkAnswer } from "../probe/check-answer.ts";
import { loadConfigFrom, type ConfigSource } from "../provisioning/load-state.ts";
import { maskedInfo } from "../provisioning/state.ts";

export interface ProbeOptions {
  /** --endpoint, if given. */
  endpoint?: string;
  /** --config or --demo, if given: probe the endpoint it names. */
  source?: ConfigSource;
}

export async function probeCommand(
  options: ProbeOptions,
  print: (text: string) => void,
): Promise<number> {
  const target = chooseTarget(options);
  const answer = await ask(target);
  const where = describeTarget(target);

  if (answer.status < 200 || answer.status > 299) throw statusError(where, answer);

  const verdict = checkAnswer(answer.body);
  print(
    `probe passed: ${where} answered ${answer.status} in ${answer.ms} ms with what iotedged needs`,
  );
  print(JSON.stringify(maskedInfo(verdict.info), null, 2));

  if (answer.contentType?.startsWith("application/json") !== true) {
    verdict.warnings.push(
      "the answer's content-type is not application/json; iotedged does not check it, other clients may",
    );
  }

  for (const warning of verdict.warnings) print(`warning: ${warning}`);
  return ExitCode.ok;
}

function chooseTarget(options: ProbeOptions): Target {
  if (options.endpoint !== undefined) return parseEndpoint(options.endpoint);
  if (options.source !== undefined) return targetOf(loadConfigFrom(options.source).listen);
  return parseEndpoint(defaultEndpoint);
}

/** Names the status, and the ErrorResponse message when there is one, key-like runs redacted. */
function statusError(where: string, answer: Answer): ProbeError {
  let message: string | undefined;
  try {
    const body = JSON.parse(answer.body) as { message?: unknown };
    if (typeof body.message === "string") message = sanitizeLine(body.message, []);
  } catch {
    // Not an ErrorResponse: the status alone says it.
  }

  const said = message === undefined ? "" : `: "${message}"`;
  return new ProbeError(
    `${where} answered ${answer.status}, not 2xx${said}`,
    "iotedged treats any other status as a failed provisioning and stops",
  );
}

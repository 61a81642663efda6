/**
 * Turns TypeBox's validation errors into a problem and a hint a person can act on. The
 * rejected value is never repeated: it may be a key.
 */
import { ValueErrorType, type ValueError } from "@sinclair/typebox/value";

export interface SchemaProblem {
  problem: string;
  hint?: string;
}

/** Describes one TypeBox error by what was expected and what kind of value was found. */
export function describeSchemaError(error: ValueError): SchemaProblem {
  const found = kindOf(error.value);

  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return {
        problem: "unknown field",
        hint: `remove it or check its spelling; allowed here: ${allowedFields(error)}`,
      };
    case ValueErrorType.ObjectRequiredProperty: {
      const allowed = allowedValues(error);
      const hint = allowed.length > 0 ? `add it: one of ${allowed.join(", ")}` : "add it";
      return { problem: "missing required field", hint };
    }
    case ValueErrorType.String:
      return { problem: `expected a string, found ${found}`, hint: stringHint(error) };
    case ValueErrorType.StringPattern:
      return { problem: "has the wrong form", hint: patternHint(error) };
    case ValueErrorType.StringMinLength:
      return { problem: "must not be empty" };
    case ValueErrorType.Boolean:
      return { problem: `expected true or false, found ${found}` };
    case ValueErrorType.Integer:
      return {
        problem: `expected a whole number, found ${found}`,
        hint: typeof error.value === "string" ? "write the number without quotes" : undefined,
      };
    case ValueErrorType.IntegerMinimum:
      return { problem: `must be at least ${error.schema.minimum}` };
    case ValueErrorType.IntegerMaximum:
      return { problem: `must be at most ${error.schema.maximum}` };
    case ValueErrorType.Array:
      return { problem: `expected a list, found ${found}`, hint: arrayHint(error) };
    case ValueErrorType.ArrayMinItems:
      return { problem: "must not be an empty list", hint: arrayHint(error) };
    case ValueErrorType.Object:
      return {
        problem: `expected a mapping of fields, found ${found}`,
        hint: error.path === "" ? topLevelHint : "indent its fields below it",
      };
    case ValueErrorType.Union:
      return describeUnion(error, found);
    default:
      return { problem: `${error.message.toLowerCase()}, found ${found}` };
  }
}

const topLevelHint =
  "the file must be a mapping with device, credentials and listen sections, each name at " +
  "the start of a line and followed by a colon; start from examples/config.yaml";

function describeUnion(error: ValueError, found: string): SchemaProblem {
  const allowed = allowedValues(error);

  if (allowed.length > 0) {
    return { problem: `expected one of ${allowed.join(", ")}, found ${quotedOr(error, found)}` };
  }

  return { problem: `expected a name or a numeric id, found ${found}` };
}

/** The values an enum field (a union of string literals) allows; empty for other fields. */
function allowedValues(error: ValueError): string[] {
  return (error.schema.anyOf ?? [])
    .map((branch: { const?: unknown }) => branch.const)
    .filter((value: unknown) => typeof value === "string");
}

/** Fields whose value is a secret: never repeated, whatever the error. */
const secretField = /\/(key|value)$/;
const maxQuoted = 24;

/**
 * A string found in an enum field, quoted and cut short so a typo can be spotted, or
 * `kind` when it may be a secret: in a secret field, or with a run of 16 or more base64
 * characters of mixed case or with digits, as a pasted key has.
 */
function quotedOr(error: ValueError, kind: string): string {
  const value = error.value;
  if (typeof value !== "string" || value === "" || secretField.test(error.path)) return kind;
  const runs = value.match(/[A-Za-z0-9+/]{16,}/g) ?? [];
  if (runs.some((run) => /[a-z]/.test(run) && /[A-Z0-9]/.test(run))) return kind;

  const printable = value.replace(/[^\x20-\x7e]/g, "?");
  const cut = printable.length > maxQuoted ? `${printable.slice(0, maxQuoted)}...` : printable;
  return JSON.stringify(cut);
}

function stringHint(error: ValueError): string | undefined {
  if (error.path.endsWith("/mode")) return 'write the mode in quotes, e.g. mode: "0660"';
  if (typeof error.value === "number" || typeof error.value === "boolean")
    return "put the value in quotes";
  return undefined;
}

function arrayHint(error: ValueError): string | undefined {
  if (error.path.endsWith("/hook"))
    return 'give the program and its arguments, e.g. hook: ["/usr/libexec/extprov/reprovision"]';
  return undefined;
}

function patternHint(error: ValueError): string | undefined {
  if (error.path.endsWith("/mode")) return 'write an octal mode in quotes, e.g. "0660"';
  return undefined;
}

function allowedFields(error: ValueError): string {
  return Object.keys(error.schema.properties ?? {}).join(", ");
}

/** The kind of a value, never the value itself. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return value === "" ? "an empty string" : "a string";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a number";
  return `a ${typeof value}`;
}

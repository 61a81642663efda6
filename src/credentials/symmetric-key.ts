/**
 * Symmetric device keys. iotedged decodes the `key` field as standard base64 (RFC 4648
 * section 4, with padding) and signs SAS tokens with the bytes, so that is what is checked.
 */

const minKeyBytes = 16;
const maxKeyBytes = 64;
const standardBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface KeyProblem {
  problem: string;
  hint: string;
}

/** Returns the key without surrounding white space, or the reason it cannot be used. */
export function checkSymmetricKey(text: string): { key: string } | KeyProblem {
  const key = text.trim();

  if (key === "")
    return { problem: "the key is empty", hint: "paste the device's primary key from the IoT hub" };
  if (/\s/.test(key)) {
    return {
      problem: "the key contains white space",
      hint: "put the key on one line without spaces",
    };
  }

  if (/[-_]/.test(key) && /^[A-Za-z0-9_-]+=*$/.test(key)) {
    return {
      problem: "the key is URL-safe base64, which iotedged does not decode",
      hint: "replace - with + and _ with /, and pad with = to a multiple of 4 characters",
    };
  }

  if (!standardBase64.test(key)) {
    return {
      problem: "the key is not valid standard base64",
      hint: "copy the key again from the IoT hub; it uses A-Z a-z 0-9 + / and ends in = padding",
    };
  }

  // IoT Hub takes device keys of 16 to 64 bytes (its SDKs' MinKeyLengthInBytes and
  // MaxKeyLengthInBytes); a shorter one is most likely a key file cut short, a longer one
  // two keys run together or another secret.
  const bytes = Buffer.from(key, "base64").length;
  if (bytes < minKeyBytes) return wrongLength(bytes, "shorter", "the key may be cut short; ");
  if (bytes > maxKeyBytes) {
    return wrongLength(bytes, "longer", "it should hold one device key and nothing else; ");
  }

  return { key };
}

function wrongLength(bytes: number, comparison: string, cause: string): KeyProblem {
  return {
    problem: `the key decodes to ${bytes} bytes, ${comparison} than IoT Hub device keys (${minKeyBytes} to ${maxKeyBytes} bytes; its own are 32)`,
    hint: `${cause}copy the device's primary key again from the IoT hub`,
  };
}

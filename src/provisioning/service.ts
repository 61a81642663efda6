/**
 * Holds the state being served and swaps it whole: a request sees the old state or the
 * new one, never a mix.
 */
import { log } from "../log.ts";
import type { ProvisioningState } from "./state.ts";

export class ProvisioningService {
  #state: ProvisioningState;

  constructor(initial: ProvisioningState) {
    this.#state = initial;
  }

  /** The state to answer from now. */
  current(): ProvisioningState {
    return this.#state;
  }

  /** Serves `next` from the next request on. */
  swap(next: ProvisioningState): void {
    this.#state = next;
  }

  /**
   * Answers iotedged's reprovision notice. Returns an error Response when it fails,
   * undefined when done.
   */
  async reprovision(): Promise<Response | undefined> {
    const { hubName, deviceId } = this.#state.info;
    log.info("reprovision requested", { hub: hubName, device: deviceId });
    return undefined;
  }
}

/** The text of `extprov --help`; README's command reference follows it. */
import { defaultConfigPath } from "./args.ts";

export const helpText = `extprov: the external provisioning endpoint for Azure IoT Edge 1.1 (iotedged)

Usage:
  extprov [serve] [--config FILE | --demo] [--log-level L] [--log-format F]
  extprov check   [--config FILE | --demo]
  extprov --version | --help

Commands:
  serve     Load and validate the configuration and every credential it names, open the
            endpoint with the configured owner, group and mode, and answer iotedged.
            SIGHUP reloads; SIGTERM or SIGINT stops and removes the socket. (default)
  check     Validate everything serve would, print what would be served with secrets
            masked, and exit.

Options:
  -c, --config FILE    Configuration file, YAML or JSON (default ${defaultConfigPath})
      --demo           Use the built-in demo configuration: a fake device served on
                       ./run/external.sock
      --log-level L    debug, info, warn or error (default info)
      --log-format F   text or json (default text; under systemd, text carries journald
                       priorities)
  -h, --help           Show this help
  -V, --version        Show version, commit and runtime

Exit codes:
  0  stopped cleanly, or check passed
  1  unexpected failure
  2  wrong command-line arguments
  3  the configuration or a credential is invalid
  4  the endpoint cannot be opened as configured (socket path, owner, mode, address),
     or its socket was removed while serving

Query the endpoint as iotedged does:
  curl --unix-socket ./run/external.sock \\
    'http://localhost/device/provisioninginformation?api-version=2019-04-10'
`;

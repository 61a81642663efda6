/** The text of `extprov --help`; README's command reference follows it. */
import { defaultEndpoint } from "../config/load.ts";
import { defaultConfigPath, defaultPidFile } from "./args.ts";

export const helpText = `extprov: the external provisioning endpoint for Azure IoT Edge 1.1 (iotedged)

Usage:
  extprov [serve] [--config FILE | --demo] [--pid-file FILE] [--log-level L] [--log-format F]
  extprov check   [--config FILE | --demo]
  extprov reload  [--pid-file FILE]
  extprov probe   [--endpoint URL | --config FILE | --demo]
  extprov version | help           (the same as --version and --help)
  extprov --version | --help

Commands:
  serve     Load and validate the configuration and every credential it names, open the
            endpoint with the configured owner, group and mode, and answer iotedged.
            SIGHUP reloads; SIGTERM or SIGINT stops and removes the socket. (default)
  check     Validate everything serve would, print what would be served with secrets
            masked, and exit.
  reload    Send SIGHUP to the extprov whose pid is in the pid file, after checking in
            /proc that it is extprov. Under systemd: systemctl reload extprov.
  probe     Ask an endpoint exactly as iotedged does and apply iotedged's checks to the
            answer; print the verdict with secrets masked.
  version   Print the version, commit and runtime, as --version does.
  help      Print this help, as --help does.

Options:
  -c, --config FILE    Configuration file, YAML or JSON (default ${defaultConfigPath})
      --demo           Use the built-in demo configuration: a fake device served on
                       ./run/external.sock
      --pid-file FILE  serve: write the pid there (default: none); reload: read it
                       (default ${defaultPidFile})
      --endpoint URL   probe: unix:///path or http://host:port (default: the configuration's
                       endpoint if --config is given, else ${defaultEndpoint})
      --log-level L    debug, info, warn or error (default info)
      --log-format F   text or json (default text; under systemd, text carries journald
                       priorities)
  -h, --help           Show this help
  -V, --version        Show version, commit and runtime

Exit codes:
  0  stopped cleanly, check or probe passed, or reload signalled
  1  unexpected failure, or what a command prints could not be written
  2  wrong command-line arguments (logged as "usage error", whatever the command)
  3  the configuration or a credential is invalid
  4  the endpoint cannot be opened as configured (socket path, owner, mode, address),
     or its socket was removed while serving, or the pid file names another
     running extprov or is not a pid file
  5  probe: the endpoint cannot be reached, or its answer would fail iotedged
  6  reload: no running extprov found through the pid file, or it cannot be signalled

Query the endpoint as iotedged does:
  extprov probe --endpoint unix:///var/run/external/external.sock
  curl --unix-socket ./run/external.sock \\
    'http://localhost/device/provisioninginformation?api-version=2019-04-10'
`;

// Errors of `headway import`. Each names the source (file or database) and the row that caused
// it, so the operator can fix the headscale side or choose --merge knowingly.
import { HeadwayError, registerErrors, type ErrorSpec } from '../util/headway-error.js';

export const ImportErrors = registerErrors({
  sourceUnreadable: {
    code: 'HW_IMPORT_SOURCE_UNREADABLE',
    status: 400,
    meaning: 'The headscale database, noise key file or config file could not be opened or read.',
    fix: 'Check the --database path or postgres:// URL, the --noise-key and --headscale-config paths, and that this user may read them.',
  },
  unknownSchema: {
    code: 'HW_IMPORT_UNKNOWN_SCHEMA',
    status: 400,
    meaning: 'The database is not a headscale database of a supported version (0.23 to 0.29): its migrations table is missing or names a migration this Headway does not know.',
    fix: 'Upgrade headscale to a version between 0.23 and 0.29 and let it migrate the database, or use a newer Headway.',
  },
  badSourceRow: {
    code: 'HW_IMPORT_BAD_ROW',
    status: 400,
    meaning: 'A row of the headscale database holds a value that cannot be imported (a malformed key, address or route).',
    fix: 'Fix or delete the named row in headscale (headscale nodes delete, ...) and run the import again.',
  },
  tailnetNotEmpty: {
    code: 'HW_IMPORT_TAILNET_NOT_EMPTY',
    status: 409,
    meaning: 'The target tailnet already holds users or nodes that did not come from this headscale database.',
    fix: 'Import into an empty tailnet (--tailnet), or pass --merge to add the headscale data next to what is there.',
  },
  conflict: {
    code: 'HW_IMPORT_CONFLICT',
    status: 409,
    meaning: "A headscale node's address or machine key is already used by a different node of the target tailnet.",
    fix: 'Delete or move the conflicting Headway node, or import into another tailnet; nothing was imported.',
  },
  addressOutsidePrefixes: {
    code: 'HW_IMPORT_ADDRESS_OUTSIDE_PREFIXES',
    status: 400,
    meaning: "A headscale node's address lies outside Headway's prefixes.v4 / prefixes.v6, so the node could not keep it.",
    fix: "Set Headway's prefixes to headscale's (prefixes.v4 and prefixes.v6 of headscale's config.yaml) and run the import again.",
  },
  noiseKeyConflict: {
    code: 'HW_IMPORT_NOISE_KEY_CONFLICT',
    status: 409,
    meaning: "Headway already has a different Noise private key and nodes that trust it; replacing it would cut them off.",
    fix: "Import into a fresh Headway (no nodes yet), or keep Headway's key and have the headscale devices log in again.",
  },
  invalidPolicy: {
    code: 'HW_IMPORT_INVALID_POLICY',
    status: 400,
    meaning: "headscale's policy does not parse as a Tailscale policy in Headway.",
    fix: 'Fix the policy (the message names the place), or give a corrected file with --policy.',
  },
});

export function importError(spec: ErrorSpec, message: string, cause?: unknown): HeadwayError {
  return new HeadwayError(spec, message, cause === undefined ? undefined : { cause });
}

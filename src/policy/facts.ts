// The tailnet facts the policy index is built from: plain data, no store or wire types, so the
// state part, the offline commands and the benchmarks all feed the same engine.

/** Tailscale's user roles; they decide role autogroups and the is-admin/is-owner caps. */
export type UserRole = 'owner' | 'admin' | 'it-admin' | 'network-admin' | 'billing-admin' | 'auditor' | 'member';

export interface UserFacts {
  readonly id: number;
  /** Login name; policies write `name@` for users without an email. */
  readonly name: string;
  /** What policies write as `alice@example.com`; may be empty. */
  readonly email: string;
  /** Default `member`. */
  readonly role?: UserRole;
}

export interface NodeFacts {
  readonly id: number;
  /** MagicDNS label; unique per tailnet. */
  readonly name: string;
  readonly ipv4: string | null;
  readonly ipv6: string | null;
  /** Owner; ignored by selectors when the node is tagged. */
  readonly userId: number | null;
  readonly tags: readonly string[];
  /** Hostinfo.RoutableIPs. */
  readonly advertisedRoutes: readonly string[];
  /** Routes an admin or autoApprovers approved; only advertised and approved routes are served. */
  readonly approvedRoutes: readonly string[];
  readonly online: boolean;
  /**
   * Registration order for HA route election: the router registered first is primary. Defaults
   * to `id` (ids are assigned in registration order).
   */
  readonly registeredOrder?: number;
  /** Device posture attributes (`node:os` ...) for srcPosture; absent ones never match. */
  readonly postureAttributes?: Readonly<Record<string, string | number | boolean>>;
}

export interface TailnetSettings {
  /** The `tailnet-display-name` cap value; default: the owner's email. */
  readonly displayName?: string;
  /** Domains associated with the tailnet (for `user:*@domain` and `localpart:*@domain`); default: the owner's email domain. */
  readonly domains?: readonly string[];
  /** Tailnet auto-update setting, sent as `default-auto-update`; absent = not sent. */
  readonly autoUpdate?: boolean;
  /** Base of the ssh `check` hold-and-delegate URL; the service sends `https://unused`. */
  readonly sshCheckBaseUrl?: string;
}

export interface TailnetFacts {
  readonly users: readonly UserFacts[];
  readonly nodes: readonly NodeFacts[];
  readonly settings?: TailnetSettings;
}

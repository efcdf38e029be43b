// Capability versions we branch on. One named gate per behaviour; code says
// `capver >= CapVer.PacketFilters`, never a bare number.
// Form of each line: capver N (first release 1.x): what the client understands.
// Source: tailcfg/tailcfg.go @de9ec7ee (CurrentCapabilityVersion history), see
// ../shared/spec/protocol.md section 11.

export const CapVer = {
  /** capver 6 (before 1.0): null `PacketFilter` means unchanged. */
  NullPacketFilterUnchanged: 6,
  /** capver 16 (before 1.0): `Node.Online` and `MapResponse.OnlineChange`. */
  OnlineChange: 16,
  /** capver 33 (1.20): `MapResponse.PeersChangedPatch` (DERP + Endpoints). */
  PeersChangedPatch: 33,
  /** capver 49 (1.32): the Noise early payload (EarlyNoise). */
  EarlyNoise: 49,
  /** capver 68 (1.48): `Stream:true` polls are read-only; lite updates carry endpoints and hostinfo. */
  ReadOnlyStreams: 68,
  /** capver 74 (1.50): `Node.CapMap`. */
  NodeCapMap: 74,
  /** capver 81 (1.56): `MapResponse.PacketFilters` named chunks. */
  PacketFilters: 81,
  /** capver 109 (1.78): `cap:<capability>` entries in `FilterRule.SrcIPs`. */
  SrcCaps: 109,
  /** capver 111 (1.80): `Node.HomeDERP`; older clients need the legacy `Node.DERP` string. */
  HomeDERP: 111,
  /** capver 112 (1.80): null `Node.AllowedIPs` means "same as Addresses". */
  NullAllowedIPs: 112,
  /** capver 137 (1.98): 429 with Retry-After on `/machine/register`. */
  RegisterRetryAfter: 137,
} as const;

/** The oldest client Headway serves: Tailscale 1.34 (capver 51). */
export const MIN_CAPVER = 51;
/** The newest capability version whose behaviour Headway knows (tailscale main, 2026-08). */
export const CURRENT_CAPVER = 145;

/** Tailscale minor release -> capability version (from headscale's generated table). */
export const CAPVER_OF_RELEASE: Readonly<Record<string, number>> = {
  '1.34': 51, '1.36': 56, '1.38': 58, '1.40': 61, '1.42': 62, '1.44': 63, '1.46': 65, '1.48': 68,
  '1.50': 74, '1.52': 79, '1.54': 79, '1.56': 82, '1.58': 85, '1.60': 87, '1.62': 88, '1.64': 90,
  '1.66': 95, '1.68': 97, '1.70': 102, '1.72': 104, '1.74': 106, '1.76': 106, '1.78': 109,
  '1.80': 113, '1.82': 115, '1.84': 116, '1.86': 123, '1.88': 125, '1.90': 130, '1.92': 131,
  '1.94': 131, '1.96': 133, '1.98': 138,
};

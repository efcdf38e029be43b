// Tailscale's wire types, spelled exactly as tailcfg spells them in JSON so that
// JSON.stringify needs no mapping layer. Optional (`?`) = omitted on the wire; `| null` only
// where null means something different from absent. Semantics: ../shared/spec/protocol.md §9-10.

/** RFC 3339 time string, e.g. `2026-04-10T22:29:24Z`. Zero time is `0001-01-01T00:00:00Z`. */
export type Time = string;
/** `netip.Prefix` text: `100.64.0.1/32`, `fd7a:115c:a1e0::1/128`. */
export type Prefix = string;
/** `netip.AddrPort` text: `1.2.3.4:41641`, `[2001:db8::1]:41641`. */
export type AddrPort = string;
export type NodeID = number;
export type UserID = number;
export type StableNodeID = string;

/** Zero time as Go marshals it. */
export const ZERO_TIME: Time = '0001-01-01T00:00:00Z';

// --- registration --------------------------------------------------------------------------

export interface RegisterResponseAuth {
  Provider?: string;
  LoginName?: string;
  Oauth2Token?: unknown;
  AuthKey?: string;
}

export interface RegisterRequest {
  Version?: number;
  NodeKey: string;
  OldNodeKey?: string;
  NLKey?: string;
  Auth?: RegisterResponseAuth | null;
  /** Zero = no request; a past time = logout; a future time = "expire sooner". */
  Expiry?: Time;
  /** The AuthURL the client waits on (interactive login). */
  Followup?: string;
  Hostinfo?: Hostinfo | null;
  Ephemeral?: boolean;
  NodeKeySignature?: string | null;
  Timestamp?: Time | null;
  Tailnet?: string;
}

export interface User {
  ID: UserID;
  DisplayName: string;
  ProfilePicURL?: string;
  Created?: Time;
}

export interface Login {
  ID: number;
  Provider: string;
  LoginName: string;
  DisplayName: string;
  ProfilePicURL?: string;
}

export interface RegisterResponse {
  User: User;
  Login: Login;
  NodeKeyExpired: boolean;
  MachineAuthorized: boolean;
  AuthURL: string;
  NodeKeySignature?: string | null;
  Error: string;
}

// --- hostinfo ------------------------------------------------------------------------------

export interface Service {
  Proto: string;
  Port: number;
  Description?: string;
}

export interface NetInfo {
  MappingVariesByDestIP?: boolean | null;
  WorkingIPv6?: boolean | null;
  OSHasIPv6?: boolean | null;
  WorkingUDP?: boolean | null;
  WorkingICMPv4?: boolean | null;
  HavePortMap?: boolean;
  UPnP?: boolean | null;
  PMP?: boolean | null;
  PCP?: boolean | null;
  /** Home DERP region; becomes `Node.HomeDERP` / legacy `Node.DERP`. */
  PreferredDERP?: number;
  LinkType?: string;
  DERPLatency?: Record<string, number>;
  FirewallMode?: string;
  [extra: string]: unknown;
}

/** Everything is optional: clients omit zero values. Unknown fields are kept as they came. */
export interface Hostinfo {
  IPNVersion?: string;
  FrontendLogID?: string;
  BackendLogID?: string;
  OS?: string;
  OSVersion?: string;
  Hostname?: string;
  GoArch?: string;
  GoVersion?: string;
  /** Advertised routes (`--advertise-routes`, exit node = `0.0.0.0/0` + `::/0`). */
  RoutableIPs?: Prefix[] | null;
  /** Advertised tags (`--advertise-tags`). */
  RequestTags?: string[] | null;
  Services?: Service[] | null;
  NetInfo?: NetInfo | null;
  /** Non-empty = the node runs Tailscale SSH. Note the lower-case JSON name. */
  sshHostKeys?: string[] | null;
  [extra: string]: unknown;
}

// --- map protocol --------------------------------------------------------------------------

export interface MapRequest {
  Version?: number;
  Compress?: string;
  KeepAlive?: boolean;
  NodeKey: string;
  DiscoKey?: string;
  Stream?: boolean;
  Hostinfo?: Hostinfo | null;
  MapSessionHandle?: string;
  MapSessionSeq?: number;
  Endpoints?: AddrPort[] | null;
  EndpointTypes?: number[] | null;
  TKAHead?: string;
  /** Deprecated; below capver 68 it marks a poll whose endpoints must be ignored. */
  ReadOnly?: boolean;
  OmitPeers?: boolean;
  DebugFlags?: string[] | null;
  [extra: string]: unknown;
}

export interface PortRange {
  First: number;
  Last: number;
}

export interface NetPortRange {
  /** `*`, an IP, a CIDR (host bits zero) or an inclusive range `a-b`. */
  IP: string;
  Ports: PortRange;
}

export type NodeCapMap = Record<string, unknown[] | null>;
export type PeerCapMap = Record<string, unknown[] | null>;

export interface CapGrant {
  Dsts: Prefix[];
  CapMap: PeerCapMap;
}

/**
 * One packet-filter rule, enforced by the receiving node on inbound packets.
 * `DstPorts` and `CapGrant` are mutually exclusive. Absent `IPProto` = TCP, UDP, ICMPv4, ICMPv6.
 */
export interface FilterRule {
  SrcIPs: string[];
  DstPorts?: NetPortRange[];
  IPProto?: number[];
  CapGrant?: CapGrant[];
}

export interface SSHPrincipal {
  node?: StableNodeID;
  nodeIP?: string;
  userLogin?: string;
  any?: boolean;
}

export interface SSHRecorderFailureAction {
  RejectSessionWithMessage?: string;
  TerminateSessionWithMessage?: string;
  NotifyURL?: string;
}

export interface SSHAction {
  message?: string;
  reject?: boolean;
  accept?: boolean;
  /** Nanoseconds. */
  sessionDuration?: number;
  allowAgentForwarding?: boolean;
  holdAndDelegate?: string;
  allowLocalPortForwarding?: boolean;
  allowRemotePortForwarding?: boolean;
  recorders?: AddrPort[];
  onRecordingFailure?: SSHRecorderFailureAction;
}

export interface SSHRule {
  ruleExpires?: Time;
  principals: SSHPrincipal[];
  /** Requested user (or `*`) -> local user; `=` = same name; `` = no match for that user. */
  sshUsers: Record<string, string>;
  action: SSHAction;
  acceptEnv?: string[];
}

export interface SSHPolicy {
  /** First matching rule wins; null and [] both mean "no rules". */
  rules: SSHRule[] | null;
}

export interface Node {
  ID: NodeID;
  StableID: StableNodeID;
  /** MagicDNS FQDN with trailing dot. */
  Name: string;
  User: UserID;
  Sharer?: UserID;
  Key: string;
  /** Omitted = no expiry. */
  KeyExpiry?: Time;
  KeySignature?: string;
  Machine?: string;
  DiscoKey?: string;
  Addresses: Prefix[];
  /**
   * Routes WireGuard sends to this node. Since capver 112 null means "same as Addresses";
   * older clients need it present (absent = no traffic).
   */
  AllowedIPs?: Prefix[] | null;
  Endpoints?: AddrPort[];
  /** Legacy home DERP, `127.3.3.40:<region>`; for clients below CapVer.HomeDERP. */
  DERP?: string;
  /** Gate: CapVer.HomeDERP. */
  HomeDERP?: number;
  /** Required at least `{}` for capver 51 (its LocalAPI panics on a missing Hostinfo). */
  Hostinfo: Hostinfo;
  Created?: Time;
  Cap?: number;
  Tags?: string[];
  PrimaryRoutes?: Prefix[];
  LastSeen?: Time;
  /** null/absent = unknown. Gate: CapVer.OnlineChange. */
  Online?: boolean | null;
  MachineAuthorized?: boolean;
  /** Gate: CapVer.NodeCapMap. */
  CapMap?: NodeCapMap;
  Expired?: boolean;
}

export interface UserProfile {
  ID: UserID;
  LoginName: string;
  DisplayName: string;
  ProfilePicURL?: string;
  Groups?: string[];
}

/** Element of `PeersChangedPatch`: every field but NodeID is optional; present = set. */
export interface PeerChange {
  NodeID: NodeID;
  DERPRegion?: number;
  Cap?: number;
  CapMap?: NodeCapMap;
  Endpoints?: AddrPort[];
  Key?: string;
  KeySignature?: string;
  DiscoKey?: string;
  Online?: boolean;
  LastSeen?: Time;
  KeyExpiry?: Time;
}

export interface DERPNode {
  Name: string;
  RegionID: number;
  HostName: string;
  CertName?: string;
  IPv4?: string;
  IPv6?: string;
  /** 0 = 3478; -1 = no STUN. */
  STUNPort?: number;
  STUNOnly?: boolean;
  /** 0 = 443. */
  DERPPort?: number;
  InsecureForTests?: boolean;
  STUNTestIP?: string;
  CanPort80?: boolean;
}

export interface DERPRegion {
  RegionID: number;
  RegionCode: string;
  RegionName: string;
  Latitude?: number;
  Longitude?: number;
  Avoid?: boolean;
  NoMeasureNoHome?: boolean;
  Nodes: DERPNode[];
}

export interface DERPHomeParams {
  RegionScore?: Record<string, number>;
}

export interface DERPMap {
  HomeParams?: DERPHomeParams | null;
  /** Keys are region IDs as decimal strings. */
  Regions: Record<string, DERPRegion>;
  omitDefaultRegions?: boolean;
}

export interface DNSResolver {
  Addr: string;
  BootstrapResolution?: string[];
  UseWithExitNode?: boolean;
}

export interface DNSRecord {
  Name: string;
  Type?: string;
  Value: string;
}

export interface DNSConfig {
  Resolvers?: DNSResolver[];
  /** Split DNS; an empty list = answer from the in-client resolver (quad-100). */
  Routes?: Record<string, DNSResolver[] | null>;
  FallbackResolvers?: DNSResolver[];
  Domains?: string[];
  /** MagicDNS on. */
  Proxied?: boolean;
  CertDomains?: string[];
  ExtraRecords?: DNSRecord[];
  ExitNodeFilteredSet?: string[];
}

export interface PingRequest {
  URL: string;
  URLIsNoise?: boolean;
  Log?: boolean;
  Types?: string;
  IP?: string;
  Payload?: string;
}

export interface Debug {
  SleepSeconds?: number;
  DisableLogTail?: boolean;
  Exit?: number;
}

/**
 * One message of the map stream. Absent = unchanged for every field, with the exceptions the
 * protocol defines: a non-empty `Peers` replaces the whole list (and `[]` cannot mean "none";
 * use PeersRemoved); `PacketFilter: []` blocks everything.
 */
export interface MapResponse {
  KeepAlive?: boolean;
  PingRequest?: PingRequest;
  PopBrowserURL?: string;
  Node?: Node;
  DERPMap?: DERPMap;
  Peers?: Node[];
  PeersChanged?: Node[];
  /** Applied before PeersChanged. */
  PeersRemoved?: NodeID[];
  /** Applied after PeersChanged. Gate: CapVer.PeersChangedPatch. */
  PeersChangedPatch?: PeerChange[];
  /** Node ID (decimal string) -> true = LastSeen now, false = cleared. */
  PeerSeenChange?: Record<string, boolean>;
  /** Node ID (decimal string) -> online. Gate: CapVer.OnlineChange. */
  OnlineChange?: Record<string, boolean>;
  DNSConfig?: DNSConfig;
  Domain?: string;
  CollectServices?: boolean | null;
  /** null/absent = unchanged; [] = block everything. */
  PacketFilter?: FilterRule[] | null;
  /**
   * Named filter chunks; value null deletes a name; key `*` with null deletes all first.
   * The effective filter is the concatenation of the lists sorted by name.
   * Gate: CapVer.PacketFilters.
   */
  PacketFilters?: Record<string, FilterRule[] | null>;
  UserProfiles?: UserProfile[];
  Health?: string[] | null;
  SSHPolicy?: SSHPolicy;
  ControlTime?: Time;
  Debug?: Debug;
}

export interface OverTLSPublicKeyResponse {
  legacyPublicKey: string;
  publicKey: string;
}

export interface EarlyNoise {
  nodeKeyChallenge: string;
}

/**
 * @module config
 * Owns the configuration: the YAML file (headscale's key names where the meaning is the same),
 * its validation into a frozen, camelCase `Config`, the built-in defaults, and the key
 * reference table (`CONFIG_REFERENCE`) the docs are generated from.
 * May import: util, log (types only). Must never: open sockets or databases, create files or
 * directories (the parts that use a path create it), or read settings after start-up.
 * This index is the only door other parts use.
 */
export type {
  AllocationStrategy, Config, DatabaseConfig, DerpConfig, DerpServerConfig, DnsConfig, DnsExtraRecord,
  LimitsConfig, HaConfig, ListenAddress, LogConfig, MapConfig, PolicyConfig, PolicyMode, PostgresConfig, PostgresSslMode,
  PrefixesConfig, SqliteConfig, TlsConfig, OidcConfig, ScimConfig,
} from './config.js';
export {
  CONFIG_ENV_VAR, configFromObject, configFromText, defaultConfig, loadConfig,
  type ConfigFromObjectOptions, type ConfigFromTextOptions, type LoadConfigOptions,
} from './load-config.js';
export { CONFIG_REFERENCE, type ConfigKeyReference } from './reference.js';
export { ConfigError, ConfigErrors } from './errors.js';

// MagicDNS labels from OS hostnames. Tailscale lower-cases the hostname, keeps [a-z0-9-], turns
// everything else into '-', and trims to one DNS label; a clash in the tailnet gets `-1`, `-2`...

const MAX_LABEL = 63;

export function sanitizeHostname(hostname: string): string {
  const firstLabel = hostname.trim().split('.')[0] ?? '';
  const label = firstLabel
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_LABEL)
    .replace(/-+$/g, '');
  return label === '' ? 'node' : label;
}

/** Returns `base` if free, else the first free `base-N`, keeping the result a valid DNS label. */
export function uniqueGivenName(base: string, taken: (name: string) => boolean): string {
  if (!taken(base)) return base;
  for (let n = 1; ; n++) {
    const suffix = `-${n}`;
    const candidate = base.slice(0, MAX_LABEL - suffix.length).replace(/-+$/g, '') + suffix;
    if (!taken(candidate)) return candidate;
  }
}

/** Validates a name an admin chose (rename): it must already be a DNS label. */
export function isValidGivenName(name: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name);
}

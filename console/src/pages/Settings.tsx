// DNS and tailnet settings, edited here: the tailnet's display name, default key expiry, device
// approval, and its DNS (MagicDNS, nameservers, split DNS, search domains, extra records), saved
// with PATCH /api/v1/settings; the server's validation message is shown in the form, at the
// field it names. The DERP map and the MagicDNS base domain are server-wide (config file).
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, q, type Settings } from '../api';
import { useConsole } from '../main';
import { ErrorBox, Loading, Page } from '../ui';

const DAY = 86_400;

/** The form's text, one field per input; parsed into the API's shape on save. */
interface Draft {
  displayName: string;
  /** Days; '' = the server's default (node_expiry of the config). */
  expiryDays: string;
  deviceApproval: boolean;
  magicDns: boolean;
  overrideLocalDns: boolean;
  /** One per line (or comma separated). */
  nameservers: string;
  searchDomains: string;
  /** `domain: nameserver, nameserver` per line. */
  splitDns: string;
  /** `name type value` or `name value` per line. */
  extraRecords: string;
}

function draftFrom(s: Settings): Draft {
  return {
    displayName: s.display_name,
    expiryDays: s.default_key_expiry_source === 'tailnet' ? String(s.default_key_expiry_seconds / DAY) : '',
    deviceApproval: s.device_approval === true,
    magicDns: s.magic_dns,
    overrideLocalDns: s.override_local_dns,
    nameservers: s.nameservers.join('\n'),
    searchDomains: s.search_domains.join('\n'),
    splitDns: Object.entries(s.split_dns).map(([d, ns]) => `${d}: ${ns.join(', ')}`).join('\n'),
    extraRecords: s.extra_records.map((r) => [r.name, r.type, r.value].filter((p) => p !== '').join(' ')).join('\n'),
  };
}

const items = (text: string) => text.split(/[\s,]+/).filter((t) => t !== '');
const lines = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '');

/** The PATCH body for a draft; a line the console cannot even split is reported at its field. */
function bodyFrom(d: Draft): { body: Record<string, unknown> } | { field: string; message: string } {
  const split: Record<string, string[]> = {};
  for (const line of lines(d.splitDns)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { field: 'body.dns.split_dns', message: `"${line}": write "domain: nameserver, nameserver"` };
    split[line.slice(0, colon).trim()] = items(line.slice(colon + 1));
  }
  const records = [];
  for (const line of lines(d.extraRecords)) {
    const parts = line.split(/\s+/);
    if (parts.length === 2) records.push({ name: parts[0]!, type: '', value: parts[1]! });
    else if (parts.length === 3) records.push({ name: parts[0]!, type: parts[1]!.toUpperCase(), value: parts[2]! });
    else return { field: 'body.dns.extra_records', message: `"${line}": write "name A address" or "name address"` };
  }
  const days = d.expiryDays.trim();
  return {
    body: {
      display_name: d.displayName,
      default_key_expiry_seconds: days === '' ? null : Number(days) * DAY,
      device_approval: d.deviceApproval,
      dns: {
        magic_dns: d.magicDns, override_local_dns: d.overrideLocalDns, nameservers: items(d.nameservers),
        split_dns: split, search_domains: items(d.searchDomains), extra_records: records,
      },
    },
  };
}

export function SettingsPage() {
  const { tailnet, session } = useConsole();
  const settings = useQuery({ queryKey: ['settings', tailnet], queryFn: () => api<Settings>('GET', `/settings${q(tailnet)}`) });
  if (settings.isPending) return <Page title="DNS & settings"><Loading what="settings" /></Page>;
  if (settings.isError) return <Page title="DNS & settings"><ErrorBox error={settings.error} /></Page>;
  const s = settings.data;
  return (
    <Page title="DNS & settings">
      {session.admin
        ? <SettingsForm key={tailnet} settings={s} tailnet={tailnet} />
        : <p className="muted">Only admins change the tailnet's settings.</p>}
      <section aria-labelledby="h-derp">
        <h2 id="h-derp">DERP relays</h2>
        <p className="muted">Server-wide, from the configuration file.</p>
        {s.derp_regions.length === 0 ? <p className="muted">No DERP regions.</p> : (
          <table className="table">
            <caption className="sr-only">DERP regions</caption>
            <thead><tr><th scope="col">Region</th><th scope="col">Code</th><th scope="col">Relays</th></tr></thead>
            <tbody>
              {s.derp_regions.map((r) => (
                <tr key={r.id}>
                  <th scope="row">{r.id} · {r.name}</th>
                  <td>{r.code}</td>
                  <td>{r.nodes.map((n) => `${n.host}${n.derp_port ? `:${n.derp_port}` : ''}${n.stun_port !== null && n.stun_port >= 0 ? ` (STUN ${n.stun_port})` : ''}`).join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </Page>
  );
}

function SettingsForm({ settings: s, tailnet }: { settings: Settings; tailnet: string }) {
  const client = useQueryClient();
  const [draft, setDraft] = useState<Draft>(() => draftFrom(s));
  const [local, setLocal] = useState<{ field: string; message: string } | null>(null);
  const [saved, setSaved] = useState(false);
  const set = (patch: Partial<Draft>) => { setDraft((d) => ({ ...d, ...patch })); setSaved(false); };
  const save = useMutation({
    mutationFn: (body: unknown) => api<Settings>('PATCH', `/settings${q(tailnet)}`, body),
    onSuccess: (updated) => {
      setSaved(true);
      setDraft(draftFrom(updated));
      client.setQueryData(['settings', tailnet], updated);
      void client.invalidateQueries({ queryKey: ['tailnets'] });
    },
  });
  const resetDns = useMutation({
    mutationFn: () => api<Settings>('PATCH', `/settings${q(tailnet)}`, { dns: null }),
    onSuccess: (updated) => {
      setDraft(draftFrom(updated));
      client.setQueryData(['settings', tailnet], updated);
    },
  });
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const built = bodyFrom(draft);
    if ('field' in built) {
      setLocal(built);
      return;
    }
    setLocal(null);
    save.mutate(built.body);
  };
  const serverError = save.error instanceof ApiError ? save.error : null;
  const problem = local ?? (serverError !== null ? { field: serverError.field ?? '', message: serverError.message } : null);
  /** The problem's message when it is about this field (so it shows beside the input). */
  const about = (...fields: string[]) => (problem !== null && fields.some((f) => problem.field === f || problem.field.startsWith(`${f}[`) || problem.field.startsWith(`${f}.`))
    ? <span className="field-error" role="alert">{problem.message}</span> : null);
  const invalid = (...fields: string[]) => (about(...fields) !== null ? { 'aria-invalid': true as const } : {});

  return (
    <form className="settings-form" onSubmit={onSubmit} aria-label="Tailnet settings" noValidate>
      {problem !== null && (
        <div className="error" role="alert"><strong>The settings were not saved:</strong> {problem.message}</div>
      )}
      <ErrorBox error={save.error !== null && serverError === null ? save.error : resetDns.error} title="Cannot save" />
      <div className="grid2">
        <fieldset className="card">
          <legend>Tailnet</legend>
          <label className="field"><span>Tailnet name</span>
            <input value={draft.displayName} onChange={(e) => set({ displayName: e.target.value })} placeholder={s.tailnet} {...invalid('body.display_name')} />
            <span className="hint">As people read it; the API name stays <code>{s.tailnet}</code>.</span>
            {about('body.display_name')}
          </label>
          <label className="field"><span>Default key expiry (days)</span>
            <input type="number" min={0} step={1} inputMode="numeric" value={draft.expiryDays} onChange={(e) => set({ expiryDays: e.target.value })}
              placeholder={s.default_key_expiry_source === 'config' ? `server default: ${s.default_key_expiry_seconds === 0 ? 'never' : `${Math.round(s.default_key_expiry_seconds / DAY)} days`}` : ''}
              {...invalid('body.default_key_expiry_seconds')} />
            <span className="hint">For devices registered from now on; 0 = keys never expire; empty = the server's default.</span>
            {about('body.default_key_expiry_seconds')}
          </label>
          <label className="check"><input type="checkbox" checked={draft.deviceApproval} onChange={(e) => set({ deviceApproval: e.target.checked })} /> Device approval: new devices of members wait for an admin</label>
          <p className="muted">Server URL: {s.server_url}</p>
        </fieldset>
        <fieldset className="card">
          <legend>DNS</legend>
          <p className="muted">{s.dns_source === 'tailnet' ? 'This tailnet\'s own DNS.' : 'From the configuration file until you save.'}</p>
          <label className="check"><input type="checkbox" checked={draft.magicDns} onChange={(e) => set({ magicDns: e.target.checked })} /> MagicDNS (<code>name.{s.base_domain}</code>)</label>
          <label className="check"><input type="checkbox" checked={draft.overrideLocalDns} onChange={(e) => set({ overrideLocalDns: e.target.checked })} /> Override devices' local DNS</label>
          <label className="field"><span>Nameservers (one per line)</span>
            <textarea rows={3} value={draft.nameservers} onChange={(e) => set({ nameservers: e.target.value })} {...invalid('body.dns.nameservers')} />
            {about('body.dns.nameservers')}
          </label>
          <label className="field"><span>Search domains (one per line)</span>
            <textarea rows={2} value={draft.searchDomains} onChange={(e) => set({ searchDomains: e.target.value })} {...invalid('body.dns.search_domains')} />
            {about('body.dns.search_domains')}
          </label>
          <label className="field"><span>Split DNS (domain: nameservers, one per line)</span>
            <textarea rows={2} value={draft.splitDns} onChange={(e) => set({ splitDns: e.target.value })} placeholder="corp.example.com: 10.0.0.53" {...invalid('body.dns.split_dns')} />
            {about('body.dns.split_dns')}
          </label>
          <label className="field"><span>Extra records (name A|AAAA address, one per line)</span>
            <textarea rows={2} value={draft.extraRecords} onChange={(e) => set({ extraRecords: e.target.value })} placeholder="git.corp.example.com A 10.0.0.7" {...invalid('body.dns.extra_records')} />
            {about('body.dns.extra_records')}
          </label>
          {s.dns_source === 'tailnet' && <button type="button" onClick={() => resetDns.mutate()} disabled={resetDns.isPending}>Use the configuration file's DNS</button>}
        </fieldset>
      </div>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={save.isPending}>Save settings</button>
        {saved && <span className="ok-text" role="status">Saved.</span>}
      </div>
    </form>
  );
}

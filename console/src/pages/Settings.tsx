// DNS and settings in force, and the DERP map with its regions. Read-only: they come from the
// server's configuration file.
import { useQuery } from '@tanstack/react-query';
import { api, q, type Settings } from '../api';
import { useConsole } from '../main';
import { ErrorBox, Loading, Page } from '../ui';

const list = (items: string[]) => (items.length === 0 ? <span className="muted">none</span> : items.join(', '));

export function SettingsPage() {
  const { tailnet } = useConsole();
  const settings = useQuery({ queryKey: ['settings', tailnet], queryFn: () => api<Settings>('GET', `/settings${q(tailnet)}`) });
  if (settings.isPending) return <Page title="DNS & settings"><Loading what="settings" /></Page>;
  if (settings.isError) return <Page title="DNS & settings"><ErrorBox error={settings.error} /></Page>;
  const s = settings.data;
  return (
    <Page title="DNS & settings">
      <p className="muted">These come from the server's configuration file; change them there and restart.</p>
      <div className="grid2">
        <section className="card" aria-labelledby="h-general">
          <h2 id="h-general">Tailnet</h2>
          <dl className="facts">
            <dt>Tailnet name</dt><dd>{s.tailnet}</dd>
            <dt>Server URL</dt><dd>{s.server_url}</dd>
            <dt>Default key expiry</dt><dd>{s.default_key_expiry_seconds === 0 ? 'keys never expire' : `${Math.round(s.default_key_expiry_seconds / 86400)} days`}</dd>
            {s.device_approval !== null && <><dt>Device approval</dt><dd>{s.device_approval ? 'new devices need approval' : 'off'}</dd></>}
          </dl>
        </section>
        <section className="card" aria-labelledby="h-dns">
          <h2 id="h-dns">DNS</h2>
          <dl className="facts">
            <dt>MagicDNS</dt><dd>{s.magic_dns ? `on (${s.base_domain})` : 'off'}</dd>
            <dt>Override local DNS</dt><dd>{s.override_local_dns ? 'yes' : 'no'}</dd>
            <dt>Nameservers</dt><dd>{list(s.nameservers)}</dd>
            <dt>Search domains</dt><dd>{list(s.search_domains)}</dd>
            <dt>Split DNS</dt><dd>{Object.keys(s.split_dns).length === 0 ? <span className="muted">none</span> : Object.entries(s.split_dns).map(([d, ns]) => `${d} → ${ns.join(', ')}`).join('; ')}</dd>
            <dt>Extra records</dt><dd>{s.extra_records.length === 0 ? <span className="muted">none</span> : s.extra_records.map((r) => `${r.name} ${r.type} ${r.value}`).join('; ')}</dd>
          </dl>
        </section>
      </div>
      <section aria-labelledby="h-derp">
        <h2 id="h-derp">DERP relays</h2>
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

// One machine: addresses, MagicDNS name, client, endpoints and relay, key expiry, tags and
// routes, with every action an admin can take on it.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useLocation } from 'wouter';
import { api, enc, q, type NodeInfo, type Settings, type UserInfo } from '../api';
import { ago, isExitRoute, when } from '../format';
import { useConsole } from '../main';
import { ConfirmDialog, ErrorBox, Loading, Page, StatusDot, Tags } from '../ui';

export function MachinePage({ id }: { id: string }) {
  const { tailnet, session } = useConsole();
  const client = useQueryClient();
  const [, navigate] = useLocation();
  const node = useQuery({ queryKey: ['node', tailnet, id], queryFn: () => api<NodeInfo>('GET', `/nodes/${enc(id)}${q(tailnet)}`) });
  const settings = useQuery({ queryKey: ['settings', tailnet], queryFn: () => api<Settings>('GET', `/settings${q(tailnet)}`), enabled: session.admin });
  const users = useQuery({ queryKey: ['users', tailnet], queryFn: async () => (await api<{ users: UserInfo[] }>('GET', `/users${q(tailnet)}`)).users, enabled: session.admin });
  const [name, setName] = useState<string | null>(null);
  const [tags, setTags] = useState<string | null>(null);
  const [owner, setOwner] = useState<string>('');
  const [routes, setRoutes] = useState<string[] | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);

  const onChanged = (updated: NodeInfo) => {
    client.setQueryData(['node', tailnet, id], updated);
    void client.invalidateQueries({ queryKey: ['nodes', tailnet] });
  };
  const action = useMutation({
    mutationFn: (input: { method: string; path: string; body?: unknown }) => api<NodeInfo>(input.method, `/nodes/${enc(id)}${input.path}${q(tailnet)}`, input.body),
    onSuccess: (updated, input) => {
      if (input.method === 'DELETE') {
        void client.invalidateQueries({ queryKey: ['nodes', tailnet] });
        navigate('/machines');
        return;
      }
      if (input.path === '/routes/approve') {
        void client.invalidateQueries({ queryKey: ['node', tailnet, id] });
        void client.invalidateQueries({ queryKey: ['nodes', tailnet] });
        setRoutes(null);
        return;
      }
      onChanged(updated);
      setName(null);
      setTags(null);
    },
  });

  if (node.isPending) return <Page title="Machine"><Loading what="the machine" /></Page>;
  if (node.isError) return <Page title="Machine"><ErrorBox error={node.error} title="Cannot load this machine" /><Link href="/machines">Back to machines</Link></Page>;
  const n = node.data;
  const magicName = settings.data?.magic_dns ? `${n.name}.${settings.data.base_domain}` : n.name;
  const chosenRoutes = routes ?? n.approved_routes;
  const submit = (e: FormEvent, run: () => void) => { e.preventDefault(); run(); };
  const regionName = settings.data?.derp_regions.find((r) => r.id === n.derp_region)?.name;

  return (
    <Page title={n.name} actions={<StatusDot online={n.online} />}>
      <p><Link href="/machines">← All machines</Link></p>
      <ErrorBox error={action.error} title="The change was refused" />
      {n.approved === false && session.admin && (
        <div className="notice" role="region" aria-label="Approval">
          <p>This device is waiting for approval and cannot reach the tailnet yet.</p>
          <button type="button" className="primary" onClick={() => action.mutate({ method: 'POST', path: '/approve', body: {} })}>Approve device</button>
        </div>
      )}
      <div className="grid2">
        <section className="card" aria-labelledby="h-details">
          <h2 id="h-details">Details</h2>
          <dl className="facts">
            <dt>MagicDNS name</dt><dd>{magicName}</dd>
            <dt>Hostname</dt><dd>{n.hostname}</dd>
            <dt>IPv4</dt><dd>{n.ipv4 ?? '—'}</dd>
            <dt>IPv6</dt><dd>{n.ipv6 ?? '—'}</dd>
            <dt>Owner</dt><dd>{n.tags.length > 0 ? `tagged (registered by ${n.user ?? '—'})` : n.user ?? '—'}</dd>
            <dt>OS</dt><dd>{n.os || 'unknown'}</dd>
            <dt>Client version</dt><dd>{n.client_version || 'unknown'}</dd>
            <dt>Last seen</dt><dd>{n.online ? 'now' : `${ago(n.last_seen)} (${when(n.last_seen)})`}</dd>
            <dt>Key expiry</dt><dd>{n.key_expiry === null ? 'never expires' : `${n.expired ? 'expired' : 'expires'} ${when(n.key_expiry)}`}</dd>
            <dt>Endpoints</dt><dd>{(n.endpoints ?? []).length === 0 ? '—' : (n.endpoints ?? []).join(', ')}</dd>
            <dt>Home relay (DERP)</dt><dd>{n.derp_region == null ? '—' : `${regionName ?? 'region'} (${n.derp_region})`}</dd>
            <dt>Tags</dt><dd><Tags tags={n.tags} /></dd>
            <dt>Ephemeral</dt><dd>{n.ephemeral ? 'yes' : 'no'}</dd>
            <dt>Created</dt><dd>{when(n.created_at)}</dd>
            <dt>Node key</dt><dd className="mono">{n.node_key}</dd>
          </dl>
        </section>

        {session.admin && (
          <section className="card" aria-labelledby="h-actions">
            <h2 id="h-actions">Manage</h2>
            <form onSubmit={(e) => submit(e, () => action.mutate({ method: 'POST', path: '/rename', body: { name: name ?? n.name } }))}>
              <label><span>Name</span><input value={name ?? n.name} onChange={(e) => setName(e.target.value)} required maxLength={63} /></label>
              <button type="submit" disabled={action.isPending}>Rename</button>
            </form>
            <form onSubmit={(e) => submit(e, () => action.mutate({ method: 'POST', path: '/tags', body: { tags: (tags ?? n.tags.join(', ')).split(/[\s,]+/).filter((t) => t !== '') } }))}>
              <label><span>Tags (comma separated)</span><input value={tags ?? n.tags.join(', ')} onChange={(e) => setTags(e.target.value)} placeholder="tag:server" /></label>
              <button type="submit" disabled={action.isPending}>Set tags</button>
            </form>
            <form onSubmit={(e) => submit(e, () => owner !== '' && action.mutate({ method: 'POST', path: '/move', body: { user: owner } }))}>
              <label><span>Move to user</span>
                <select value={owner} onChange={(e) => setOwner(e.target.value)}>
                  <option value="">Choose a user</option>
                  {(users.data ?? []).filter((u) => u.id !== n.user_id).map((u) => <option key={u.id} value={u.name}>{u.name}</option>)}
                </select>
              </label>
              <button type="submit" disabled={action.isPending || owner === ''}>Move</button>
            </form>
            <div className="row-actions">
              <button type="button" onClick={() => action.mutate({ method: 'POST', path: '/expire', body: {} })}>Expire key now</button>
              {n.key_expiry !== null
                ? <button type="button" onClick={() => action.mutate({ method: 'POST', path: '/expire', body: { expiry: null } })}>Disable key expiry</button>
                : <button type="button" onClick={() => action.mutate({ method: 'POST', path: '/expire', body: { expiry: '180d' } })}>Enable key expiry (180 days)</button>}
              <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>Delete machine</button>
            </div>
          </section>
        )}
      </div>

      <section className="card" aria-labelledby="h-routes">
        <h2 id="h-routes">Routes</h2>
        {n.advertised_routes.length === 0
          ? <p className="muted">This machine advertises no subnet routes and is not an exit node.</p>
          : (
            <form onSubmit={(e) => submit(e, () => action.mutate({ method: 'POST', path: '/routes/approve', body: { routes: chosenRoutes } }))}>
              <fieldset>
                <legend>Approved routes</legend>
                {n.advertised_routes.map((r) => (
                  <label key={r} className="check">
                    <input type="checkbox" disabled={!session.admin} checked={chosenRoutes.includes(r)}
                      onChange={(e) => setRoutes(e.target.checked ? [...chosenRoutes, r] : chosenRoutes.filter((x) => x !== r))} />
                    {isExitRoute(r) ? `${r} (exit node)` : r}
                  </label>
                ))}
              </fieldset>
              {session.admin && <button type="submit" className="primary" disabled={action.isPending}>Save route approvals</button>}
            </form>
          )}
      </section>
      <ConfirmDialog open={confirmDelete} title={`Delete ${n.name}?`} confirm="Delete" danger busy={action.isPending}
        onCancel={() => setConfirmDelete(false)} onConfirm={() => { setConfirmDelete(false); action.mutate({ method: 'DELETE', path: '' }); }}>
        <p>{n.name} loses access at once and must register again to come back.</p>
      </ConfirmDialog>
    </Page>
  );
}

// Keys: pre-auth keys (reusable, ephemeral, tags, expiry; the secret is shown once; revoke) and
// API keys.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, enc, q, type ApiKeyInfo, type PreAuthKeyInfo, type UserInfo } from '../api';
import { when } from '../format';
import { useConsole } from '../main';
import { Empty, ErrorBox, Loading, Page, Tags } from '../ui';

function Secret({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div className="notice" role="status" aria-live="polite">
      <p><strong>{label}</strong> Copy it now: it is shown only once.</p>
      <p><code className="secret" data-secret>{value}</code></p>
      <button type="button" onClick={() => void navigator.clipboard?.writeText(value)}>Copy</button>{' '}
      <button type="button" onClick={onDone}>Done</button>
    </div>
  );
}

export function KeysPage() {
  const { tailnet, session } = useConsole();
  const client = useQueryClient();
  const users = useQuery({ queryKey: ['users', tailnet], queryFn: async () => (await api<{ users: UserInfo[] }>('GET', `/users${q(tailnet)}`)).users });
  const keys = useQuery({ queryKey: ['preauthkeys', tailnet], queryFn: async () => (await api<{ preauthkeys: PreAuthKeyInfo[] }>('GET', `/preauthkeys${q(tailnet)}`)).preauthkeys });
  const operator = session.tailnet === null;
  const apiKeys = useQuery({ queryKey: ['apikeys'], queryFn: async () => (await api<{ apikeys: ApiKeyInfo[] }>('GET', '/apikeys')).apikeys, enabled: operator });
  const [form, setForm] = useState({ user: '', reusable: false, ephemeral: false, tags: '', expiration: '1h' });
  const [secret, setSecret] = useState<string | null>(null);
  const [apiSecret, setApiSecret] = useState<string | null>(null);
  const [apiExpiration, setApiExpiration] = useState('90d');
  const create = useMutation({
    mutationFn: () => api<{ key: string }>('POST', `/preauthkeys${q(tailnet)}`, {
      ...(form.user !== '' ? { user: form.user } : {}), reusable: form.reusable, ephemeral: form.ephemeral, expiration: form.expiration,
      tags: form.tags.split(/[\s,]+/).filter((t) => t !== ''),
    }),
    onSuccess: (created) => { setSecret(created.key); void client.invalidateQueries({ queryKey: ['preauthkeys', tailnet] }); },
  });
  const revoke = useMutation({
    mutationFn: (id: number) => api('POST', `/preauthkeys/${id}/expire${q(tailnet)}`),
    onSettled: () => void client.invalidateQueries({ queryKey: ['preauthkeys', tailnet] }),
  });
  const createApi = useMutation({
    mutationFn: () => api<{ key: string }>('POST', '/apikeys', { expiration: apiExpiration }),
    onSuccess: (created) => { setApiSecret(created.key); void client.invalidateQueries({ queryKey: ['apikeys'] }); },
  });
  const revokeApi = useMutation({
    mutationFn: (prefix: string) => api('POST', `/apikeys/${enc(prefix)}/expire`),
    onSettled: () => void client.invalidateQueries({ queryKey: ['apikeys'] }),
  });
  const submit = (e: FormEvent) => { e.preventDefault(); create.mutate(); };

  return (
    <Page title="Keys">
      <section aria-labelledby="h-auth">
        <h2 id="h-auth">Pre-auth keys</h2>
        <form className="inline-form card" onSubmit={submit} aria-label="Create a pre-auth key">
          <label><span>User</span>
            <select value={form.user} onChange={(e) => setForm({ ...form, user: e.target.value })}>
              <option value="">None (tagged devices)</option>
              {(users.data ?? []).map((u) => <option key={u.id} value={u.name}>{u.name}</option>)}
            </select>
          </label>
          <label><span>Tags</span><input value={form.tags} onChange={(e) => setForm({ ...form, tags: e.target.value })} placeholder="tag:ci, tag:prod" /></label>
          <label><span>Expires after</span><input value={form.expiration} onChange={(e) => setForm({ ...form, expiration: e.target.value })} required placeholder="1h, 7d" /></label>
          <label className="check"><input type="checkbox" checked={form.reusable} onChange={(e) => setForm({ ...form, reusable: e.target.checked })} /> Reusable</label>
          <label className="check"><input type="checkbox" checked={form.ephemeral} onChange={(e) => setForm({ ...form, ephemeral: e.target.checked })} /> Ephemeral</label>
          <button type="submit" className="primary" disabled={create.isPending}>Generate key</button>
          <ErrorBox error={create.error} title="Cannot create the key" />
        </form>
        {secret !== null && <Secret label="New pre-auth key." value={secret} onDone={() => setSecret(null)} />}
        {keys.isPending && <Loading what="pre-auth keys" />}
        <ErrorBox error={keys.error ?? revoke.error} />
        {keys.isSuccess && keys.data.length === 0 && <Empty>No pre-auth keys.</Empty>}
        {keys.isSuccess && keys.data.length > 0 && (
          <table className="table">
            <caption className="sr-only">Pre-auth keys</caption>
            <thead><tr><th scope="col">Key</th><th scope="col">User</th><th scope="col">Tags</th><th scope="col">Kind</th><th scope="col">Used</th><th scope="col">Expires</th><th scope="col"><span className="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {[...keys.data].reverse().map((k) => (
                <tr key={k.id}>
                  <th scope="row" className="mono">hwkey-auth-{k.prefix}-…</th>
                  <td>{k.user ?? '—'}</td>
                  <td><Tags tags={k.tags} /></td>
                  <td>{[k.reusable ? 'reusable' : 'one-off', k.ephemeral ? 'ephemeral' : ''].filter(Boolean).join(', ')}</td>
                  <td>{k.used_count}</td>
                  <td>{k.expired ? <span className="badge warn">expired</span> : when(k.expiration)}</td>
                  <td>{!k.expired && <button type="button" onClick={() => revoke.mutate(k.id)}>Revoke</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {operator && (
        <section aria-labelledby="h-api">
          <h2 id="h-api">API keys</h2>
          <form className="inline-form card" onSubmit={(e) => { e.preventDefault(); createApi.mutate(); }} aria-label="Create an API key">
            <label><span>Expires after</span><input value={apiExpiration} onChange={(e) => setApiExpiration(e.target.value)} required /></label>
            <button type="submit" className="primary" disabled={createApi.isPending}>Create API key</button>
            <ErrorBox error={createApi.error} title="Cannot create the key" />
          </form>
          {apiSecret !== null && <Secret label="New API key." value={apiSecret} onDone={() => setApiSecret(null)} />}
          {apiKeys.isPending && <Loading what="API keys" />}
          <ErrorBox error={apiKeys.error ?? revokeApi.error} />
          {apiKeys.isSuccess && apiKeys.data.length === 0 && <Empty>No API keys.</Empty>}
          {apiKeys.isSuccess && apiKeys.data.length > 0 && (
            <table className="table">
              <caption className="sr-only">API keys</caption>
              <thead><tr><th scope="col">Key</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col"><span className="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {apiKeys.data.map((k) => (
                  <tr key={k.id}>
                    <th scope="row" className="mono">hwk_{k.prefix}_…</th>
                    <td>{when(k.last_used_at)}</td>
                    <td>{k.expired ? <span className="badge warn">expired</span> : when(k.expiration)}</td>
                    <td>{!k.expired && <button type="button" onClick={() => revokeApi.mutate(k.prefix)}>Revoke</button>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
    </Page>
  );
}
